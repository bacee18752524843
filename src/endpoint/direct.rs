//! The lean path for plain `http://` targets over HTTP/1.1, the load-test case: the call's
//! own future writes the request (prepared once per target, see [`h1`](super::h1)) on a tokio
//! `TcpStream` (`TCP_NODELAY`) and reads the response, with an idle stack of keep-alive
//! connections shared by a run's client. reqwest stays for TLS, HTTP/2 and redirect hops; a
//! profile at zero latency showed its per-request layers (client and connector clones, URL
//! parsing, redirect policy, pending-request futures) at 15–20 % of loadchain's CPU, and
//! hyper's client connection (a task and ~23 kB per connection) most of the rest.
//!
//! Measures and reports exactly as the reqwest path does: the same error kinds (connect,
//! timeout, protocol, body, local), the same size limit, Retry-After and quota headers, SSE
//! scan and redirect handling (a 3xx that is followed continues through reqwest).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::exchange::{BodyReader, Exchange, Failed};
use super::fault::is_local_fault;
use super::h1::{Framing, RequestHead, ResponseHead};
use super::socket::{Broke, Reuse, exchange_head, read_body, still_open};
use super::{ClientOptions, Target};
use crate::record::{ErrorKind, Pooling};

/// What stays the same for every request to one target: where to connect, the request line
/// and the header block (reqwest's defaults, `-H` and the key), built on the first call.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    addr: Addr,
    /// The head of a request without a body.
    bare: RequestHead,
    /// The same with `content-type: application/json` and a content-length.
    json: RequestHead,
}

#[derive(Debug, Clone)]
enum Addr {
    Ip(SocketAddr),
    Name(String, u16),
}

impl Prepared {
    /// The parts of `target`'s requests, or None when the target is not for this path:
    /// https, credentials in the URL (reqwest turns them into basic auth), `--exec`.
    pub(super) fn new(target: &Target) -> Option<Prepared> {
        let url = &target.url;
        if url.scheme() != "http"
            || !url.username().is_empty()
            || url.password().is_some()
            || target.exec.is_some()
        {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = match bare_host.parse::<IpAddr>() {
            Ok(ip) => Addr::Ip(SocketAddr::new(ip, port)),
            Err(_) => Addr::Name(bare_host.to_string(), port),
        };
        let mut target_uri = url.path().to_string();
        if let Some(query) = url.query() {
            target_uri.push('?');
            target_uri.push_str(query);
        }
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        // As reqwest sends them: `-H` and the key as given, its defaults where they are absent.
        let mut bare = target.headers.clone();
        bare.entry(header::HOST)
            .or_insert(HeaderValue::from_str(&authority).ok()?);
        bare.entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(super::client::USER_AGENT));
        bare.entry(header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        // A user's `-H Content-Type` replaces the default, as `Accept` does above.
        let mut json = bare.clone();
        json.entry(header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        Some(Prepared {
            addr,
            bare: RequestHead::new(&target.method, &target_uri, &bare, false),
            json: RequestHead::new(&target.method, &target_uri, &json, true),
        })
    }

    /// One request with `body`, as bytes for one write (a GET with an empty body carries
    /// none, as with reqwest).
    fn request(&self, target: &Target, body: &[u8]) -> Vec<u8> {
        let with_body = target.method != reqwest::Method::GET || !body.is_empty();
        if with_body {
            self.json.request(body)
        } else {
            self.bare.request(body)
        }
    }
}

/// What the first hop produced.
pub(super) enum Sent {
    /// A response, its body read as far as it went.
    Done(Exchange),
    /// A 3xx to follow (`--follow-redirects`): reqwest takes the next hop.
    Redirect { status: u16, next: reqwest::Url },
}

/// A run's connections over the direct path: an idle stack of keep-alive connections when
/// pooled; a fresh connection per call, closed after it, when not.
#[derive(Debug)]
pub(super) struct Direct {
    pooled: bool,
    connect_timeout: Duration,
    /// Longest a kept connection may sit idle (`--idle-timeout`).
    idle_timeout: Duration,
    /// Whether a request whose reused connection closed unanswered goes again.
    stale_retry: bool,
    idle: Mutex<Vec<Kept>>,
    /// Requests sent again on a fresh connection because their kept one was found closed.
    stale_retries: AtomicU64,
}

/// An idle keep-alive connection and when it stops being reused.
#[derive(Debug)]
struct Kept {
    io: TcpStream,
    until: Instant,
}

impl Direct {
    /// The connections of one client in `pooling` mode.
    pub(super) fn new(pooling: Pooling, opts: &ClientOptions) -> Direct {
        Direct {
            pooled: pooling == Pooling::On,
            connect_timeout: opts.connect_timeout,
            idle_timeout: opts.idle_timeout,
            stale_retry: opts.stale_retry,
            idle: Mutex::new(Vec::new()),
            stale_retries: AtomicU64::new(0),
        }
    }

    /// Requests sent again so far because a kept connection was found closed.
    pub(super) fn stale_retries(&self) -> u64 {
        self.stale_retries.load(Ordering::Relaxed)
    }

    /// Sends one request to `target` and reads its response (the first hop of a call).
    pub(super) async fn send(
        &self,
        parts: &Prepared,
        target: &Target,
        body: Bytes,
        opts: &ClientOptions,
        start: Instant,
    ) -> Result<Sent, Failed> {
        let head_request = target.method == reqwest::Method::HEAD;
        let (mut io, mut reused) = self.checkout(parts, target).await?;
        let mut buf = Vec::new();
        let head = loop {
            let request = parts.request(target, &body);
            match exchange_head(&mut io, request, &mut buf, head_request).await {
                Ok(head) => break head,
                // A kept connection the server had closed (RFC 9112 §9.3.1): see `resends`.
                Err(broke) if reused && buf.is_empty() && self.resends(&broke) => {
                    self.stale_retries.fetch_add(1, Ordering::Relaxed);
                    io = Box::pin(self.connect(parts, target)).await?;
                    reused = false;
                }
                Err(broke) => return Err(sending(target, broke, reused && buf.is_empty())),
            }
        };
        let status = head.status;
        let mut location = None;
        if (300..400).contains(&status)
            && let Some(next) = head
                .location
                .as_deref()
                .and_then(|raw| target.url.join(raw).ok())
        {
            if opts.follow_redirects && matches!(next.scheme(), "http" | "https") {
                // Its body unread: this connection is dropped, not reused.
                return Ok(Sent::Redirect { status, next });
            }
            location = Some(super::redact::display_url(&next));
        }
        // Boxed: the body's reading state (the exchange, the reader, the head) exists only
        // while a response arrives, not in every call's future while it waits for one (at
        // 10,000 calls in flight, a kilobyte each is 10 MB).
        let read = self.read_response(io, head, buf, location, target, opts, start);
        Ok(Sent::Done(Box::pin(read).await))
    }

    /// Reads the body that follows `head` (its first bytes already in `buf`) up to the size
    /// limit; the connection goes back to the idle stack when it can carry another request.
    #[allow(clippy::too_many_arguments)]
    async fn read_response(
        &self,
        mut io: TcpStream,
        head: ResponseHead,
        mut buf: Vec<u8>,
        location: Option<String>,
        target: &Target,
        opts: &ClientOptions,
        start: Instant,
    ) -> Exchange {
        let mut ex = Exchange::head(head.status, &head.headers, location);
        let declared = match head.framing {
            Framing::Length(len) => Some(len),
            Framing::Empty => Some(0),
            _ => None,
        };
        let Some(mut reader) =
            BodyReader::new(target, &mut ex, declared, opts.max_response_bytes, start)
        else {
            return ex;
        };
        buf.drain(..head.len);
        match read_body(&mut io, &head, buf, &mut reader, &mut ex).await {
            Ok(Reuse::No) => reader.finish(&mut ex),
            Ok(Reuse::Yes) => {
                reader.finish(&mut ex);
                let keep = self.keep_for(head.idle_limit);
                if self.pooled && !keep.is_zero() {
                    let until = Instant::now() + keep;
                    self.idle().push(Kept { io, until });
                }
            }
            // Over the limit, or broken: ex.body says so; the connection closes.
            Err(()) => {}
        }
        ex
    }

    /// Whether a request that got no byte of answer on a reused connection goes again on a
    /// fresh one, as curl and hyper's pool do. RFC 9112 §9.3.1: a client may retry a request
    /// when it knows the server did not process it; a kept connection the server closed
    /// (its keep-alive timeout, or a server that closes after every response without saying
    /// so) answers the next request with EOF or a reset before any byte, and the request
    /// never reached the application. A failed write always goes again (the request did not
    /// leave whole); a request written whole goes again unless `--no-stale-retry`, since a
    /// server that read it and then died would see it twice: a trade-off for POSTs that
    /// cost money, hence the flag, and the `stale_retries` count in every report.
    fn resends(&self, broke: &Broke) -> bool {
        match broke {
            Broke::Write(_) => true,
            Broke::Read(_) => self.stale_retry,
            Broke::Head(_) => false,
        }
    }

    /// How long a connection may sit idle before it is closed instead of reused: the client's
    /// `--idle-timeout`, or less when the server announced its own (`Keep-Alive: timeout=N`),
    /// retired a quarter of N (at most 1 s) before the server would close it.
    fn keep_for(&self, server: Option<Duration>) -> Duration {
        let server = server.map_or(Duration::MAX, |n| n - (n / 4).min(Duration::from_secs(1)));
        self.idle_timeout.min(server)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection that is still open (pooled), else a new one; true when reused.
    /// Costs one system call on a reuse (the peek of [`still_open`]).
    async fn checkout(
        &self,
        parts: &Prepared,
        target: &Target,
    ) -> Result<(TcpStream, bool), Failed> {
        if self.pooled {
            let now = Instant::now();
            loop {
                let kept = {
                    let mut idle = self.idle();
                    let kept = idle.pop();
                    if kept.as_ref().is_some_and(|k| k.until <= now) {
                        // The newest is past its idle time: so is much of the stack.
                        idle.retain(|k| k.until > now);
                    }
                    kept
                };
                let Some(kept) = kept else { break };
                if kept.until > now && still_open(&kept.io) {
                    return Ok((kept.io, true));
                }
            }
        }
        // Boxed: a connection opens once per run when pooled, and its future (DNS, TCP)
        // would otherwise size every call's.
        Ok((Box::pin(self.connect(parts, target)).await?, false))
    }

    /// Opens a connection (TCP with `TCP_NODELAY`), bounded by the connect timeout.
    async fn connect(&self, parts: &Prepared, target: &Target) -> Result<TcpStream, Failed> {
        let open = async {
            let stream = match &parts.addr {
                Addr::Ip(addr) => TcpStream::connect(*addr).await,
                Addr::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await,
            }?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream)
        };
        let url = super::redact::display_url(&target.url);
        match tokio::time::timeout(self.connect_timeout, open).await {
            Err(_) => Err(Failed {
                kind: ErrorKind::Timeout,
                message: format!(
                    "error sending request for url ({url}): connect timed out after {}",
                    humantime::format_duration(self.connect_timeout)
                ),
            }),
            Ok(Err(e)) => Err(Failed {
                kind: if is_local_fault(&e) {
                    ErrorKind::Local
                } else {
                    ErrorKind::Connect
                },
                message: format!("error sending request for url ({url}): tcp connect error: {e}"),
            }),
            Ok(Ok(stream)) => Ok(stream),
        }
    }
}

/// A request that got no response: out of descriptors is this machine's fault; anything else
/// after the connection opened is the server not speaking HTTP (garbage, closed or reset
/// mid-headers, too many headers). `stale`: it was a reused connection that closed before
/// any byte of the answer, not sent again (`--no-stale-retry`).
fn sending(target: &Target, broke: Broke, stale: bool) -> Failed {
    let (local, mut cause) = match broke {
        Broke::Write(e) => (is_local_fault(&e), format!("connection error: {e}")),
        Broke::Read(Some(e)) => (is_local_fault(&e), format!("connection error: {e}")),
        Broke::Read(None) => (
            false,
            "connection closed before message completed".to_string(),
        ),
        Broke::Head(bad) => (false, bad.to_string()),
    };
    if stale {
        cause.push_str(
            " (a reused keep-alive connection the server had closed; not sent again: --no-stale-retry)",
        );
    }
    Failed {
        kind: if local {
            ErrorKind::Local
        } else {
            ErrorKind::Protocol
        },
        message: format!(
            "error sending request for url ({}): {cause}",
            super::redact::display_url(&target.url)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientOptions, Direct, Duration};
    use crate::record::Pooling;

    #[test]
    fn a_connection_is_kept_for_the_idle_timeout_or_less_when_the_server_announces_less() {
        let direct = Direct::new(Pooling::On, &ClientOptions::default());
        let secs = Duration::from_secs;
        assert_eq!(direct.keep_for(None), secs(4), "--idle-timeout's default");
        assert_eq!(direct.keep_for(Some(secs(60))), secs(4));
        assert_eq!(direct.keep_for(Some(secs(5))), secs(4), "a second before");
        assert_eq!(direct.keep_for(Some(secs(1))), Duration::from_millis(750));
        assert_eq!(direct.keep_for(Some(secs(0))), Duration::ZERO, "never kept");
    }
}
