//! HTTP client modes and one timed call.
//!
//! Pooled: one `reqwest::Client` whose connections stay alive and are reused across the
//! batch. Unpooled: the same client configuration with no idle connections kept, so every
//! call opens (and pays for) a fresh connection, as code that builds a session per call does.

use std::sync::Once;
use std::time::Duration;

use futures_util::StreamExt;
use thiserror::Error;
use tokio::time::Instant;

use super::{Target, sse};
use crate::record::{ErrorKind, Pooling};

/// Settings shared by every client of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-call timeout: send to last body byte.
    pub timeout: Duration,
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Speak HTTP/2 without negotiation (cleartext h2c to the mock, for instance).
    pub http2_prior_knowledge: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            insecure: false,
            http2_prior_knowledge: false,
        }
    }
}

/// The client could not be built (TLS set-up).
#[derive(Debug, Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// A configured HTTP client in one pooling mode.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    pooling: Pooling,
    timeout: Duration,
}

/// What one call produced. Failures are data: `error` says why.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// From just before the request is sent to the last byte of the body.
    pub latency: Duration,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Why the call failed, or None.
    pub error: Option<ErrorKind>,
    /// Failure detail for logs; never contains headers.
    pub message: String,
    /// The decoded output on success.
    pub output: Option<String>,
    /// Completion tokens reported by the API.
    pub tokens: Option<u32>,
    /// Body bytes received.
    pub bytes: u64,
    /// The server's Retry-After, when it sent one.
    pub retry_after: Option<Duration>,
    /// Streaming only: send to the first chunk with content.
    pub ttft: Option<Duration>,
}

static CRYPTO: Once = Once::new();

/// rustls needs one process-wide crypto provider; ring builds fast and needs no C toolchain
/// beyond what `cc` brings.
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err only means another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpClient {
    /// Builds a client for one pooling mode.
    pub fn new(pooling: Pooling, opts: &ClientOptions) -> Result<HttpClient, ClientError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(opts.insecure)
            .user_agent(concat!("loadchain/", env!("CARGO_PKG_VERSION")));
        builder = match pooling {
            Pooling::On => builder
                .pool_max_idle_per_host(usize::MAX)
                .pool_idle_timeout(Duration::from_secs(90)),
            Pooling::Off => builder.pool_max_idle_per_host(0),
        };
        if opts.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        let inner = builder.build().map_err(|e| ClientError(e.to_string()))?;
        Ok(HttpClient {
            inner,
            pooling,
            timeout: opts.timeout,
        })
    }

    /// This client's pooling mode.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Sends one request and reads the whole body, timing send → last byte.
    pub async fn call(&self, target: &Target, body: Vec<u8>) -> CallOutcome {
        let mut request = self
            .inner
            .request(target.method.clone(), target.url.clone())
            .headers(target.headers.clone());
        if target.method != reqwest::Method::GET || !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let start = Instant::now();
        let fut = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut stream = response.bytes_stream();
            let mut bytes = Vec::new();
            let mut first = (target.stream && status == 200).then(sse::FirstToken::default);
            let mut ttft = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => bytes.extend_from_slice(&c),
                    Err(e) => return Ok((status, retry_after, ttft, Err(e))),
                }
                if let Some(ft) = first.as_mut()
                    && ft.seen(&bytes)
                {
                    ttft = Some(start.elapsed());
                    first = None;
                }
            }
            Ok::<_, reqwest::Error>((status, retry_after, ttft, Ok(bytes)))
        };
        let result = tokio::time::timeout(self.timeout, fut).await;
        let latency = start.elapsed();
        let mut out = CallOutcome {
            latency,
            status: None,
            error: None,
            message: String::new(),
            output: None,
            tokens: None,
            bytes: 0,
            retry_after: None,
            ttft: None,
        };
        match result {
            Err(_) => {
                out.error = Some(ErrorKind::Timeout);
                out.message = format!("no complete response within {:?}", self.timeout);
            }
            Ok(Err(e)) => {
                out.error = Some(classify(&e));
                out.message = describe(&e);
            }
            Ok(Ok((status, retry_after, ttft, body))) => {
                out.status = Some(status);
                out.retry_after = retry_after;
                out.ttft = ttft;
                match body {
                    Err(e) => {
                        out.error = Some(ErrorKind::Body);
                        out.message = describe(&e);
                    }
                    Ok(bytes) => {
                        out.bytes = bytes.len() as u64;
                        if !(200..300).contains(&status) {
                            out.error = Some(ErrorKind::from_status(status));
                            out.message = error_message(status, &bytes);
                        } else if let Some((text, tokens)) = target.decode(&bytes) {
                            out.output = Some(text);
                            out.tokens = tokens;
                        } else {
                            out.error = Some(ErrorKind::Decode);
                            out.message = format!(
                                "HTTP {status}: body is not a {} response",
                                target.format.as_str()
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

fn classify(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Body
    } else {
        // A request that failed after connecting (reset, closed mid-headers).
        ErrorKind::Connect
    }
}

/// The error with its causes on one line; reqwest errors carry the URL, never headers.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// `HTTP 503: <error.message>` from an OpenAI-style error body, or its first 200 bytes.
fn error_message(status: u16, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.chars().take(200).collect::<String>()
        });
    format!("HTTP {status}: {}", detail.trim().replace('\n', " "))
}
