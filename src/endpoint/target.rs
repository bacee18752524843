//! The endpoint a call goes to: URL, API format, headers (auth included) and how a step
//! becomes a request body and a response body becomes the step's output. Built once by named
//! constructors and never changed afterwards; knows nothing about timing.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use thiserror::Error;

use super::Decoded;
use super::redact::{self, Secrets, display_url};
use super::{anthropic, sse};
use crate::chain::{Row, Step, Template};

/// How requests and responses are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFormat {
    /// OpenAI chat completions: JSON messages in, `choices[0].message.content` out.
    OpenAi,
    /// Any HTTP endpoint: the rendered template is the body, the response body is the output.
    Raw,
    /// Anthropic Messages API: `system` + one user message in, `content[].text` out.
    Anthropic,
}

impl ApiFormat {
    /// Name used in settings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFormat::OpenAi => "openai",
            ApiFormat::Raw => "raw",
            ApiFormat::Anthropic => "anthropic",
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
    /// A `-H` header loadchain sets itself: framing, connection management or Host.
    #[error("-H {name:?}: {reason}; drop this -H")]
    ReservedHeader { name: String, reason: &'static str },
    /// The API key variable holds bytes that cannot be sent in a header.
    #[error("the API key in ${var} cannot be sent in an HTTP header")]
    BadKey { var: String },
}

/// The endpoint every call goes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full endpoint URL (for OpenAI: …/chat/completions).
    pub(super) url: reqwest::Url,
    /// Request/response shape.
    pub(super) format: ApiFormat,
    /// HTTP method (POST for OpenAI).
    pub(super) method: Method,
    /// Model name sent in OpenAI requests.
    pub(super) model: String,
    /// Extra headers, Authorization included; values marked sensitive so Debug hides them.
    pub(super) headers: HeaderMap,
    /// Raw mode: body template used for every step instead of the step prompt.
    pub(super) body: Option<Template>,
    /// OpenAI format: ask for a server-sent-event stream and time the first token.
    pub(super) stream: bool,
    /// The API key, `-H` values and URL credentials, cut out of every stored message.
    pub(super) secrets: Secrets,
    /// `run --exec`: each call runs this program instead of an HTTP request.
    pub(super) exec: Option<std::sync::Arc<crate::exec::ExecCommand>>,
    /// The request parts of the direct HTTP/1.1 path, made on the first call (None: https
    /// or otherwise not for that path); reset when headers change.
    pub(super) direct: std::sync::OnceLock<Option<std::sync::Arc<super::direct::Prepared>>>,
    /// Under `--http2`: whether the server answered the HTTP/2 preface, probed after the
    /// first protocol failure (see [`h2c`](super::h2c)).
    pub(super) speaks_h2c: std::sync::OnceLock<bool>,
}

impl Target {
    /// OpenAI chat completions at `url`. A base URL like `https://api.x/v1` gets
    /// `/chat/completions` appended unless it already ends with it.
    pub fn openai(url: &str, model: impl Into<String>) -> Result<Target, TargetError> {
        let mut parsed = parse_url(url)?;
        if !parsed.path().ends_with("/chat/completions") {
            let path = format!("{}/chat/completions", parsed.path().trim_end_matches('/'));
            parsed.set_path(&path);
        }
        Ok(Target::at(
            parsed,
            ApiFormat::OpenAi,
            Method::POST,
            model.into(),
        ))
    }

    /// Anthropic's Messages API at `url`. A base like `https://api.anthropic.com` gets
    /// `/v1/messages` appended (`…/v1` gets `/messages`) unless it already ends with it;
    /// every request carries `anthropic-version`.
    pub fn anthropic(url: &str, model: impl Into<String>) -> Result<Target, TargetError> {
        let mut parsed = parse_url(url)?;
        let path = parsed.path().trim_end_matches('/').to_string();
        if !path.ends_with("/v1/messages") {
            let tail = if path.ends_with("/v1") {
                "/messages"
            } else {
                "/v1/messages"
            };
            parsed.set_path(&format!("{path}{tail}"));
        }
        let mut target = Target::at(parsed, ApiFormat::Anthropic, Method::POST, model.into());
        target.headers.insert(
            "anthropic-version",
            HeaderValue::from_static(anthropic::VERSION),
        );
        Ok(target)
    }

    /// Any HTTP endpoint: the step's prompt (or [`Target::with_body`]'s template) is the
    /// body, the response body is the step's output.
    pub fn raw(url: &str, method: Method) -> Result<Target, TargetError> {
        Ok(Target::at(
            parse_url(url)?,
            ApiFormat::Raw,
            method,
            String::new(),
        ))
    }

    fn at(url: reqwest::Url, format: ApiFormat, method: Method, model: String) -> Target {
        let mut secrets = Secrets::default();
        secrets.add_url(&url);
        Target {
            url,
            format,
            method,
            model,
            headers: HeaderMap::new(),
            body: None,
            stream: false,
            secrets,
            exec: None,
            direct: std::sync::OnceLock::new(),
            speaks_h2c: std::sync::OnceLock::new(),
        }
    }

    /// Adds `-H 'Name: value'` headers; their values are kept out of every message.
    pub fn with_headers(mut self, headers: &[String]) -> Result<Target, TargetError> {
        for h in headers {
            let (name, value) = super::header::parse(h)?;
            if let Ok(v) = value.to_str() {
                self.secrets.add(v);
            }
            self.headers.append(name, value);
        }
        self.direct = std::sync::OnceLock::new();
        Ok(self)
    }

    /// Sends `Authorization: Bearer KEY` (Anthropic: `x-api-key: KEY`); `var` names the
    /// variable it came from, for errors.
    pub fn with_api_key(mut self, var: &str, key: &str) -> Result<Target, TargetError> {
        let (name, text) = match self.format {
            ApiFormat::Anthropic => (HeaderName::from_static(API_KEY_HEADER), key.to_string()),
            _ => (reqwest::header::AUTHORIZATION, format!("Bearer {key}")),
        };
        let mut value =
            HeaderValue::from_str(&text).map_err(|_| TargetError::BadKey { var: var.into() })?;
        value.set_sensitive(true);
        self.secrets.add(key);
        self.headers.insert(name, value);
        self.direct = std::sync::OnceLock::new();
        Ok(self)
    }

    /// Raw mode: the body template for every step, instead of the step's prompt.
    pub fn with_body(mut self, body: Template) -> Target {
        self.body = Some(body);
        self
    }

    /// The program each call runs instead of a request (`run --exec`), when set.
    pub fn exec(&self) -> Option<&std::sync::Arc<crate::exec::ExecCommand>> {
        self.exec.as_ref()
    }

    /// The `api` named in settings and reports: the format, or `exec` for a user's program,
    /// which speaks no API format at all.
    pub fn api_name(&self) -> &'static str {
        match self.exec {
            Some(_) => "exec",
            None => self.format().as_str(),
        }
    }

    /// OpenAI format: ask for a server-sent-event stream and time the first token.
    pub fn streaming(mut self, on: bool) -> Target {
        self.stream = on;
        self
    }

    /// The endpoint URL (for OpenAI: …/chat/completions). Show [`Target::display_url`].
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The direct path's prepared request parts, made on the first call.
    pub(super) fn prepared(&self) -> Option<&super::direct::Prepared> {
        self.direct
            .get_or_init(|| super::direct::Prepared::new(self).map(std::sync::Arc::new))
            .as_deref()
    }

    /// The request/response shape.
    pub fn format(&self) -> ApiFormat {
        self.format
    }

    /// The model name sent in OpenAI requests.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether responses are streamed (and time to first token measured).
    pub fn is_streaming(&self) -> bool {
        self.stream
    }

    /// Whether an `Authorization` (or Anthropic's `x-api-key`) header is sent (API key or `-H`).
    pub fn sends_authorization(&self) -> bool {
        self.headers.contains_key(reqwest::header::AUTHORIZATION)
            || self.headers.contains_key(API_KEY_HEADER)
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
                    messages.push(ChatMessage {
                        content: system.render(&row.vars, previous),
                        role: "system",
                    });
                }
                messages.push(ChatMessage {
                    content: step.prompt.render(&row.vars, previous),
                    role: "user",
                });
                let body = ChatRequest {
                    max_tokens: step.max_tokens,
                    messages,
                    model: &self.model,
                    stream: self.stream.then_some(true),
                    // Usage arrives in a last chunk, so tokens stay exact when streaming.
                    stream_options: self.stream.then_some(StreamOptions {
                        include_usage: true,
                    }),
                };
                // Strings and numbers only: serializing cannot fail.
                serde_json::to_vec(&body).unwrap_or_default()
            }
            ApiFormat::Anthropic => {
                let body = anthropic::body(
                    &self.model,
                    step.system.as_ref().map(|s| s.render(&row.vars, previous)),
                    step.prompt.render(&row.vars, previous),
                    step.max_tokens,
                    self.stream,
                );
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

    /// [`Target::decode`] of a body handed over: a stream's output and a raw body take the
    /// body's own memory instead of a copy (one 40 MB SSE line is then held once). Err gives
    /// the body back, unchanged, when it is not the shape the format promises.
    pub(super) fn decode_owned(&self, body: Vec<u8>) -> Result<Decoded, Vec<u8>> {
        match (self.format, self.stream) {
            (ApiFormat::OpenAi, true) => sse::decode_in_place(body),
            (ApiFormat::Raw, _) => Ok(Decoded {
                text: String::from_utf8(body)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                ..Decoded::default()
            }),
            _ => self.decode(&body).ok_or(body),
        }
    }

    /// Extracts the step output and the token counts from a successful response body.
    /// None means the body is not the shape the format promises.
    pub fn decode(&self, body: &[u8]) -> Option<Decoded> {
        match (self.format, self.stream) {
            (ApiFormat::OpenAi, true) => sse::decode(body),
            (ApiFormat::Anthropic, true) => anthropic::decode_stream(body),
            (ApiFormat::Anthropic, false) => anthropic::decode(body),
            (ApiFormat::OpenAi, false) => {
                // Typed and borrowing: no JSON tree is built for each response.
                let c: Completion<'_> = serde_json::from_slice(body).ok()?;
                let choice = c.choices.into_iter().next()?;
                let content = choice.message.content?;
                let usage = c.usage.as_ref();
                let count = |n: Option<u64>| n.map(|t| u32::try_from(t).unwrap_or(u32::MAX));
                Some(Decoded {
                    text: content.into_owned(),
                    tokens: count(usage.and_then(|u| u.completion_tokens)),
                    input_tokens: count(usage.and_then(|u| u.prompt_tokens)),
                    stop_reason: choice.finish_reason.map(std::borrow::Cow::into_owned),
                })
            }
            (ApiFormat::Raw, _) => Some(Decoded {
                text: String::from_utf8_lossy(body).into_owned(),
                ..Decoded::default()
            }),
        }
    }
}

/// Anthropic's API-key header.
const API_KEY_HEADER: &str = "x-api-key";

/// A chat completion request, serialized straight from borrowed parts (no JSON tree per
/// call). Fields in alphabetical order: the bytes are those a `serde_json::Value` gave.
#[derive(serde::Serialize)]
struct ChatRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    messages: Vec<ChatMessage>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(serde::Serialize)]
struct ChatMessage {
    content: String,
    role: &'static str,
}

#[derive(serde::Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The parts of a chat completion loadchain reads; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct Completion<'a> {
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    message: Message<'a>,
    /// Why generation stopped (`stop`, `length`, …); null while a stream runs.
    #[serde(borrow, default)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

/// An http(s) URL with a host; the error shows it without credentials.
fn parse_url(url: &str) -> Result<reqwest::Url, TargetError> {
    let bad = |reason: String| TargetError::BadUrl {
        url: redact::redact_unparsed_url(url),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none() {
        return Err(bad("no host".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use serde_json::{Value, json};

    fn openai(url: &str) -> Result<Target, TargetError> {
        Target::openai(url, "m")
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
        let t = Target::openai("http://localhost/v1", "m")
            .unwrap()
            .with_headers(&["X-Team: blue".into()])
            .unwrap()
            .with_api_key("KEY", "sk-secret-123")
            .unwrap();
        assert!(t.sends_authorization());
        assert!(!format!("{t:?}").contains("sk-secret-123"));
        let err = Target::raw("http://localhost", Method::GET)
            .unwrap()
            .with_headers(&["Authorization sk-secret-123".into()])
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
        let resp = br#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
        let d = t.decode(resp).unwrap();
        assert_eq!(
            (d.text.as_str(), d.tokens, d.input_tokens),
            ("hi", Some(3), Some(5))
        );
        assert_eq!(d.stop_reason.as_deref(), Some("length"));
        assert_eq!(t.decode(b"{}"), None);
    }

    #[test]
    fn openai_body_bytes_are_those_of_a_json_tree() {
        let chain = Chain::default_steps(2).unwrap();
        let row = &Row::synthetic(1)[0];
        for stream in [false, true] {
            for max_tokens in [None, Some(64)] {
                for system in [false, true] {
                    let t = openai("http://localhost/v1").unwrap().streaming(stream);
                    let mut step = chain.steps[1].clone();
                    step.max_tokens = max_tokens;
                    if system {
                        step.system = Some(step.prompt.clone());
                    }
                    let content = step.prompt.render(&row.vars, Some("a \"quoted\"\n"));
                    let mut messages = Vec::new();
                    if system {
                        messages.push(json!({"role": "system", "content": content}));
                    }
                    messages.push(json!({"role": "user", "content": content}));
                    let mut tree = json!({"model": "m", "messages": messages});
                    if let Some(max) = max_tokens {
                        tree["max_tokens"] = json!(max);
                    }
                    if stream {
                        tree["stream"] = json!(true);
                        tree["stream_options"] = json!({"include_usage": true});
                    }
                    assert_eq!(
                        String::from_utf8(t.body(&step, row, Some("a \"quoted\"\n"))).unwrap(),
                        serde_json::to_string(&tree).unwrap()
                    );
                }
            }
        }
    }
}
