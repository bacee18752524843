//! Response bodies: a whole buffer, or an OpenAI-style server-sent-event stream that emits
//! one chunk per token on a timer.
//!
//! The stream is a hand-written `Body` rather than a channel plus a spawned task: no extra
//! task or allocation per token, and when the client goes away hyper drops the body, which
//! drops the capacity permit and the in-flight guard it carries, so the counters stay right.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::fault::{InjectedCut, Shaped};
use crate::handler::{Pace, pace_token_time};
use crate::stats::InFlightGuard;

/// The body type of every mock response.
pub(crate) enum MockBody {
    /// A complete body sent as one frame (`None` once sent).
    Full(Option<Bytes>),
    /// A token stream for `"stream": true`.
    Sse(Box<SseStream>),
    /// Another body slowed down or cut on purpose (`slow_body`, `reset_rate`,
    /// `truncate_rate`).
    Shaped(Box<Shaped>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(bytes.into()))
    }
}

/// State of one streamed completion.
pub(crate) struct SseStream {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[{"index":0,`
    /// shared by every chunk, built once.
    prefix: String,
    /// Ends every choice chunk: `}]}`, or `}],"usage":null}` when usage was asked for, as
    /// OpenAI sends it.
    suffix: &'static str,
    /// `(prompt_tokens, completion_tokens)` for the last chunk that
    /// `stream_options.include_usage` asks for; `None` when not asked.
    usage: Option<(u32, u32)>,
    words: Vec<&'static str>,
    next: usize,
    /// When the last token was due (the stream start before the first): each deadline
    /// counts from the previous one, not from a wake-up, so late wake-ups do not drift.
    due: Instant,
    pace: Pace,
    sleep: Pin<Box<Sleep>>,
    sleeping: bool,
    finished: bool,
    // Held until the stream ends: a streaming request occupies its capacity slot and counts
    // as in flight until the last byte, like a real provider's generation.
    _permit: Option<OwnedSemaphorePermit>,
    guard: Option<InFlightGuard>,
    /// Anthropic's event stream instead of OpenAI's chunks: the `stop_reason` its
    /// `message_delta` ends with.
    anthropic: Option<&'static str>,
    /// Sent at once, before the first token: Anthropic's `message_start`,
    /// `content_block_start` and `ping`.
    head: Option<Bytes>,
    /// The last OpenAI chunk's `finish_reason`: `stop`, or `length` when `max_tokens` cut
    /// the answer short.
    finish_reason: &'static str,
}

impl SseStream {
    /// `id`, `created` and the JSON-escaped `model_json` go into every chunk.
    pub(crate) fn new(
        id: &str,
        created: u64,
        model_json: &str,
        words: Vec<&'static str>,
        pace: Pace,
        permit: Option<OwnedSemaphorePermit>,
        guard: InFlightGuard,
    ) -> Self {
        let prefix = format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model_json},\"choices\":[{{\"index\":0,"
        );
        let start = Instant::now();
        Self {
            prefix,
            suffix: "}]}",
            usage: None,
            words,
            next: 0,
            due: start,
            pace,
            sleep: Box::pin(tokio::time::sleep_until(start)),
            sleeping: false,
            finished: false,
            _permit: permit,
            guard: Some(guard),
            finish_reason: "stop",
            anthropic: None,
            head: None,
        }
    }

    /// Speaks Anthropic's events: `head` first at once, then one `content_block_delta` per
    /// token, then `content_block_stop`, `message_delta` (usage, `stop_reason`) and
    /// `message_stop`.
    pub(crate) fn anthropic(mut self, head: String, stop_reason: &'static str) -> Self {
        self.head = Some(Bytes::from(head));
        self.anthropic = Some(stop_reason);
        self
    }

    /// Sets the last OpenAI chunk's `finish_reason` (`length` for a cut-short answer).
    pub(crate) fn finish_reason(mut self, reason: &'static str) -> Self {
        self.finish_reason = reason;
        self
    }

    /// Adds the usage chunk (`"choices":[]` and `usage`) before `data: [DONE]`, as OpenAI
    /// does for `"stream_options": {"include_usage": true}`; the other chunks then carry
    /// `"usage":null`.
    pub(crate) fn with_usage(mut self, prompt_tokens: u32) -> Self {
        let completion = u32::try_from(self.words.len()).unwrap_or(u32::MAX);
        self.usage = Some((prompt_tokens, completion));
        self.suffix = "}],\"usage\":null}";
        self
    }

    /// How many token chunks the stream sends before its final chunk.
    pub(crate) fn token_count(&self) -> usize {
        self.words.len()
    }

    /// The chunk for token `i`; the first carries the assistant role, later ones a leading
    /// space so that concatenating the deltas gives the non-streaming content.
    fn token_chunk(&self, i: usize) -> Bytes {
        let word = self.words[i];
        if self.anthropic.is_some() {
            let space = if i == 0 { "" } else { " " };
            return Bytes::from(format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{space}{word}\"}}}}\n\n"
            ));
        }
        let mut s = String::with_capacity(self.prefix.len() + 80);
        s.push_str(&self.prefix);
        if i == 0 {
            s.push_str("\"delta\":{\"role\":\"assistant\",\"content\":\"");
        } else {
            s.push_str("\"delta\":{\"content\":\" ");
        }
        // Vocabulary words are plain ASCII letters: nothing to escape.
        s.push_str(word);
        s.push_str("\"},\"logprobs\":null,\"finish_reason\":null");
        s.push_str(self.suffix);
        s.push_str("\n\n");
        Bytes::from(s)
    }

    fn final_chunk(&self) -> Bytes {
        if let Some(stop_reason) = self.anthropic {
            return Bytes::from(format!(
                "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{stop_reason}\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}\n\n\
event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n",
                self.words.len()
            ));
        }
        let mut s = String::with_capacity(2 * self.prefix.len() + 192);
        s.push_str(&self.prefix);
        if self.words.is_empty() {
            s.push_str("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
        } else {
            s.push_str("\"delta\":{}");
        }
        s.push_str(",\"logprobs\":null,\"finish_reason\":\"");
        s.push_str(self.finish_reason);
        s.push('"');
        s.push_str(self.suffix);
        s.push_str("\n\n");
        if let Some((prompt, completion)) = self.usage {
            // The prefix up to `"choices":` is the chunk head shared with the usage chunk.
            let head_len = self.prefix.len() - "[{\"index\":0,".len();
            s.push_str(&self.prefix[..head_len]);
            s.push_str(&format!(
                "[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}}}\n\n",
                prompt.saturating_add(completion)
            ));
        }
        s.push_str("data: [DONE]\n\n");
        Bytes::from(s)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(head));
        }
        if self.next < self.words.len() {
            if !self.sleeping {
                let step = if self.next == 0 && self.pace.first_at_once {
                    Duration::ZERO
                } else {
                    match &self.guard {
                        Some(guard) => {
                            pace_token_time(self.pace.token_time, self.pace.load_slowdown, guard)
                        }
                        None => self.pace.token_time,
                    }
                };
                if !step.is_zero() {
                    self.due += step;
                    self.sleep.as_mut().reset(self.due);
                    self.sleeping = true;
                }
            }
            if self.sleeping {
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleeping = false;
            }
            let chunk = self.token_chunk(self.next);
            self.next += 1;
            return Poll::Ready(Some(chunk));
        }
        self.finished = true;
        let chunk = self.final_chunk();
        // The request is complete once the last chunk is handed to hyper.
        self.guard = None;
        self._permit = None;
        Poll::Ready(Some(chunk))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = InjectedCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, InjectedCut>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Sse(stream) => stream
                .poll_next(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
            MockBody::Shaped(shaped) => Pin::new(shaped.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Sse(stream) => stream.finished,
            MockBody::Shaped(shaped) => shaped.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Sse(_) => SizeHint::default(),
            MockBody::Shaped(shaped) => shaped.size_hint(),
        }
    }
}
