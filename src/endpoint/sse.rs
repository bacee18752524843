//! OpenAI's streamed chat completions: `data: {json}` lines of `chat.completion.chunk`s,
//! ending with `data: [DONE]`. Used to time the first token (TTFT) while the body arrives and
//! to rebuild the full output afterwards.

use serde_json::Value;

use super::Decoded;

/// Incremental scanner that reports when the first chunk with content has arrived.
#[derive(Debug, Default)]
pub struct FirstToken {
    /// Start of the first line not parsed yet.
    scanned: usize,
    /// How far the search for that line's end has got: a 40 MB line arriving in 16 KB
    /// chunks is searched once, not once per chunk.
    searched: usize,
    found: bool,
    /// Anthropic's events instead of OpenAI's chunks: the first non-empty `text_delta`.
    anthropic: bool,
}

impl FirstToken {
    /// A scanner for Anthropic's event stream (`content_block_delta` / `text_delta`).
    pub fn anthropic() -> FirstToken {
        FirstToken {
            anthropic: true,
            ..FirstToken::default()
        }
    }

    /// Scans the complete lines of `body` not seen yet; true once a chunk with non-empty
    /// `delta.content` has been seen (a role-only first chunk does not count).
    pub fn seen(&mut self, body: &[u8]) -> bool {
        if self.found {
            return true;
        }
        while let Some(i) = body[self.searched..].iter().position(|&b| b == b'\n') {
            let end = self.searched + i;
            let line = &body[self.scanned..end];
            self.scanned = end + 1;
            self.searched = self.scanned;
            let first = if self.anthropic {
                super::anthropic::is_first_token(line)
            } else {
                chunk(line)
                    .and_then(|v| content(&v).map(|c| !c.is_empty()))
                    .unwrap_or(false)
            };
            if first {
                self.found = true;
                return true;
            }
        }
        self.searched = body.len();
        false
    }
}

/// The JSON of one `data:` line, if it is one.
fn chunk(line: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let data = text.strip_prefix("data:")?.trim();
    if data == "[DONE]" {
        return None;
    }
    serde_json::from_str(data).ok()
}

fn content(v: &Value) -> Option<&str> {
    v.pointer("/choices/0/delta/content")?.as_str()
}

/// The whole output and the completion tokens of a finished stream (usage when the server
/// sent it, else one token per content chunk). None when no chunk parsed at all.
pub fn decode(body: &[u8]) -> Option<Decoded> {
    let mut text = String::new();
    let (mut chunks, mut content_chunks, mut usage, mut prompt) = (0u32, 0u32, None, None);
    for line in body.split(|&b| b == b'\n') {
        let Some(v) = chunk(line) else { continue };
        chunks += 1;
        if let Some(c) = content(&v).filter(|c| !c.is_empty()) {
            text.push_str(c);
            content_chunks += 1;
        }
        if let Some(t) = v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
        {
            usage = Some(t as u32);
        }
        if let Some(t) = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64) {
            prompt = Some(t as u32);
        }
    }
    (chunks > 0).then(|| Decoded {
        text,
        tokens: usage.or(Some(content_chunks)),
        input_tokens: prompt,
        stop_reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn decodes_content_and_usage() {
        let d = decode(STREAM).unwrap();
        assert_eq!((d.text.as_str(), d.tokens), ("Hello world", Some(2)));
        assert_eq!(decode(b"not a stream"), None);
    }

    #[test]
    fn first_token_ignores_the_role_chunk_and_partial_lines() {
        let mut ft = FirstToken::default();
        let role_end = STREAM.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert!(!ft.seen(&STREAM[..role_end]));
        // Half of the content line: not complete yet.
        assert!(!ft.seen(&STREAM[..role_end + 20]));
        assert!(ft.seen(STREAM));
    }

    #[test]
    fn a_long_line_is_searched_once() {
        // 200 chunks of a 2 MB line: each chunk's bytes are looked at once, so this is
        // linear; rescanning from the line start each time would search 200 MB.
        let mut ft = FirstToken::default();
        let mut body = b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec();
        for _ in 0..200 {
            body.extend(std::iter::repeat_n(b'x', 10_000));
            assert!(!ft.seen(&body));
            assert_eq!(ft.searched, body.len());
        }
        body.extend_from_slice(b"\"}}]}\n\n");
        assert!(ft.seen(&body));
    }
}
