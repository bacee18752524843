//! HTTP/1.1 on the wire for the direct path: a request head serialized once per target, a
//! response head parsed with `httparse` (hyper's own parser), and a chunked-body decoder.
//!
//! Why not hyper's client connection: it keeps ~23 kB per open connection (8 KB read buffer,
//! 8 KB write buffer, a dispatch-channel block) and runs a task per connection that hands each
//! response to the calling task: one more wake-up, often on the other core. At 10,000 calls in
//! flight that was 234 MB, and at 50 ms the hand-off was part of loadchain's p50 above oha's.
//! Here the call's own future writes the request and reads the response, and a buffer exists
//! only while a response is being read.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::exchange::HeaderRead;

/// Most headers a response head may have, as hyper allows.
const MAX_HEADERS: usize = 100;

/// Largest response head read (status line and headers), as hyper's default read limit.
pub(super) const MAX_HEAD_BYTES: usize = 400 * 1024;

/// A request head without its `content-length`: the request line and the header block.
#[derive(Debug, Clone)]
pub(super) struct RequestHead {
    /// `METHOD target HTTP/1.1\r\n` and every header line, each ending in CRLF.
    lines: Vec<u8>,
    /// Whether a body (and so a content-length) goes with it.
    with_body: bool,
}

impl RequestHead {
    /// The head for `method` to `target_uri` with `headers`; `with_body` adds a
    /// content-length line per request.
    pub(super) fn new(
        method: &reqwest::Method,
        target_uri: &str,
        headers: &HeaderMap,
        with_body: bool,
    ) -> RequestHead {
        let mut lines = Vec::with_capacity(256);
        lines.extend_from_slice(method.as_str().as_bytes());
        lines.push(b' ');
        lines.extend_from_slice(target_uri.as_bytes());
        lines.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            lines.extend_from_slice(name.as_str().as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.extend_from_slice(b"\r\n");
        }
        RequestHead { lines, with_body }
    }

    /// The whole request with `body`, ready for one write.
    pub(super) fn request(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.len() + 32 + body.len());
        out.extend_from_slice(&self.lines);
        if self.with_body {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if self.with_body {
            out.extend_from_slice(body);
        }
        out
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub(super) status: u16,
    /// Bytes the head took: the body starts after them.
    pub(super) len: usize,
    pub(super) framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub(super) keep_alive: bool,
    /// How long the server keeps the connection open while idle (`Keep-Alive: timeout=N`).
    pub(super) idle_limit: Option<Duration>,
    /// The `Location` header, raw.
    pub(super) location: Option<String>,
    /// Only the headers a call looks at (Retry-After, rate-limit quotas): most responses have
    /// none, and then this map never allocates.
    pub(super) headers: HeaderMap,
}

/// A response head that is not HTTP/1.x.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadHead(pub(super) String);

impl fmt::Display for BadHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the response head at the start of `buf`: None while incomplete. Interim 1xx heads
/// (other than 101) are skipped, their length counted in `len`.
pub(super) fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<ResponseHead>, BadHead> {
    let mut skipped = 0;
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let len = match response.parse(&buf[skipped..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(BadHead(format!(
                        "response head over {MAX_HEAD_BYTES} bytes"
                    )));
                }
                return Ok(None);
            }
            Err(e) => return Err(BadHead(format!("invalid HTTP response: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            skipped += len;
            continue;
        }
        let http11 = response.version == Some(1);
        let mut head = ResponseHead {
            status,
            len: skipped + len,
            framing: Framing::UntilClose,
            keep_alive: http11,
            idle_limit: None,
            location: None,
            headers: HeaderMap::new(),
        };
        let mut length = Length::default();
        // Any transfer-encoding header, and whether the last coding of the last one is chunked.
        let (mut coded, mut chunked) = (false, false);
        for h in response.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                length.take(h.value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                coded = true;
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        head.keep_alive = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("keep-alive") {
                head.idle_limit = keep_alive_timeout(h.value).or(head.idle_limit);
            } else if name.eq_ignore_ascii_case("location") {
                head.location = std::str::from_utf8(h.value).ok().map(str::to_string);
            } else if HeaderRead::of(name) != HeaderRead::Ignored
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(h.value),
                )
            {
                head.headers.append(name, value);
            }
        }
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length whatever their order, and
        // a response with both may be a smuggling attempt, so its connection is not reused.
        if coded && length.seen {
            head.keep_alive = false;
        }
        let length = if coded { None } else { length.value()? };
        head.framing = if head_request || status == 204 || status == 304 || status == 101 {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if coded {
            // A coding other than chunked last: the body runs until the server closes.
            Framing::UntilClose
        } else if let Some(len) = length {
            Framing::Length(len)
        } else {
            Framing::UntilClose
        };
        if head.framing == Framing::UntilClose || status == 101 {
            head.keep_alive = false;
        }
        return Ok(Some(head));
    }
}

/// The content-length headers of a head: their value, or why they have none usable (only an
/// error when no transfer-encoding overrides them).
#[derive(Default)]
struct Length {
    seen: bool,
    value: Option<u64>,
    bad: Option<&'static str>,
}

impl Length {
    fn take(&mut self, raw: &[u8]) {
        self.seen = true;
        match std::str::from_utf8(raw)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            None => self.bad = Some("invalid content-length header"),
            Some(v) if self.value.is_some_and(|seen| seen != v) => {
                self.bad = Some("conflicting content-length headers");
            }
            Some(v) => self.value = Some(v),
        }
    }

    fn value(&self) -> Result<Option<u64>, BadHead> {
        match self.bad {
            Some(bad) => Err(BadHead(bad.into())),
            None => Ok(self.value),
        }
    }
}

/// The `timeout=N` (seconds) of a `Keep-Alive` header value, as Apache and others send it.
fn keep_alive_timeout(value: &[u8]) -> Option<Duration> {
    value.split(|&b| b == b',').find_map(|param| {
        let param = std::str::from_utf8(param).ok()?.trim();
        let (name, secs) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| secs.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// A chunked body that breaks the encoding.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadChunk(pub(super) &'static str);

/// Where a chunked body's decoding stands, fed whatever bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Reading a chunk-size line: the size so far, its digit count, whether in an extension.
    Size {
        size: u64,
        digits: u8,
        ext: bool,
    },
    /// The LF that ends a size line.
    SizeLf {
        size: u64,
    },
    /// Data bytes still to come in this chunk.
    Data(u64),
    /// The CR then LF after a chunk's data.
    DataCr,
    DataLf,
    /// Trailer lines after the last chunk; `fresh` at the start of a line.
    Trailer {
        fresh: bool,
    },
    /// The LF of a trailer line (`last` when that line was empty: the body's end).
    TrailerLf {
        last: bool,
    },
    /// The body ended.
    Done,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::Size {
            size: 0,
            digits: 0,
            ext: false,
        }
    }
}

impl Chunked {
    /// Takes bytes from the front of `input`: returns how many it used and the data among
    /// them (a slice of `input`; empty when they were framing). Call again with the rest
    /// until `input` is used up or the body is [`Chunked::Done`].
    pub(super) fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), BadChunk> {
        let mut used = 0;
        while used < input.len() {
            let byte = input[used];
            *self = match *self {
                Chunked::Data(left) => {
                    let take =
                        (input.len() - used).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = &input[used..used + take];
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataCr
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok((used + take, data));
                }
                Chunked::Done => break,
                Chunked::Size { size, digits, ext } => match byte {
                    b'\r' if digits > 0 => Chunked::SizeLf { size },
                    b'\n' if digits > 0 => Chunked::after_size(size),
                    _ if ext => Chunked::Size { size, digits, ext },
                    b';' | b' ' | b'\t' if digits > 0 => Chunked::Size {
                        size,
                        digits,
                        ext: true,
                    },
                    _ => {
                        let digit = (byte as char)
                            .to_digit(16)
                            .ok_or(BadChunk("invalid chunk size line"))?;
                        if digits >= 15 {
                            return Err(BadChunk("chunk size too large"));
                        }
                        Chunked::Size {
                            size: size * 16 + u64::from(digit),
                            digits: digits + 1,
                            ext,
                        }
                    }
                },
                Chunked::SizeLf { size } => match byte {
                    b'\n' => Chunked::after_size(size),
                    _ => return Err(BadChunk("invalid chunk size line")),
                },
                Chunked::DataCr => match byte {
                    b'\r' => Chunked::DataLf,
                    b'\n' => Chunked::default(),
                    _ => return Err(BadChunk("invalid chunk body end")),
                },
                Chunked::DataLf => match byte {
                    b'\n' => Chunked::default(),
                    _ => return Err(BadChunk("invalid chunk body end")),
                },
                Chunked::Trailer { fresh } => match byte {
                    b'\r' => Chunked::TrailerLf { last: fresh },
                    b'\n' if fresh => Chunked::Done,
                    b'\n' => Chunked::Trailer { fresh: true },
                    _ => Chunked::Trailer { fresh: false },
                },
                Chunked::TrailerLf { last } => match byte {
                    b'\n' if last => Chunked::Done,
                    b'\n' => Chunked::Trailer { fresh: true },
                    _ => return Err(BadChunk("invalid trailer line")),
                },
            };
            used += 1;
        }
        Ok((used, &[]))
    }

    fn after_size(size: u64) -> Chunked {
        if size == 0 {
            Chunked::Trailer { fresh: true }
        } else {
            Chunked::Data(size)
        }
    }

    /// Whether the last chunk and the trailer have been read.
    pub(super) fn done(&self) -> bool {
        *self == Chunked::Done
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
