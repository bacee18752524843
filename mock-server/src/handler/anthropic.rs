//! Anthropic's shapes for `POST /v1/messages`: the `message` body, the head of its event
//! stream, and error bodies (`{"type":"error","error":{"type":..,"message":..}}`). The
//! request flow and every knob are those of `/v1/chat/completions`; only the wire differs.

use bytes::Bytes;
use hyper::Response;
use serde_json::json;

use crate::body::MockBody;

/// `end_turn`, or `max_tokens` when the request's cap cut the configured answer short.
pub(super) fn stop_reason(truncated: bool) -> &'static str {
    if truncated { "max_tokens" } else { "end_turn" }
}

/// The plain `message` answer.
pub(super) fn message(
    id: &str,
    model: &str,
    text: String,
    input_tokens: u32,
    output_tokens: u32,
    stop_reason: &str,
) -> Bytes {
    let body = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    });
    Bytes::from(serde_json::to_vec(&body).expect("a JSON value always serializes"))
}

/// `message_start` (with the input tokens), `content_block_start` and a `ping`, as
/// Anthropic opens every stream.
pub(super) fn stream_head(id: &str, model: &str, input_tokens: u32) -> String {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    });
    format!(
        "event: message_start\ndata: {start}\n\n\
event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
event: ping\ndata: {{\"type\": \"ping\"}}\n\n"
    )
}

/// Anthropic's error `type` for a status, from its documented list.
fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Rewrites an error response's OpenAI-style body into Anthropic's, keeping the message,
/// the status and every header (`retry-after` included). Success passes through.
pub(super) fn error_shape(mut resp: Response<MockBody>) -> Response<MockBody> {
    let status = resp.status().as_u16();
    if status < 400 {
        return resp;
    }
    let MockBody::Full(Some(bytes)) = resp.body() else {
        return resp;
    };
    let message = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_default();
    let body = json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    });
    let bytes = Bytes::from(serde_json::to_vec(&body).expect("a JSON value always serializes"));
    *resp.body_mut() = MockBody::full(bytes);
    resp
}
