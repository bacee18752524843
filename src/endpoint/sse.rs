//! OpenAI's streamed chat completions: `data: {json}` lines of `chat.completion.chunk`s,
//! ending with `data: [DONE]`. Used to time the first token (TTFT) and the gaps between
//! content chunks (ITL) while the body arrives, and to rebuild the full output afterwards.

use std::borrow::Cow;

use serde_json::Value;

use super::Decoded;

/// What a stream's timing showed, for the LLM serving metrics (ITL, TPOT, token source).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Gap before each content chunk after the first, in µs: when the chunk's bytes were
    /// read minus when the previous content chunk's were. Chunks that arrived in one read
    /// get 0, as a client sees them. 4 bytes a token, for one call at a time.
    pub gaps_us: Vec<u32>,
    /// Content chunks seen (non-empty `delta.content`).
    pub content_chunks: u32,
    /// Whether the server sent `usage.completion_tokens` (then the call's tokens come from
    /// it; otherwise one token per content chunk).
    pub usage: bool,
}

/// Incremental scanner of a stream as it arrives: when the first chunk with content came
/// (TTFT) and the arrival gaps between content chunks (ITL).
#[derive(Debug, Default)]
pub struct StreamScan {
    /// Start of the first line not parsed yet.
    scanned: usize,
    /// How far the search for that line's end has got: a 40 MB line arriving in 16 KB
    /// chunks is searched once, not once per chunk.
    searched: usize,
    /// When the first content chunk arrived.
    first: Option<std::time::Duration>,
    /// When the latest content chunk arrived.
    last: std::time::Duration,
    stats: StreamStats,
    /// Anthropic's events instead of OpenAI's chunks: content is a non-empty `text_delta`.
    anthropic: bool,
}

impl StreamScan {
    /// A scanner for Anthropic's event stream (`content_block_delta` / `text_delta`).
    pub fn anthropic() -> StreamScan {
        StreamScan {
            anthropic: true,
            ..StreamScan::default()
        }
    }

    /// Scans the complete lines of `body` not seen yet; `now` (time since the send) is read
    /// once, and only when they hold a content chunk (a role-only chunk does not count).
    pub fn feed(&mut self, body: &[u8], now: impl FnOnce() -> std::time::Duration) {
        let mut found = 0u32;
        while let Some(i) = body[self.searched..].iter().position(|&b| b == b'\n') {
            let end = self.searched + i;
            let line = &body[self.scanned..end];
            self.scanned = end + 1;
            self.searched = self.scanned;
            let kind = match self.anthropic {
                true => super::anthropic::scan_line(line),
                false => scan_line(line),
            };
            match kind {
                Some(Line::Content) => found += 1,
                Some(Line::Usage) => self.stats.usage = true,
                None => {}
            }
        }
        self.searched = body.len();
        if found == 0 {
            return;
        }
        let at = now();
        let mut rest = found;
        if self.first.is_none() {
            self.first = Some(at);
            rest -= 1;
        } else {
            let gap = at.saturating_sub(self.last).as_micros();
            self.stats
                .gaps_us
                .push(u32::try_from(gap).unwrap_or(u32::MAX));
            rest -= 1;
        }
        self.stats
            .gaps_us
            .extend(std::iter::repeat_n(0, rest as usize));
        self.last = at;
        self.stats.content_chunks += found;
    }

    /// When the first content chunk arrived, once it has.
    pub fn first(&self) -> Option<std::time::Duration> {
        self.first
    }

    /// The stream's figures; None when no content chunk arrived.
    pub fn finish(self) -> Option<StreamStats> {
        self.first.map(|_| self.stats)
    }
}

/// What a `data:` line carries, as far as the metrics care.
pub(super) enum Line {
    /// A chunk with non-empty `choices[0].delta.content`.
    Content,
    /// A chunk with `usage.completion_tokens` (and no content).
    Usage,
}

/// The parts of a `chat.completion.chunk` the scanner reads; the rest is skipped unparsed.
#[derive(serde::Deserialize)]
struct ChunkHead<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceHead<'a>>,
    #[serde(default)]
    usage: Option<UsageHead>,
}

#[derive(serde::Deserialize)]
struct ChoiceHead<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaHead<'a>>,
}

#[derive(serde::Deserialize)]
struct DeltaHead<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
}

/// A string borrowed from the body when it has no escapes: serde borrows a `Cow<str>` only
/// as a field of its own, never inside an `Option`.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(serde::Deserialize)]
struct UsageHead {
    completion_tokens: Option<u64>,
}

fn scan_line(line: &[u8]) -> Option<Line> {
    let data = data(line)?;
    let head: ChunkHead<'_> = serde_json::from_str(data).ok()?;
    let content = head
        .choices
        .first()
        .and_then(|c| c.delta.as_ref())
        .and_then(|d| d.content.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if content {
        Some(Line::Content)
    } else if head.usage.and_then(|u| u.completion_tokens).is_some() {
        Some(Line::Usage)
    } else {
        None
    }
}

/// The payload of one `data:` line, `[DONE]` excepted.
fn data(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let data = text.strip_prefix("data:")?.trim();
    (data != "[DONE]").then_some(data)
}

/// What [`decode`] takes from one chunk. Borrowed from the body where the JSON has no
/// escapes: a 40 MB content line is then copied once, into the output, not first into a
/// JSON tree.
struct Piece<'a> {
    content: Option<Cow<'a, str>>,
    completion_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct ChunkBody<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceBody<'a>>,
    #[serde(default)]
    usage: Option<UsageBody>,
}

#[derive(serde::Deserialize)]
struct ChoiceBody<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaHead<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct UsageBody {
    completion_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
}

/// One chunk's parts: typed first; a chunk of another shape (a number where text was
/// expected, say) is read leniently through a JSON tree, as any valid JSON counts as a chunk.
fn piece(line: &[u8]) -> Option<Piece<'_>> {
    let data = data(line)?;
    if let Ok(c) = serde_json::from_str::<ChunkBody<'_>>(data) {
        let (content, finish_reason) = match c.choices.into_iter().next() {
            Some(choice) => (
                choice.delta.and_then(|d| d.content).map(|t| t.0),
                choice.finish_reason,
            ),
            None => (None, None),
        };
        return Some(Piece {
            content,
            completion_tokens: c.usage.as_ref().and_then(|u| u.completion_tokens),
            prompt_tokens: c.usage.as_ref().and_then(|u| u.prompt_tokens),
            finish_reason,
        });
    }
    let v: Value = serde_json::from_str(data).ok()?;
    let text = |path: &str| v.pointer(path)?.as_str().map(|s| Cow::Owned(s.to_string()));
    Some(Piece {
        content: text("/choices/0/delta/content"),
        completion_tokens: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64),
        prompt_tokens: v.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
        finish_reason: text("/choices/0/finish_reason"),
    })
}

/// The whole output and the completion tokens of a finished stream (usage when the server
/// sent it, else one token per content chunk), and the last chunk's `finish_reason`. None
/// when no chunk parsed at all.
pub fn decode(body: &[u8]) -> Option<Decoded> {
    let mut text = String::new();
    let (mut chunks, mut content_chunks, mut usage, mut prompt) = (0u32, 0u32, None, None);
    let mut stop_reason = None;
    for line in body.split(|&b| b == b'\n') {
        let Some(p) = piece(line) else { continue };
        chunks += 1;
        if let Some(c) = p.content.filter(|c| !c.is_empty()) {
            text.push_str(&c);
            content_chunks += 1;
        }
        if let Some(t) = p.completion_tokens {
            usage = Some(t as u32);
        }
        if let Some(t) = p.prompt_tokens {
            prompt = Some(t as u32);
        }
        if let Some(r) = p.finish_reason {
            stop_reason = Some(r.into_owned());
        }
    }
    (chunks > 0).then(|| Decoded {
        text,
        tokens: usage.or(Some(content_chunks)),
        input_tokens: prompt,
        stop_reason,
    })
}

/// [`decode`] of a body handed over, the output written over the body's own bytes: each
/// chunk's content lies inside its line, and decoded text is never longer than the JSON it
/// came from, so the output's end never passes the start of a line not parsed yet. A 40 MB
/// content line is then held once, not once in the body and again in the output. Err gives
/// the body back unchanged when no chunk parsed (nothing was written over).
pub fn decode_in_place(mut body: Vec<u8>) -> Result<Decoded, Vec<u8>> {
    let (mut written, mut at) = (0usize, 0usize);
    let (mut chunks, mut content_chunks, mut usage, mut prompt) = (0u32, 0u32, None, None);
    let mut stop_reason = None;
    while at < body.len() {
        let end = body[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| at + i);
        let base = body.as_ptr() as usize;
        // Where this line's content is: inside the body (borrowed), or decoded from escapes.
        let (place, owned) = match piece(&body[at..end]) {
            None => (None, None),
            Some(p) => {
                chunks += 1;
                usage = p.completion_tokens.map(|t| t as u32).or(usage);
                prompt = p.prompt_tokens.map(|t| t as u32).or(prompt);
                if let Some(r) = p.finish_reason {
                    stop_reason = Some(r.into_owned());
                }
                match p.content.filter(|c| !c.is_empty()) {
                    Some(Cow::Borrowed(c)) => (Some((c.as_ptr() as usize - base, c.len())), None),
                    Some(Cow::Owned(c)) => (None, Some(c)),
                    None => (None, None),
                }
            }
        };
        let len = match (place, owned) {
            (Some((from, len)), _) => {
                body.copy_within(from..from + len, written);
                len
            }
            (None, Some(text)) if written + text.len() <= end => {
                body[written..written + text.len()].copy_from_slice(text.as_bytes());
                text.len()
            }
            _ => 0,
        };
        content_chunks += u32::from(len > 0);
        written += len;
        at = end + 1;
    }
    if chunks == 0 {
        return Err(body);
    }
    body.truncate(written);
    // Only whole `str` contents were written: the bytes are UTF-8.
    let text = String::from_utf8(body).unwrap_or_default();
    Ok(Decoded {
        text,
        tokens: usage.or(Some(content_chunks)),
        input_tokens: prompt,
        stop_reason,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}\n\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn decoding_in_place_gives_what_decode_gives() {
        let escaped = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\\nb \\u00e9\\ud83d\\ude00\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"z\"}}]}\n";
        for body in [STREAM, escaped.as_slice(), b"data: {\"choices\":[]}"] {
            assert_eq!(
                decode_in_place(body.to_vec()).ok(),
                decode(body),
                "{body:?}"
            );
        }
        assert_eq!(decode(escaped).unwrap().text, "a\nb \u{e9}\u{1f600}z");
        assert_eq!(
            decode_in_place(b"not a stream".to_vec()),
            Err(b"not a stream".to_vec())
        );
    }

    #[test]
    fn decodes_content_and_usage() {
        let d = decode(STREAM).unwrap();
        assert_eq!((d.text.as_str(), d.tokens), ("Hello world", Some(2)));
        // The last chunk that names one says why generation stopped; a null does not.
        assert_eq!(d.stop_reason.as_deref(), Some("length"));
        assert_eq!(decode(b"not a stream"), None);
    }

    fn at(ms: u64) -> impl FnOnce() -> Duration {
        move || Duration::from_millis(ms)
    }

    #[test]
    fn first_token_ignores_the_role_chunk_and_partial_lines() {
        let mut scan = StreamScan::default();
        let role_end = STREAM.iter().position(|&b| b == b'\n').unwrap() + 1;
        scan.feed(&STREAM[..role_end], at(1));
        assert_eq!(scan.first(), None);
        // Half of the content line: not complete yet.
        scan.feed(&STREAM[..role_end + 20], at(2));
        assert_eq!(scan.first(), None);
        scan.feed(STREAM, at(3));
        assert_eq!(scan.first(), Some(Duration::from_millis(3)));
    }

    #[test]
    fn gaps_are_between_content_chunk_arrivals() {
        let lines: Vec<&[u8]> = STREAM.split_inclusive(|&b| b == b'\n').collect();
        let upto = |n: usize| lines[..n].concat();
        let mut scan = StreamScan::default();
        scan.feed(&upto(2), at(10)); // role chunk
        scan.feed(&upto(4), at(15)); // "Hello": first token
        scan.feed(&upto(6), at(20)); // " world": 5 ms later
        scan.feed(STREAM, at(99)); // usage and [DONE]: no content, no gap
        assert_eq!(scan.first(), Some(Duration::from_millis(15)));
        let stats = scan.finish().unwrap();
        assert_eq!(stats.gaps_us, vec![5000]);
        assert_eq!(stats.content_chunks, 2);
        assert!(stats.usage);

        // Both content chunks in one read: the second's gap is 0.
        let mut scan = StreamScan::default();
        scan.feed(STREAM, at(7));
        let stats = scan.finish().unwrap();
        assert_eq!((stats.gaps_us, stats.content_chunks), (vec![0], 2));
        assert_eq!(StreamScan::default().finish(), None);
    }

    #[test]
    fn a_long_line_is_searched_once() {
        // 200 chunks of a 2 MB line: each chunk's bytes are looked at once, so this is
        // linear; rescanning from the line start each time would search 200 MB.
        let mut scan = StreamScan::default();
        let mut body = b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec();
        for _ in 0..200 {
            body.extend(std::iter::repeat_n(b'x', 10_000));
            scan.feed(&body, at(1));
            assert_eq!(scan.first(), None);
            assert_eq!(scan.searched, body.len());
        }
        body.extend_from_slice(b"\"}}]}\n\n");
        scan.feed(&body, at(2));
        assert!(scan.first().is_some());
    }
}
