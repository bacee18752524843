//! What a call is: endpoint, API format, headers (auth included) and how a step becomes a
//! request body. Owns request building and response decoding; knows nothing about timing.

mod client;
pub mod redact;
pub mod sse;

pub use client::{ClientError, ClientOptions, DEFAULT_MAX_RESPONSE_BYTES, HttpClient};
pub use redact::{Secrets, display_url};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use thiserror::Error;

use crate::chain::{Row, Step, Template};

/// How requests and responses are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFormat {
    /// OpenAI chat completions: JSON messages in, `choices[0].message.content` out.
    OpenAi,
    /// Any HTTP endpoint: the rendered template is the body, the response body is the output.
    Raw,
}

impl ApiFormat {
    /// Name used in settings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFormat::OpenAi => "openai",
            ApiFormat::Raw => "raw",
        }
    }
}

/// A target that cannot be built from the given flags.
#[derive(Debug, Error)]
pub enum TargetError {
    /// The URL does not parse or is not http(s).
    #[error("--target: invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// A `-H` value is not `Name: value`.
    #[error("-H {header:?}: {reason}")]
    BadHeader { header: String, reason: String },
    /// The API key variable holds bytes that cannot be sent in a header.
    #[error("the API key in ${var} cannot be sent in an HTTP header")]
    BadKey { var: String },
}

/// The endpoint every call goes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full endpoint URL (for OpenAI: …/chat/completions).
    pub url: reqwest::Url,
    /// Request/response shape.
    pub format: ApiFormat,
    /// HTTP method (POST for OpenAI).
    pub method: Method,
    /// Model name sent in OpenAI requests.
    pub model: String,
    /// Extra headers, Authorization included; values marked sensitive so Debug hides them.
    pub headers: HeaderMap,
    /// Raw mode: body template used for every step instead of the step prompt.
    pub body: Option<Template>,
    /// OpenAI format: ask for a server-sent-event stream and time the first token.
    pub stream: bool,
    /// The API key, `-H` values and URL credentials, cut out of every stored message.
    pub secrets: Secrets,
}

impl Target {
    /// Builds a target. For OpenAI, a base URL like `https://api.x/v1` gets
    /// `/chat/completions` appended unless it already ends with it.
    pub fn new(
        url: &str,
        format: ApiFormat,
        method: Method,
        model: String,
        headers: &[String],
        api_key: Option<(&str, String)>,
        body: Option<Template>,
    ) -> Result<Target, TargetError> {
        let bad = |reason: String| TargetError::BadUrl {
            url: redact::redact_unparsed_url(url),
            reason,
        };
        let mut parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!(
                "scheme {:?} is not http or https",
                parsed.scheme()
            )));
        }
        if parsed.host_str().is_none() {
            return Err(bad("no host".into()));
        }
        if format == ApiFormat::OpenAi && !parsed.path().ends_with("/chat/completions") {
            let path = format!("{}/chat/completions", parsed.path().trim_end_matches('/'));
            parsed.set_path(&path);
        }
        let mut secrets = Secrets::default();
        secrets.add_url(&parsed);
        let mut map = HeaderMap::new();
        for h in headers {
            let (name, value) = parse_header(h)?;
            if let Ok(v) = value.to_str() {
                secrets.add(v);
            }
            map.append(name, value);
        }
        if let Some((var, key)) = api_key {
            secrets.add(&key);
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| TargetError::BadKey { var: var.into() })?;
            value.set_sensitive(true);
            map.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Target {
            url: parsed,
            format,
            method,
            model,
            headers: map,
            body,
            stream: false,
            secrets,
        })
    }

    /// The URL as it may be shown or written: credentials and query values redacted.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }

    /// The request body for one step of one row.
    pub fn body(&self, step: &Step, row: &Row, previous: Option<&str>) -> Vec<u8> {
        match self.format {
            ApiFormat::OpenAi => {
                let mut messages = Vec::with_capacity(2);
                if let Some(system) = &step.system {
                    messages.push(
                        json!({"role": "system", "content": system.render(&row.vars, previous)}),
                    );
                }
                messages.push(
                    json!({"role": "user", "content": step.prompt.render(&row.vars, previous)}),
                );
                let mut body = json!({"model": self.model, "messages": messages});
                if let Some(max) = step.max_tokens {
                    body["max_tokens"] = json!(max);
                }
                if self.stream {
                    body["stream"] = json!(true);
                    // Usage arrives in a last chunk, so tokens stay exact when streaming.
                    body["stream_options"] = json!({"include_usage": true});
                }
                serde_json::to_vec(&body).expect("a JSON value always serializes")
            }
            ApiFormat::Raw => match &self.body {
                Some(template) => template.render(&row.vars, previous).into_bytes(),
                // GET and HEAD carry no body unless --body asks for one.
                None if matches!(self.method, Method::GET | Method::HEAD) => Vec::new(),
                None => step.prompt.render(&row.vars, previous).into_bytes(),
            },
        }
    }

    /// Extracts the step output and completion tokens from a successful response body.
    /// None means the body is not the shape the format promises.
    pub fn decode(&self, body: &[u8]) -> Option<(String, Option<u32>)> {
        if self.stream && self.format == ApiFormat::OpenAi {
            return sse::decode(body);
        }
        match self.format {
            ApiFormat::OpenAi => {
                let v: Value = serde_json::from_slice(body).ok()?;
                let content = v.pointer("/choices/0/message/content")?.as_str()?;
                let tokens = v
                    .pointer("/usage/completion_tokens")
                    .and_then(Value::as_u64)
                    .map(|t| t as u32);
                Some((content.to_string(), tokens))
            }
            ApiFormat::Raw => Some((String::from_utf8_lossy(body).into_owned(), None)),
        }
    }
}

fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue), TargetError> {
    let bad = |reason: &str| TargetError::BadHeader {
        header: redact_header(h),
        reason: reason.to_string(),
    };
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| bad("expected 'Name: value'"))?;
    let name =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("invalid header name"))?;
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad("invalid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// A header as it may appear in an error: the name only, since values often carry keys.
fn redact_header(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;

    fn openai(url: &str) -> Result<Target, TargetError> {
        Target::new(
            url,
            ApiFormat::OpenAi,
            Method::POST,
            "m".into(),
            &[],
            None,
            None,
        )
    }

    #[test]
    fn openai_base_url_gets_chat_completions() {
        let t = openai("https://api.example/v1").unwrap();
        assert_eq!(t.url.as_str(), "https://api.example/v1/chat/completions");
        let t = openai("http://127.0.0.1:8080/v1/chat/completions").unwrap();
        assert_eq!(t.url.path(), "/v1/chat/completions");
    }

    #[test]
    fn bad_urls_are_rejected_with_the_flag_name() {
        for url in ["not a url", "ftp://x/y", "http://"] {
            let err = openai(url).unwrap_err().to_string();
            assert!(err.starts_with("--target: invalid URL"), "{err}");
        }
    }

    #[test]
    fn api_key_is_sent_but_never_shown() {
        let t = Target::new(
            "http://localhost/v1",
            ApiFormat::OpenAi,
            Method::POST,
            "m".into(),
            &["X-Team: blue".into()],
            Some(("KEY", "sk-secret-123".into())),
            None,
        )
        .unwrap();
        assert!(t.headers.get("authorization").is_some());
        assert!(!format!("{t:?}").contains("sk-secret-123"));
        let err = Target::new(
            "http://localhost",
            ApiFormat::Raw,
            Method::GET,
            "m".into(),
            &["Authorization sk-secret-123".into()],
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("sk-secret-123"), "{err}");
    }

    #[test]
    fn openai_body_and_decode_round_trip() {
        let t = openai("http://localhost/v1").unwrap();
        let chain = Chain::default_steps(2).unwrap();
        let row = &Row::synthetic(1)[0];
        let body: Value =
            serde_json::from_slice(&t.body(&chain.steps[1], row, Some("notes"))).unwrap();
        let content = body
            .pointer("/messages/0/content")
            .unwrap()
            .as_str()
            .unwrap();
        assert!(
            content.contains("topic 1") && content.contains("notes"),
            "{content}"
        );
        let resp = br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"completion_tokens":3}}"#;
        assert_eq!(t.decode(resp), Some(("hi".to_string(), Some(3))));
        assert_eq!(t.decode(b"{}"), None);
    }
}
