//! The answer to a chat request that neither hangs nor fails: the completion's content, and
//! its two wire forms, a `text/event-stream` of chunks or one `chat.completion` JSON body,
//! each passed through the transport faults (`fault`) drawn for it.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::SizeHint;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;

use super::anthropic;
use super::request::ChatRequest;
use crate::body::{MockBody, SseStream};
use crate::content;
use crate::fault::Faults;
use crate::response;
use crate::stats::InFlightGuard;

/// What the completion says, in either wire form.
pub(super) struct Reply<'a> {
    id: String,
    created: u64,
    model: &'a str,
    words: Vec<&'static str>,
    prompt_tokens: u32,
    /// Completion tokens (one word each).
    tokens: u32,
    include_usage: bool,
    /// Answer in Anthropic's shapes (`/v1/messages`).
    anthropic: bool,
    /// The request's `max_tokens` cut the configured answer short.
    truncated: bool,
}

impl<'a> Reply<'a> {
    /// The completion for request number `seq`; its words come from the content
    /// `fingerprint`, so the same request gets the same text in every run.
    pub(super) fn new(
        request: &'a ChatRequest,
        output_tokens: u32,
        fingerprint: u64,
        seq: u64,
        vary: bool,
    ) -> Self {
        let tokens = request.output_tokens(output_tokens);
        let mut words = content::words(fingerprint, tokens);
        if vary {
            content::vary(&mut words, fingerprint, seq);
        }
        Self {
            id: if request.anthropic {
                format!("msg_mock_{seq}")
            } else {
                format!("chatcmpl-mock-{seq}")
            },
            anthropic: request.anthropic,
            truncated: tokens < output_tokens,
            created: unix_now(),
            model: request.model.as_deref().unwrap_or(response::DEFAULT_MODEL),
            words,
            prompt_tokens: content::prompt_tokens(&request.messages),
            tokens,
            include_usage: request.includes_usage(),
        }
    }

    /// Completion tokens, for the generation time of a non-streamed answer.
    pub(super) fn tokens(&self) -> u32 {
        self.tokens
    }

    /// The streamed answer: one chunk per `token_time`, holding the capacity slot and the
    /// in-flight count until the last chunk. A cut stream sends the first half of the
    /// tokens (at least one), never `[DONE]`.
    pub(super) fn streamed(
        self,
        pace: super::Pace,
        faults: Faults<'_>,
        permit: Option<OwnedSemaphorePermit>,
        guard: InFlightGuard,
    ) -> Response<MockBody> {
        let model_json = serde_json::to_string(self.model).expect("a str always serializes");
        let mut stream = SseStream::new(
            &self.id,
            self.created,
            &model_json,
            self.words,
            pace,
            permit,
            guard,
        );
        if self.include_usage {
            stream = stream.with_usage(self.prompt_tokens);
        }
        let mut cut_after = stream.token_count().div_ceil(2);
        if self.anthropic {
            let head = anthropic::stream_head(&self.id, self.model, self.prompt_tokens);
            stream = stream.anthropic(head, anthropic::stop_reason(self.truncated));
        } else if self.truncated {
            stream = stream.finish_reason("length");
            cut_after += 1; // the head is a frame of its own
        }
        let body = faults.shape(
            MockBody::Sse(Box::new(stream)),
            SizeHint::default(),
            cut_after,
        );
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }

    /// The `chat.completion` JSON answer. `Content-Length` always promises the whole body;
    /// a cut one sends the first half.
    pub(super) fn plain(self, faults: Faults<'_>) -> Response<MockBody> {
        if self.anthropic {
            let bytes = anthropic::message(
                &self.id,
                self.model,
                content::join(&self.words),
                self.prompt_tokens,
                self.tokens,
                anthropic::stop_reason(self.truncated),
            );
            return Self::send(bytes, faults);
        }
        let completion = ChatCompletion {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices: [Choice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: content::join(&self.words),
                },
                logprobs: None,
                finish_reason: if self.truncated { "length" } else { "stop" },
            }],
            usage: Usage {
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.tokens,
                total_tokens: self.prompt_tokens.saturating_add(self.tokens),
            },
        };
        let bytes =
            Bytes::from(serde_json::to_vec(&completion).expect("the completion always serializes"));
        Self::send(bytes, faults)
    }

    /// A whole JSON body through the faults drawn for it.
    fn send(bytes: Bytes, faults: Faults<'_>) -> Response<MockBody> {
        let mut resp = response::json(StatusCode::OK, Bytes::new());
        let declared = SizeHint::with_exact(bytes.len() as u64);
        let sent = if faults.cut {
            bytes.slice(..bytes.len() / 2)
        } else {
            bytes
        };
        *resp.body_mut() = faults.shape(MockBody::full(sent), declared, 1);
        resp
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    message: Message,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
