//! Anthropic's Messages API on the wire: the request body (`model`, `max_tokens`, a top-level
//! `system`, `messages`), the plain `message` answer (`content[].text`, `usage`,
//! `stop_reason`) and the streamed one (`message_start`, `content_block_delta` with
//! `text_delta`, `message_delta` with usage, `message_stop`, `ping`, `error` events).
//!
//! Kept apart from `target` so the OpenAI path stays as it is; `target` picks one or the other.

use serde_json::{Value, json};

use super::Decoded;

/// The `anthropic-version` header every request carries (the only stable version).
pub const VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the Messages API; a step without one asks for this many.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The request body for one step: `system` is top-level, not a message.
pub(super) fn body(
    model: &str,
    system: Option<String>,
    user: String,
    max_tokens: Option<u32>,
    stream: bool,
) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": [{"role": "user", "content": user}],
    });
    if let Some(system) = system {
        body["system"] = json!(system);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// The parts of a `message` loadchain reads; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct MessageBody<'a> {
    #[serde(borrow)]
    content: Vec<Block<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

fn tokens(n: Option<u64>) -> Option<u32> {
    n.map(|t| u32::try_from(t).unwrap_or(u32::MAX))
}

/// A plain answer: the text blocks joined, tokens from `usage`. None when the body is not a
/// `message` (no `content` array of blocks).
pub(super) fn decode(body: &[u8]) -> Option<Decoded> {
    let m: MessageBody<'_> = serde_json::from_slice(body).ok()?;
    let text: String = m
        .content
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect();
    let usage = m.usage.as_ref();
    Some(Decoded {
        text,
        tokens: tokens(usage.and_then(|u| u.output_tokens)),
        input_tokens: tokens(usage.and_then(|u| u.input_tokens)),
        stop_reason: m.stop_reason,
    })
}

/// The JSON of one `data:` line of an event stream, if it is one.
fn event(line: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let data = text.strip_prefix("data:")?.trim();
    serde_json::from_str(data).ok()
}

/// The text of a `content_block_delta` event carrying a `text_delta`.
fn text_delta(v: &Value) -> Option<&str> {
    if v.get("type")?.as_str()? != "content_block_delta" {
        return None;
    }
    let delta = v.get("delta")?;
    if delta.get("type")?.as_str()? != "text_delta" {
        return None;
    }
    delta.get("text")?.as_str()
}

/// Whether a stream line is a non-empty text delta: the first token, for TTFT.
#[cfg(test)]
pub(super) fn is_first_token(line: &[u8]) -> bool {
    event(line)
        .as_ref()
        .and_then(text_delta)
        .is_some_and(|t| !t.is_empty())
}

/// What a streamed event line carries for the metrics: a non-empty text delta (a token's
/// worth of content) or a `message_delta` with output-token usage.
pub(super) fn scan_line(line: &[u8]) -> Option<super::sse::Line> {
    let v = event(line)?;
    if text_delta(&v).is_some_and(|t| !t.is_empty()) {
        return Some(super::sse::Line::Content);
    }
    let usage = v.get("type").and_then(Value::as_str) == Some("message_delta")
        && v.pointer("/usage/output_tokens").is_some();
    usage.then_some(super::sse::Line::Usage)
}

/// A finished stream: the text deltas joined, input tokens from `message_start`, output
/// tokens from the last `message_delta` (cumulative, as Anthropic sends them), the stop
/// reason. None when no event parsed, or when the stream ended in an `error` event (see
/// [`stream_error`]) or without `message_stop` (cut short).
pub(super) fn decode_stream(body: &[u8]) -> Option<Decoded> {
    let mut out = Decoded::default();
    let mut stopped = false;
    for line in body.split(|&b| b == b'\n') {
        let Some(v) = event(line) else { continue };
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let usage = v.pointer("/message/usage");
                out.input_tokens = tokens(
                    usage
                        .and_then(|u| u.get("input_tokens"))
                        .and_then(Value::as_u64),
                );
            }
            Some("content_block_delta") => {
                if let Some(t) = text_delta(&v) {
                    out.text.push_str(t);
                }
            }
            Some("message_delta") => {
                if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    out.tokens = tokens(Some(n));
                }
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.stop_reason = Some(r.to_string());
                }
            }
            Some("message_stop") => stopped = true,
            Some("error") => return None,
            _ => {}
        }
    }
    stopped.then_some(out)
}

/// `type: message` of an `error` event inside a stream that began with HTTP 200 (an overload
/// mid-generation, say), when there is one.
pub(super) fn stream_error(body: &[u8]) -> Option<String> {
    body.split(|&b| b == b'\n')
        .filter_map(event)
        .find(|v| v.get("type").and_then(Value::as_str) == Some("error"))
        .map(|v| error_detail(&v))
}

/// `overloaded_error: Overloaded` from `{"type":"error","error":{"type":..,"message":..}}`.
pub(super) fn error_detail(v: &Value) -> String {
    let kind = v.pointer("/error/type").and_then(Value::as_str);
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        Some(k) => format!("{k}: {message}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Target;
    use super::*;

    #[test]
    fn anthropic_base_url_gets_v1_messages_and_the_key_goes_in_x_api_key() {
        for (base, want) in [
            (
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://api.anthropic.com/",
                "https://api.anthropic.com/v1/messages",
            ),
            ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/messages"),
            (
                "http://127.0.0.1:9/v1/messages",
                "http://127.0.0.1:9/v1/messages",
            ),
        ] {
            assert_eq!(Target::anthropic(base, "m").unwrap().url.as_str(), want);
        }
        let t = Target::anthropic("https://api.anthropic.com", "m")
            .unwrap()
            .with_api_key("ANTHROPIC_API_KEY", "sk-ant-secret")
            .unwrap();
        assert!(t.sends_authorization());
        assert_eq!(t.headers["x-api-key"], "sk-ant-secret");
        assert_eq!(t.headers["anthropic-version"], "2023-06-01");
        assert!(!t.headers.contains_key(reqwest::header::AUTHORIZATION));
        assert!(!format!("{t:?}").contains("sk-ant-secret"));
    }

    #[test]
    fn body_has_a_top_level_system_and_a_max_tokens() {
        let b = body("claude", Some("be brief".into()), "hi".into(), None, true);
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!(b["stream"], true);
        let b = body("claude", None, "hi".into(), Some(7), false);
        assert!(b.get("system").is_none() && b.get("stream").is_none());
        assert_eq!(b["max_tokens"], 7);
    }

    const MESSAGE: &[u8] = include_bytes!("../../tests/fixtures/anthropic/message.json");
    const STREAM: &[u8] = include_bytes!("../../tests/fixtures/anthropic/stream.txt");
    const STREAM_ERROR: &[u8] = include_bytes!("../../tests/fixtures/anthropic/stream_error.txt");
    const ERROR: &[u8] = include_bytes!("../../tests/fixtures/anthropic/error_overloaded.json");

    #[test]
    fn the_documented_message_decodes_to_its_text_usage_and_stop_reason() {
        let d = decode(MESSAGE).unwrap();
        assert_eq!(d.text, "Hi! My name is Claude.");
        assert_eq!((d.input_tokens, d.tokens), (Some(2095), Some(503)));
        assert_eq!(d.stop_reason.as_deref(), Some("end_turn"));
        // An OpenAI completion or an error body is not a message.
        assert!(decode(br#"{"choices":[{"message":{"content":"x"}}]}"#).is_none());
        assert!(decode(ERROR).is_none());
    }

    #[test]
    fn the_documented_stream_decodes_and_its_first_text_delta_is_the_first_token() {
        let d = decode_stream(STREAM).unwrap();
        assert_eq!(d.text, "Hello!");
        assert_eq!((d.input_tokens, d.tokens), (Some(25), Some(15)));
        assert_eq!(d.stop_reason.as_deref(), Some("end_turn"));
        let firsts: Vec<_> = STREAM
            .split(|&b| b == b'\n')
            .filter(|l| is_first_token(l))
            .collect();
        assert_eq!(
            firsts.len(),
            2,
            "each non-empty text delta, not start or ping"
        );
        assert!(String::from_utf8_lossy(firsts[0]).contains("Hello"));
        assert!(decode_stream(STREAM_ERROR).is_none());
        assert_eq!(
            stream_error(STREAM_ERROR).as_deref(),
            Some("overloaded_error: Overloaded")
        );
        assert_eq!(stream_error(STREAM), None);
    }

    #[test]
    fn a_stream_that_ends_in_an_error_event_is_not_an_output() {
        let s = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert!(decode_stream(s).is_none());
        assert_eq!(
            stream_error(s).as_deref(),
            Some("overloaded_error: Overloaded")
        );
        // Cut before message_stop: not a whole answer either.
        assert!(decode_stream(&s[..s.len() / 2]).is_none());
    }
}
