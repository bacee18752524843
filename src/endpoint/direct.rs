//! The lean path for plain `http://` targets over HTTP/1.1, the load-test case: hyper's own
//! connection handshake over a tokio `TcpStream` (`TCP_NODELAY`), the request's URI, header
//! block and method prepared once per target, and an idle stack of keep-alive connections
//! shared by a run's client. reqwest stays for TLS, HTTP/2 and redirect hops; a profile at
//! zero latency showed its per-request layers (client and connector clones, URL parsing,
//! redirect policy, pending-request futures) at 15–20 % of loadchain's CPU.
//!
//! Measures and reports exactly as the reqwest path does: the same error kinds (connect,
//! timeout, protocol, body, local), the same size limit, Retry-After and quota headers, SSE
//! scan and redirect handling (a 3xx that is followed continues through reqwest).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::exchange::{BodyFault, BodyReader, Exchange, Failed};
use super::fault::{caused_locally, describe, is_local_fault};
use super::{ClientOptions, Target};
use crate::record::{ErrorKind, Pooling};

type Sender = SendRequest<Full<Bytes>>;

/// What stays the same for every request to one target: where to connect, the request line
/// and the header block (reqwest's defaults, `-H` and the key), built on the first call.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    addr: Addr,
    uri: hyper::Uri,
    /// Headers of a request without a body.
    bare: HeaderMap,
    /// The same with `content-type: application/json`, for a request with a body.
    json: HeaderMap,
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
        let uri = target_uri.parse().ok()?;
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
        let mut json = bare.clone();
        json.append(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Some(Prepared {
            addr,
            uri,
            bare,
            json,
        })
    }

    /// One request with `body` (a GET with an empty body carries none, as with reqwest).
    fn request(&self, target: &Target, body: Bytes) -> hyper::Request<Full<Bytes>> {
        let with_body = target.method != reqwest::Method::GET || !body.is_empty();
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = target.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = if with_body {
            self.json.clone()
        } else {
            self.bare.clone()
        };
        request
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
    idle: Mutex<Vec<Sender>>,
}

impl Direct {
    /// The connections of one client in `pooling` mode.
    pub(super) fn new(pooling: Pooling, connect_timeout: Duration) -> Direct {
        Direct {
            pooled: pooling == Pooling::On,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
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
        let (mut sender, mut reused) = self.checkout(parts, target).await?;
        let mut request = parts.request(target, body);
        let response = loop {
            match sender.try_send_request(request).await {
                Ok(response) => break response,
                Err(mut e) => match e.take_message() {
                    // A kept connection the server had closed: the request never left, so
                    // it goes again on a fresh one (as reqwest's pool retries it).
                    Some(back) if reused => {
                        request = back;
                        sender = Box::pin(self.connect(parts, target)).await?;
                        reused = false;
                    }
                    _ => return Err(sending(target, &e.into_error())),
                },
            }
        };
        let status = response.status().as_u16();
        let mut location = None;
        if (300..400).contains(&status)
            && let Some(next) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|raw| raw.to_str().ok())
                .and_then(|raw| target.url.join(raw).ok())
        {
            if opts.follow_redirects && matches!(next.scheme(), "http" | "https") {
                // Its body unread: this connection is dropped, not reused.
                return Ok(Sent::Redirect { status, next });
            }
            location = Some(super::redact::display_url(&next));
        }
        let mut ex = Exchange::head(status, response.headers(), location);
        let mut body = response.into_body();
        let declared = body.size_hint().exact();
        let Some(mut reader) =
            BodyReader::new(target, &mut ex, declared, opts.max_response_bytes, start)
        else {
            return Ok(Sent::Done(ex));
        };
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Some(chunk) = frame.data_ref()
                        && !reader.push(chunk, &mut ex)
                    {
                        // Over the limit: the connection closes, nothing more is read.
                        return Ok(Sent::Done(ex));
                    }
                }
                Some(Err(e)) => {
                    ex.body = Err(BodyFault::Read {
                        local: caused_locally(&e),
                        message: format!("error reading a body from connection: {}", describe(&e)),
                    });
                    return Ok(Sent::Done(ex));
                }
            }
        }
        reader.finish(&mut ex);
        if self.pooled {
            // Read to its end: the connection is ready for the next call.
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(sender);
        }
        Ok(Sent::Done(ex))
    }

    /// An idle connection that is still open (pooled), else a new one; true when reused.
    async fn checkout(&self, parts: &Prepared, target: &Target) -> Result<(Sender, bool), Failed> {
        if self.pooled {
            loop {
                let idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                let Some(mut sender) = idle else { break };
                if sender.ready().await.is_ok() {
                    return Ok((sender, true));
                }
            }
        }
        // Boxed: a connection opens once per run when pooled, and its future (DNS, TCP,
        // handshake) would otherwise size every call's.
        Ok((Box::pin(self.connect(parts, target)).await?, false))
    }

    /// Opens a connection (TCP with `TCP_NODELAY`, then HTTP/1.1), bounded by the connect
    /// timeout; its driver runs as its own task until the connection closes.
    async fn connect(&self, parts: &Prepared, target: &Target) -> Result<Sender, Failed> {
        let open = async {
            let stream = match &parts.addr {
                Addr::Ip(addr) => TcpStream::connect(*addr).await,
                Addr::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await,
            }?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        };
        let url = super::redact::display_url(&target.url);
        let stream = match tokio::time::timeout(self.connect_timeout, open).await {
            Err(_) => {
                return Err(Failed {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "error sending request for url ({url}): connect timed out after {}",
                        humantime::format_duration(self.connect_timeout)
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(Failed {
                    kind: if is_local_fault(&e) {
                        ErrorKind::Local
                    } else {
                        ErrorKind::Connect
                    },
                    message: format!(
                        "error sending request for url ({url}): tcp connect error: {e}"
                    ),
                });
            }
            Ok(Ok(stream)) => stream,
        };
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| sending(target, &e))?;
        // Its error, if any, reaches the request in flight.
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// A request that got no response: out of descriptors is this machine's fault; anything else
/// after the connection opened is the server not speaking HTTP (garbage, closed or reset
/// mid-headers, too many headers).
fn sending(target: &Target, e: &hyper::Error) -> Failed {
    let kind = if caused_locally(e) {
        ErrorKind::Local
    } else {
        ErrorKind::Protocol
    };
    Failed {
        kind,
        message: format!(
            "error sending request for url ({}): {}",
            super::redact::display_url(&target.url),
            describe(e)
        ),
    }
}
