//! HTTP client modes and one timed call.
//!
//! Pooled: one `reqwest::Client` whose connections stay alive and are reused across the
//! batch. Unpooled: the same client configuration with no idle connections kept, so every
//! call opens (and pays for) a fresh connection, as code that builds a session per call does.
//! Plain `http://` targets over HTTP/1.1 take the lean [`direct`](super::direct) path (its own
//! HTTP/1.1 code, the request prepared once per run) in the same two modes; TLS and HTTP/2 go
//! through reqwest.

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;

use super::direct::{Direct, Sent};
use super::exchange::{BodyFault, BodyReader, Exchange, Failed};
use super::fault::{caused_locally, describe, error_message};
use super::options::MAX_REDIRECTS;
use super::quota::QuotaHeaders;
use super::{ClientOptions, Pacer, Target, Ticket, sse};
use crate::record::{ErrorKind, Pooling};

/// The client could not be built (TLS set-up).
#[derive(Debug, Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// A configured HTTP client in one pooling mode.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// reqwest, for https, `--http2` and followed redirects: built on first use when the
    /// target takes the direct path (building it loads the system's certificates, ~7 ms).
    inner: Arc<OnceLock<reqwest::Client>>,
    pooling: Pooling,
    opts: ClientOptions,
    /// Header-aware pacing, shared by every clone of this client (one run).
    pacer: Option<Arc<Pacer>>,
    /// The direct HTTP/1.1 path and its connections, shared by every clone; None with
    /// `--http2` (prior knowledge goes through reqwest).
    direct: Option<Arc<Direct>>,
}

/// What one call produced. Failures are data: `error` says why.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// When the request was sent: the clock read that `latency` is measured from.
    pub started: Instant,
    /// From just before the request is sent to the last byte of the body.
    pub latency: Duration,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Why the call failed, or None.
    pub error: Option<ErrorKind>,
    /// Failure detail for logs; secrets of the target are replaced by `<redacted>`.
    pub message: String,
    /// The decoded output on success.
    pub output: Option<String>,
    /// Completion tokens reported by the API.
    pub tokens: Option<u32>,
    /// Prompt (input) tokens reported by the API.
    pub input_tokens: Option<u32>,
    /// Why generation stopped, as far as the API said (Unknown on failure).
    pub finish: super::Finish,
    /// Body bytes received.
    pub bytes: u64,
    /// How long the server asked to wait (`retry-after-ms`, or `Retry-After` in seconds or
    /// as an HTTP date), when it said.
    pub retry_after: Option<Duration>,
    /// Streaming only: send to the first chunk with content.
    pub ttft: Option<Duration>,
    /// The quota the response's rate-limit headers announced, if any.
    pub quota: Option<QuotaHeaders>,
    /// Streaming only, once a content chunk arrived: chunk gaps and the token source.
    pub stream: Option<sse::StreamStats>,
}

impl CallOutcome {
    /// A call sent at `started` that took `latency`, with nothing known of it yet: callers
    /// fill in what the exchange produced.
    pub fn new(started: Instant, latency: Duration) -> CallOutcome {
        CallOutcome {
            started,
            latency,
            status: None,
            error: None,
            message: String::new(),
            output: None,
            tokens: None,
            input_tokens: None,
            finish: super::Finish::Unknown,
            bytes: 0,
            retry_after: None,
            ttft: None,
            quota: None,
            stream: None,
        }
    }
}

/// How one call goes out. Lives on the stack for one call: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Plan<'a> {
    /// Over its own HTTP/1.1 code, with the target's prepared parts.
    Direct(&'a Direct, &'a super::direct::Prepared),
    /// Through reqwest, with the first request built.
    Reqwest(Result<(&'a reqwest::Client, reqwest::Request), Failed>),
}

/// The `User-Agent` of every request.
pub(super) const USER_AGENT: &str = concat!("loadchain/", env!("CARGO_PKG_VERSION"));

static CRYPTO: Once = Once::new();

/// rustls needs one process-wide crypto provider; ring builds fast and needs no C toolchain
/// beyond what `cc` brings.
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err only means another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The reqwest client of one pooling mode.
fn build_reqwest(pooling: Pooling, opts: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .tcp_nodelay(true)
        .danger_accept_invalid_certs(opts.insecure)
        // Redirects are followed by hand (see `exchange`), so that `-H` headers never
        // reach another origin and a POST never silently turns into a GET.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT);
    builder = match pooling {
        Pooling::On => builder
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(opts.idle_timeout),
        Pooling::Off => builder.pool_max_idle_per_host(0),
    };
    if opts.http2_prior_knowledge {
        builder = builder.http2_prior_knowledge();
    }
    builder.build().map_err(|e| ClientError(e.to_string()))
}

impl HttpClient {
    /// Builds a client for one pooling mode.
    pub fn new(pooling: Pooling, opts: &ClientOptions) -> Result<HttpClient, ClientError> {
        let client = HttpClient::lazy(pooling, opts);
        let _ = client.inner.set(build_reqwest(pooling, opts)?);
        Ok(client)
    }

    /// A client for calls to `target`: reqwest is built now unless the target takes the
    /// direct path, where it may never be needed (and then costs nothing).
    pub fn for_target(
        pooling: Pooling,
        opts: &ClientOptions,
        target: &Target,
    ) -> Result<HttpClient, ClientError> {
        if opts.http2_prior_knowledge || target.prepared().is_none() {
            return HttpClient::new(pooling, opts);
        }
        Ok(HttpClient::lazy(pooling, opts))
    }

    fn lazy(pooling: Pooling, opts: &ClientOptions) -> HttpClient {
        HttpClient {
            inner: Arc::new(OnceLock::new()),
            pooling,
            opts: opts.clone(),
            pacer: opts.pace.then(|| Arc::new(Pacer::default())),
            direct: (!opts.http2_prior_knowledge).then(|| Arc::new(Direct::new(pooling, opts))),
        }
    }

    /// The reqwest client, built on first use.
    fn reqwest(&self) -> Result<&reqwest::Client, Failed> {
        if let Some(client) = self.inner.get() {
            return Ok(client);
        }
        match build_reqwest(self.pooling, &self.opts) {
            Ok(client) => Ok(self.inner.get_or_init(|| client)),
            Err(e) => Err(Failed {
                kind: ErrorKind::Connect,
                message: e.to_string(),
            }),
        }
    }

    /// Waits until the pacer lets a call of `tokens` estimated tokens go (at once without
    /// pacing). Cancel-safe: nothing is booked until it returns.
    pub async fn pace(&self, tokens: u32) -> Option<Ticket> {
        match &self.pacer {
            Some(pacer) => Some(pacer.wait(tokens).await),
            None => None,
        }
    }

    /// [`HttpClient::call`] for a send [`HttpClient::pace`] let go, the response's quota
    /// headers then fed back to the pacer.
    pub async fn call_paced(
        &self,
        target: &Target,
        body: bytes::Bytes,
        ticket: Option<Ticket>,
    ) -> CallOutcome {
        let out = self.call(target, body).await;
        if let (Some(pacer), Some(ticket)) = (&self.pacer, ticket) {
            let hold = out
                .retry_after
                .filter(|_| matches!(out.status, Some(429 | 503)));
            pacer.observe(&ticket, out.quota.as_ref(), hold);
        }
        out
    }

    /// This client's pooling mode.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Requests this client sent again on a fresh connection because the kept connection
    /// they went out on had been closed by the server (the direct path's count; reqwest's
    /// own resends are not visible to it).
    pub fn stale_retries(&self) -> u64 {
        self.direct.as_ref().map_or(0, |d| d.stale_retries())
    }

    /// Sends one request and reads the whole body, timing send → last byte. The per-call
    /// timeout covers every redirect hop and the whole body.
    pub async fn call(&self, target: &Target, body: bytes::Bytes) -> CallOutcome {
        // Plain http:// over HTTP/1.1: the request parts were prepared once, on the first
        // call; anything else is built before the clock starts (latency is the exchange, not
        // request assembly).
        let plan = match (self.direct.as_deref(), target.prepared()) {
            (Some(direct), Some(parts)) => Plan::Direct(direct, parts),
            _ => Plan::Reqwest(self.reqwest().and_then(|client| {
                let request = self.request(client, target, &target.method, &target.url, &body);
                Ok((client, request?))
            })),
        };
        // The call's one clock read: its start offset and its latency both come from it.
        let start = Instant::now();
        let result = match plan {
            Plan::Direct(direct, parts) => {
                let exchange = self.exchange_direct(direct, parts, target, body, start);
                tokio::time::timeout_at(start + self.opts.timeout, exchange).await
            }
            Plan::Reqwest(Ok((client, first))) => {
                // Boxed: reqwest's futures are large, and every call's future (the direct
                // path's too) would otherwise be sized, and copied, for them.
                let exchange = Box::pin(self.exchange(client, target, first, body, start));
                tokio::time::timeout_at(start + self.opts.timeout, async {
                    exchange.await.map_err(Failed::from)
                })
                .await
            }
            Plan::Reqwest(Err(e)) => Ok(Err(e)),
        };
        let latency = start.elapsed();
        // Responses come in bursts (every call at a limit sent together, answered together).
        // Each call then decodes, records and sends its next request; without this yield,
        // the calls whose answers came in the same burst waited for that work before their
        // clocks stopped: at 50 ms and limit 10, p50 read ~60 µs above oha's on the same mock.
        // After it, every answer that arrived is timed first, and the work follows.
        tokio::task::yield_now().await;
        let mut out = CallOutcome::new(start, latency);
        match result {
            Err(_) => {
                out.error = Some(ErrorKind::Timeout);
                out.message = format!(
                    "no complete response within {}",
                    humantime::format_duration(self.opts.timeout)
                );
            }
            Ok(Err(Failed { kind, message })) => {
                out.error = Some(kind);
                out.message = self.explain(target, kind, message).await;
            }
            Ok(Ok(ex)) => self.settle(target, ex, &mut out),
        }
        if !out.message.is_empty() {
            out.message = target.secrets.redact(&out.message);
        }
        out
    }

    /// Fills `out` from a response that arrived.
    fn settle(&self, target: &Target, ex: Exchange, out: &mut CallOutcome) {
        let status = ex.status;
        out.status = Some(status);
        out.retry_after = ex.retry_after;
        out.quota = ex.quota;
        if let Some(q) = &ex.quota {
            self.opts.announced.record(q);
        }
        out.ttft = ex.ttft;
        out.stream = ex.stream;
        let bytes = match ex.body {
            Err(BodyFault::Read { local, message }) => {
                out.error = Some(if local {
                    ErrorKind::Local
                } else {
                    ErrorKind::Body
                });
                out.message = message;
                return;
            }
            Err(BodyFault::TooLarge { seen, declared }) => {
                out.error = Some(ErrorKind::Body);
                out.bytes = if declared { 0 } else { seen };
                out.message = format!(
                    "HTTP {status}: response body {} {seen} bytes, over --max-response-bytes {}; not read further",
                    if declared { "announced as" } else { "reached" },
                    self.opts.max_response_bytes
                );
                return;
            }
            Ok(bytes) => bytes,
        };
        out.bytes = bytes.len() as u64;
        if (300..400).contains(&status) {
            out.error = Some(ErrorKind::Redirect);
            let to = ex.location.as_deref().unwrap_or("no Location header");
            out.message = if self.opts.follow_redirects {
                format!(
                    "HTTP {status}: redirect to {to} not followed (more than {MAX_REDIRECTS} hops, or no usable Location)"
                )
            } else {
                format!(
                    "HTTP {status}: redirect to {to} (not followed; --follow-redirects follows it)"
                )
            };
        } else if let Some(coding) = ex.encoding {
            // A compressed body is neither an output nor a readable error message.
            out.error = Some(match status {
                200..=299 => ErrorKind::Decode,
                _ => ErrorKind::from_status(status),
            });
            out.message = format!(
                "HTTP {status}: the body is {coding}-encoded (Content-Encoding: {coding}), which loadchain does not decode (it sends no Accept-Encoding)"
            );
        } else if !(200..300).contains(&status) {
            out.error = Some(ErrorKind::from_status(status));
            out.message = error_message(status, &bytes);
        } else {
            decode_into(target, status, bytes, out);
        }
    }

    /// One request of a call: headers from `-H` and the API key only to the target's own
    /// origin (a redirect elsewhere gets none).
    fn request(
        &self,
        client: &reqwest::Client,
        target: &Target,
        method: &reqwest::Method,
        url: &reqwest::Url,
        body: &bytes::Bytes,
    ) -> Result<reqwest::Request, reqwest::Error> {
        let mut headers = if url.origin() == target.url.origin() {
            target.headers.clone()
        } else {
            reqwest::header::HeaderMap::new()
        };
        let mut request = client.request(method.clone(), url.clone());
        if *method != reqwest::Method::GET || !body.is_empty() {
            // The body's type goes with the body, to any origin: a user's `-H Content-Type`
            // replaces the default instead of going out beside it.
            let kind = target.headers.get(reqwest::header::CONTENT_TYPE).cloned();
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                kind.unwrap_or(reqwest::header::HeaderValue::from_static(
                    "application/json",
                )),
            );
            request = request.body(body.clone());
        }
        request.headers(headers).build()
    }

    /// Sends `first` (built before the clock started), follows redirects by hand when asked,
    /// and reads the body up to the size limit.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        target: &Target,
        first: reqwest::Request,
        body: bytes::Bytes,
        start: Instant,
    ) -> Result<Exchange, reqwest::Error> {
        let (method, url) = (target.method.clone(), target.url.clone());
        self.follow(client, target, method, url, first, body, 0, start)
            .await
    }

    /// The first hop over the direct path; a redirect it meets (when followed) goes on
    /// through reqwest, which may lead to https.
    async fn exchange_direct(
        &self,
        direct: &Direct,
        parts: &super::direct::Prepared,
        target: &Target,
        body: bytes::Bytes,
        start: Instant,
    ) -> Result<Exchange, Failed> {
        let sent = direct
            .send(parts, target, body.clone(), &self.opts, start)
            .await?;
        match sent {
            Sent::Done(ex) => Ok(ex),
            Sent::Redirect { status, next } => {
                let (method, body) = redirected(status, target.method.clone(), body);
                let client = self.reqwest()?;
                let request = self.request(client, target, &method, &next, &body)?;
                let next = self.follow(client, target, method, next, request, body, 1, start);
                let next = Box::pin(next);
                Ok(next.await?)
            }
        }
    }

    /// Sends `request` (hop `hops` of a call, to `url`), following redirects by hand when
    /// asked, and reads the last response's body up to the size limit.
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        client: &reqwest::Client,
        target: &Target,
        mut method: reqwest::Method,
        mut url: reqwest::Url,
        mut request: reqwest::Request,
        mut body: bytes::Bytes,
        mut hops: usize,
        start: Instant,
    ) -> Result<Exchange, reqwest::Error> {
        loop {
            let response = client.execute(request).await?;
            let status = response.status().as_u16();
            let location = (300..400)
                .contains(&status)
                .then(|| {
                    let raw = response.headers().get(reqwest::header::LOCATION)?;
                    url.join(raw.to_str().ok()?).ok()
                })
                .flatten();
            match location {
                Some(next)
                    if self.opts.follow_redirects
                        && hops < MAX_REDIRECTS
                        && matches!(next.scheme(), "http" | "https") =>
                {
                    hops += 1;
                    (method, body) = redirected(status, method, body);
                    url = next;
                    request = self.request(client, target, &method, &url, &body)?;
                }
                location => {
                    let location = location.map(|l| super::redact::display_url(&l));
                    return Ok(self.read(target, response, location, start).await);
                }
            }
        }
    }

    /// Reads a response's body up to `--max-response-bytes`, timing the first token when
    /// streaming. A body announced or found larger is not read further.
    async fn read(
        &self,
        target: &Target,
        mut response: reqwest::Response,
        location: Option<String>,
        start: Instant,
    ) -> Exchange {
        let status = response.status().as_u16();
        let mut ex = Exchange::head(status, response.headers(), location);
        let max = self.opts.max_response_bytes;
        let Some(mut reader) =
            BodyReader::new(target, &mut ex, response.content_length(), max, start)
        else {
            return ex;
        };
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    ex.body = Err(BodyFault::Read {
                        local: caused_locally(&e),
                        message: describe(&e),
                    });
                    return ex;
                }
            };
            // Over the limit: dropping the response closes the connection, nothing more is read.
            if !reader.push(&chunk, &mut ex) {
                return ex;
            }
        }
        reader.finish(&mut ex);
        ex
    }

    /// Adds what a user can do about an error, where loadchain knows. Under `--http2`, a
    /// protocol failure says the server does not speak HTTP/2 only when it does not answer
    /// the preface (probed once per target, after the clock stopped).
    async fn explain(&self, target: &Target, kind: ErrorKind, message: String) -> String {
        match kind {
            ErrorKind::Protocol if self.opts.http2_prior_knowledge => {
                // Bounded: the worker waits for it before the chain's next call.
                let within = self.opts.connect_timeout.min(Duration::from_secs(2));
                super::h2c::explain(target, within, message).await
            }
            ErrorKind::Local => format!(
                "{message} (a fault on this machine: raise the open-file limit with `ulimit -n`, or lower the limit)"
            ),
            _ => message,
        }
    }
}

/// Fills `out` from a 2xx body: its output, tokens and stop reason, or why it is not one.
/// The body is handed over, so a stream's output can take its place instead of a copy.
fn decode_into(target: &Target, status: u16, bytes: Vec<u8>, out: &mut CallOutcome) {
    match target.decode_owned(bytes) {
        Ok(decoded) => {
            let text = decoded.text;
            // A server that echoes the request back must not get a secret into results.
            out.output = Some(match target.secrets.redact_secrets(&text) {
                std::borrow::Cow::Borrowed(_) => text,
                std::borrow::Cow::Owned(clean) => clean,
            });
            out.tokens = decoded.tokens;
            out.input_tokens = decoded.input_tokens;
            out.finish = super::Finish::of(decoded.stop_reason.as_deref());
        }
        Err(bytes) => {
            if let Some(detail) = (target.format == super::ApiFormat::Anthropic)
                .then(|| super::anthropic::stream_error(&bytes))
                .flatten()
            {
                // An `error` event after a 200 (an overload mid-generation): the server's fault.
                out.error = Some(ErrorKind::ServerError);
                out.message = format!("HTTP {status}: stream error {detail}");
                return;
            }
            out.error = Some(ErrorKind::Decode);
            let format = target.format.as_str();
            let article = if format.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            out.message = format!("HTTP {status}: body is not {article} {format} response");
        }
    }
}

/// The method and body a redirect with `status` sends on to its Location: 303 means "GET the
/// answer elsewhere"; 301/302/307/308 keep the method and body, since an API call turned into
/// a body-less GET is never what was meant.
fn redirected(
    status: u16,
    method: reqwest::Method,
    body: bytes::Bytes,
) -> (reqwest::Method, bytes::Bytes) {
    if status == 303 {
        (reqwest::Method::GET, bytes::Bytes::new())
    } else {
        (method, body)
    }
}

#[cfg(test)]
mod tests {
    use super::redirected;

    #[test]
    fn only_303_turns_a_call_into_a_body_less_get() {
        let body = bytes::Bytes::from_static(b"{}");
        let (m, b) = redirected(303, reqwest::Method::POST, body.clone());
        assert_eq!((m, b.len()), (reqwest::Method::GET, 0));
        for status in [301, 302, 307, 308] {
            let (m, b) = redirected(status, reqwest::Method::POST, body.clone());
            assert_eq!((m, b), (reqwest::Method::POST, body.clone()), "{status}");
        }
    }
}
