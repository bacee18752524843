//! Building responses: OpenAI-style error bodies, JSON responses and the rate-limit headers.
//!
//! Kept apart from `handler` so that the request flow there reads top to bottom.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::body::MockBody;
use crate::handler::Refused;
use crate::ratelimit::{Quota, go_duration};
use crate::stats::StatsSnapshot;

pub(crate) fn too_large(limit: usize) -> Response<MockBody> {
    let message = format!("The request body is larger than the limit of {limit} bytes.");
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "request_too_large",
        &message,
    )
}

pub(crate) fn rate_limited(refused: &Refused, anthropic: bool) -> Response<MockBody> {
    let (what, d) = match (refused.tokens, refused.quota.tokens, refused.quota.requests) {
        (true, Some(d), _) => ("tokens", d),
        (_, _, Some(d)) => ("requests", d),
        (_, Some(d), None) => ("tokens", d),
        (_, None, None) => unreachable!("a refusal always carries the refusing verdict"),
    };
    let message = format!(
        "Rate limit reached for {what}: limit {} per minute. Please try again in {}s.",
        d.limit, d.retry_after_secs
    );
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        what,
        "rate_limit_exceeded",
        &message,
    );
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
    // OpenAI's SDKs read this first: the same wait, not rounded up to a whole second.
    h.insert("retry-after-ms", HeaderValue::from(d.retry_after_ms));
    add_rate_headers(&mut resp, &refused.quota, anthropic);
    resp
}

/// The quota headers of the API answered: OpenAI's
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as Go durations), or
/// Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
/// remaining,reset}` (resets as RFC 3339 times, whole seconds rounded up). The mock keeps one
/// token quota (prompt and completion together), so on `/v1/messages` it announces that one
/// quota as `tokens`, `input-tokens` and `output-tokens` alike.
pub(crate) fn add_rate_headers(resp: &mut Response<MockBody>, quota: &Quota, anthropic: bool) {
    if anthropic {
        return add_anthropic_rate_headers(resp, quota, std::time::SystemTime::now());
    }
    let h = resp.headers_mut();
    for (kind, d) in [("requests", quota.requests), ("tokens", quota.tokens)] {
        let Some(d) = d else { continue };
        for (name, value) in [
            ("limit", d.limit.to_string()),
            ("remaining", d.remaining.to_string()),
            ("reset", go_duration(d.reset)),
        ] {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::try_from(format!("x-ratelimit-{name}-{kind}")),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    }
}

/// Anthropic's form of [`add_rate_headers`], with resets counted from `now`.
fn add_anthropic_rate_headers(
    resp: &mut Response<MockBody>,
    quota: &Quota,
    now: std::time::SystemTime,
) {
    let h = resp.headers_mut();
    let kinds = [
        ("requests", quota.requests),
        ("tokens", quota.tokens),
        ("input-tokens", quota.tokens),
        ("output-tokens", quota.tokens),
    ];
    for (kind, d) in kinds {
        let Some(d) = d else { continue };
        // Anthropic writes whole seconds; rounding up never announces a reset too early.
        let since = (now + d.reset)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
        let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        for (name, value) in [
            ("limit", d.limit.to_string()),
            ("remaining", d.remaining.to_string()),
            (
                "reset",
                humantime::format_rfc3339_seconds(whole).to_string(),
            ),
        ] {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::try_from(format!("anthropic-ratelimit-{kind}-{name}")),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    }
}

pub(crate) fn server_error(status: StatusCode) -> Response<MockBody> {
    let (message, code) = match status.as_u16() {
        502 => ("Bad gateway.", "bad_gateway"),
        503 => (
            "The server is overloaded or not ready yet.",
            "service_unavailable",
        ),
        504 => ("The upstream timed out.", "gateway_timeout"),
        529 => ("Overloaded", "overloaded"),
        _ => (
            "The server had an error while processing your request. Sorry about that!",
            "internal_error",
        ),
    };
    error(status, "server_error", code, message)
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<MockBody> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "Method not allowed for this URL.",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

pub(crate) fn stats(snapshot: &StatsSnapshot) -> Response<MockBody> {
    let bytes = serde_json::to_vec(snapshot).expect("stats always serialize");
    json(StatusCode::OK, bytes)
}

/// The one model `GET /v1/models` lists: the name a chat request without `model` gets.
pub(crate) const DEFAULT_MODEL: &str = "loadchain-mock";

/// A fixed `created` time for model objects (2024-01-01), so the listing never changes.
const MODEL_CREATED: u64 = 1_704_067_200;

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> ModelObject<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            id,
            object: "model",
            created: MODEL_CREATED,
            owned_by: "loadchain-mock",
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: [ModelObject<'a>; 1],
}

/// `GET /v1/models`: OpenAI's list shape with the one default model.
pub(crate) fn models() -> Response<MockBody> {
    let list = ModelList {
        object: "list",
        data: [ModelObject::new(DEFAULT_MODEL)],
    };
    let bytes = serde_json::to_vec(&list).expect("a model list always serializes");
    json(StatusCode::OK, bytes)
}

/// `GET /v1/models/{id}`: every id exists, because the chat endpoint answers for any
/// `model` too; a client that checks its model before a run then works with any name.
pub(crate) fn model(id: &str) -> Response<MockBody> {
    let bytes = serde_json::to_vec(&ModelObject::new(id)).expect("a model always serializes");
    json(StatusCode::OK, bytes)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI-style error: `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
pub(crate) fn error(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
) -> Response<MockBody> {
    error_body(status, kind, Some(code), None, message)
}

/// A 400 for a request field OpenAI's validation refuses: `param` names the field and
/// `code` is null, as OpenAI answers e.g. `"messages": []`.
pub(crate) fn invalid_param(param: &str, message: &str) -> Response<MockBody> {
    error_body(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        Some(param),
        message,
    )
}

fn error_body(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> Response<MockBody> {
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    };
    let bytes = serde_json::to_vec(&body).expect("an error body always serializes");
    json(status, bytes)
}

pub(crate) fn json(status: StatusCode, bytes: impl Into<Bytes>) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
