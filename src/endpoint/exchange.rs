//! A response as far as a call read it, shared by the reqwest path and the direct one: its
//! head (status, Retry-After, quota headers), its body read up to `--max-response-bytes` with
//! a stream scanned as it arrives, and why a call got no response at all.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::fault::{classify, describe, retry_after, untrusted_certificate};
use super::quota::QuotaHeaders;
use super::{Target, sse};
use crate::record::ErrorKind;

/// A response as far as it was read.
pub(super) struct Exchange {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
    pub(super) quota: Option<QuotaHeaders>,
    pub(super) ttft: Option<Duration>,
    pub(super) stream: Option<sse::StreamStats>,
    pub(super) body: Result<Vec<u8>, BodyFault>,
    /// Where a 3xx that was not followed pointed.
    pub(super) location: Option<String>,
    /// The response's `Content-Encoding` when it is not `identity`: loadchain sends no
    /// `Accept-Encoding` and decodes none, so such a body is never an output.
    pub(super) encoding: Option<String>,
}

/// Why a body was not read to its end.
pub(super) enum BodyFault {
    /// The transport failed mid-body; `local` when this machine was at fault (descriptors).
    Read { local: bool, message: String },
    /// The body is (or says it is) larger than `--max-response-bytes`; `seen` bytes at least.
    TooLarge { seen: u64, declared: bool },
}

/// Why a call got no response: its error kind and the message (secrets not yet redacted).
pub(super) struct Failed {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
}

impl From<reqwest::Error> for Failed {
    fn from(e: reqwest::Error) -> Failed {
        let mut message = describe(&e);
        if untrusted_certificate(&e) {
            message.push_str(
                " (the server's certificate is not trusted; for a self-signed test server, --insecure skips the check)",
            );
        }
        Failed {
            kind: classify(&e),
            message,
        }
    }
}

impl Exchange {
    /// A response's head: its status, how long it asks to wait, the quota it announces.
    pub(super) fn head(
        status: u16,
        headers: &reqwest::header::HeaderMap,
        location: Option<String>,
    ) -> Exchange {
        // One pass over the names: most responses carry neither, and parsing the quota looks
        // up (and formats) eight header names.
        let (mut wait, mut quota, mut encoded) = (false, false, false);
        for name in headers.keys() {
            let read = HeaderRead::of(name.as_str());
            wait |= read == HeaderRead::Wait;
            quota |= read == HeaderRead::Quota;
            encoded |= read == HeaderRead::Encoding;
        }
        Exchange {
            status,
            retry_after: wait
                .then(|| retry_after(headers, SystemTime::now()))
                .flatten(),
            quota: quota
                .then(|| QuotaHeaders::parse(headers, SystemTime::now()))
                .flatten(),
            ttft: None,
            stream: None,
            body: Ok(Vec::new()),
            location,
            encoding: encoded.then(|| content_encoding(headers)).flatten(),
        }
    }
}

/// The `Content-Encoding` of a response (its codings joined by `, `), None when absent or
/// `identity`.
fn content_encoding(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let codings: Vec<&str> = headers
        .get_all(reqwest::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    (!codings.is_empty()).then(|| codings.join(", "))
}

/// What a call reads from a response header, by its name: one list for both HTTP paths
/// (the direct one keeps only these headers of a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderRead {
    /// Retry-After, or its `-ms` form.
    Wait,
    /// A rate-limit quota (`x-ratelimit-*`, `anthropic-ratelimit-*`).
    Quota,
    /// `Content-Encoding`: a compressed body is named as such, never taken as an output.
    Encoding,
    /// Nothing.
    Ignored,
}

impl HeaderRead {
    /// The use of header `name`, in any letter case.
    pub(super) fn of(name: &str) -> HeaderRead {
        let starts = |prefix: &str| {
            name.len() >= prefix.len()
                && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        if starts("retry-after") {
            HeaderRead::Wait
        } else if starts("x-ratelimit-") || starts("anthropic-ratelimit-") {
            HeaderRead::Quota
        } else if name.eq_ignore_ascii_case("content-encoding") {
            HeaderRead::Encoding
        } else {
            HeaderRead::Ignored
        }
    }
}

/// A body read chunk by chunk up to `--max-response-bytes`, a stream scanned as it arrives
/// (first token and chunk gaps timed from the call's start).
pub(super) struct BodyReader {
    bytes: Vec<u8>,
    scan: Option<sse::StreamScan>,
    max: u64,
    /// The body's announced length (within `max`): reserved when the body starts.
    declared: Option<usize>,
    /// `max` as a length: the buffer never grows past it.
    ceiling: usize,
    start: Instant,
}

impl BodyReader {
    /// A reader for a response of `status` to `target`; None when the body announced
    /// (`declared`) is over the limit, `ex.body` then says so.
    pub(super) fn new(
        target: &Target,
        ex: &mut Exchange,
        declared: Option<u64>,
        max: u64,
        start: Instant,
    ) -> Option<BodyReader> {
        if let Some(len) = declared
            && len > max
        {
            ex.body = Err(BodyFault::TooLarge {
                seen: len,
                declared: true,
            });
            return None;
        }
        let scan = (target.stream && ex.status == 200).then(|| match target.format {
            super::ApiFormat::Anthropic => sse::StreamScan::anthropic(),
            _ => sse::StreamScan::default(),
        });
        let len = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Some(BodyReader {
            bytes: Vec::new(),
            scan,
            max,
            declared: declared.map(len),
            ceiling: len(max),
            start,
        })
    }

    /// Takes in one chunk; false when it takes the body over the limit (`ex.body` says so and
    /// nothing more should be read).
    pub(super) fn push(&mut self, chunk: &[u8], ex: &mut Exchange) -> bool {
        let seen = (self.bytes.len() + chunk.len()) as u64;
        if seen > self.max {
            ex.body = Err(BodyFault::TooLarge {
                seen,
                declared: false,
            });
            return false;
        }
        let needed = self.bytes.len() + chunk.len();
        if needed > self.bytes.capacity() {
            let grown = match self.declared {
                // The announced length at once, when the body starts to arrive: growing to it
                // by doubling leaves the freed halves resident in the allocator a while, and
                // a 40 MB body then held 100 MB.
                Some(len) if self.bytes.is_empty() => needed.max(len),
                // Doubling, as `Vec` grows, but never past the limit (a body longer than it
                // announced grows exactly).
                _ => (self.bytes.capacity() * 2).clamp(needed, self.ceiling.max(needed)),
            };
            self.bytes.reserve_exact(grown - self.bytes.len());
        }
        self.bytes.extend_from_slice(chunk);
        if let Some(scan) = self.scan.as_mut() {
            let start = self.start;
            scan.feed(&self.bytes, || start.elapsed());
            ex.ttft = scan.first();
        }
        true
    }

    /// The body read to its end.
    pub(super) fn finish(self, ex: &mut Exchange) {
        ex.stream = self.scan.and_then(sse::StreamScan::finish);
        ex.body = Ok(self.bytes);
    }
}
