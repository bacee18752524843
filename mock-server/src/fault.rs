//! Transport faults a client must survive: a TCP reset mid-response (`reset_rate`), a
//! connection closed mid-body (`truncate_rate`) and a body trickled at a set rate
//! (`slow_body`, a [`ByteRate`]).
//!
//! All three wrap a response body in [`Shaped`], which passes the inner body's bytes on at
//! most at the given rate and, for a cut, stops after a number of inner frames and returns an
//! error. hyper answers a body error by abandoning the response: on HTTP/1.1 it closes the
//! connection without finishing the body (the peer sees fewer bytes than `Content-Length`
//! promised, or a chunked body without its last chunk), on HTTP/2 it resets the stream.
//! For a reset on HTTP/1.1 the body first sets the connection's reset flag, which makes the
//! connection's socket close with `SO_LINGER` 0 (see `server::ConnIo`), so the kernel sends
//! RST instead of FIN.
//!
//! This module does not decide which responses are cut: `handler` draws that from the seed.

use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::Version;
use hyper::body::{Body, Frame, SizeHint};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::time::{Instant, Sleep};

use crate::body::MockBody;
use crate::handler::{ConnState, Shared};

/// A transfer rate in bytes per second for `slow_body`, always above 0.
///
/// Text form: a number, a unit and `/s`: `512B/s`, `1kB/s` (1,000 bytes), `1.5KiB/s`
/// (1,536 bytes), `2MB/s`, `1MiB/s`; `k`/`K` and `kB`/`KB` are the same decimal kilo. A bare
/// number is bytes per second. Decimal and binary units are both accepted because both are
/// common and a misread factor of 1.024 is harmless for a trickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRate(u64);

/// Why a `--slow-body` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ByteRateParseError(String);

impl ByteRate {
    /// A rate of `bytes_per_sec`; `None` for 0, which would never finish a body.
    pub fn new(bytes_per_sec: u64) -> Option<Self> {
        (bytes_per_sec > 0).then_some(Self(bytes_per_sec))
    }

    /// Bytes per second.
    pub fn bytes_per_sec(self) -> u64 {
        self.0
    }

    /// How long `bytes` take at this rate.
    fn time_for(self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.0 as f64)
    }

    /// Bytes handed to hyper at once: about 20 writes a second, so a trickle looks smooth
    /// without one write per byte, and never more than 16 KiB.
    fn chunk(self) -> usize {
        usize::try_from(self.0 / 20)
            .unwrap_or(usize::MAX)
            .clamp(1, 16 * 1024)
    }
}

impl FromStr for ByteRate {
    type Err = ByteRateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ByteRateParseError(format!(
                "{s:?} is not a byte rate (expected e.g. 512B/s, 1kB/s, 1.5KiB/s, 2MB/s, or bytes per second)"
            ))
        };
        let t = s.trim();
        let t = t.strip_suffix("/s").unwrap_or(t);
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let number: f64 = number.parse().map_err(|_| bad())?;
        let factor: f64 = match unit.trim() {
            "" | "B" | "b" => 1.0,
            "k" | "K" | "kB" | "KB" => 1e3,
            "KiB" | "kiB" => 1024.0,
            "M" | "MB" => 1e6,
            "MiB" => 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = (number * factor).round();
        if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
            return Err(ByteRateParseError(format!(
                "{s:?} is below 1 byte per second (use a positive rate)"
            )));
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (size, unit) in [
            (1 << 20, "MiB"),
            (1_000_000, "MB"),
            (1024, "KiB"),
            (1000, "kB"),
        ] {
            if n.is_multiple_of(size) {
                return write!(f, "{}{unit}/s", n / size);
            }
        }
        write!(f, "{n}B/s")
    }
}

impl Serialize for ByteRate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Pause between the last bytes before a cut and the cut. hyper buffers what a body yields
/// until the body is pending, and drops that buffer when the body fails; and `SO_LINGER` 0
/// discards whatever the kernel has not sent yet. The pause lets hyper flush and the bytes
/// leave, so the peer really sees the head and part of the body first.
const CUT_DELAY: Duration = Duration::from_millis(20);

/// The error a cut body returns; hyper then abandons the response.
#[derive(Debug, thiserror::Error)]
#[error("response cut on purpose (reset_rate / truncate_rate)")]
pub(crate) struct InjectedCut;

/// Where and how a response is cut.
struct Cut {
    /// Inner frames passed on before the cut.
    after_frames: usize,
    /// For a reset on HTTP/1.1: the connection's flag that makes its socket close with RST.
    /// `None` for a truncation (plain close) and on HTTP/2 (the stream is reset instead).
    reset: Option<Arc<AtomicBool>>,
}

/// A body passed through at most at `rate`, and cut after some frames if `cut` is set.
pub(crate) struct Shaped {
    inner: MockBody,
    /// What `size_hint` reports: the whole body's length for a truncated non-streamed body,
    /// so `Content-Length` promises more than is sent.
    declared: SizeHint,
    rate: Option<ByteRate>,
    cut: Option<Cut>,
    /// Bytes of the current inner frame not yet passed on.
    pending: Bytes,
    sent: u64,
    frames: usize,
    start: Instant,
    sleep: Pin<Box<Sleep>>,
    sleeping: bool,
    /// The cut is due: `sleep` now waits out [`CUT_DELAY`].
    cut_armed: bool,
    done: bool,
}

impl Shaped {
    fn new(inner: MockBody, declared: SizeHint, rate: Option<ByteRate>, cut: Option<Cut>) -> Self {
        let start = Instant::now();
        Self {
            inner,
            declared,
            rate,
            cut,
            pending: Bytes::new(),
            sent: 0,
            frames: 0,
            start,
            sleep: Box::pin(tokio::time::sleep_until(start)),
            sleeping: false,
            cut_armed: false,
            done: false,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, InjectedCut>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if !self.pending.is_empty() {
                let Some(rate) = self.rate else {
                    self.sent += self.pending.len() as u64;
                    return Poll::Ready(Some(Ok(std::mem::take(&mut self.pending))));
                };
                let n = rate.chunk().min(self.pending.len());
                if !self.sleeping {
                    // Byte k leaves no earlier than start + k / rate: deadlines from the
                    // start, so late wake-ups do not add up.
                    let deadline = self.start + rate.time_for(self.sent + n as u64);
                    self.sleep.as_mut().reset(deadline);
                    self.sleeping = true;
                }
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleeping = false;
                self.sent += n as u64;
                return Poll::Ready(Some(Ok(self.pending.split_to(n))));
            }
            if let Some(cut) = &self.cut
                && self.frames >= cut.after_frames
            {
                if !self.cut_armed {
                    self.sleep.as_mut().reset(Instant::now() + CUT_DELAY);
                    self.cut_armed = true;
                }
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if let Some(flag) = &cut.reset {
                    flag.store(true, Ordering::Relaxed);
                }
                self.done = true;
                return Poll::Ready(Some(Err(InjectedCut)));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.done = true,
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    self.frames += 1;
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
    }
}

impl Body for Shaped {
    type Data = Bytes;
    type Error = InjectedCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, InjectedCut>>> {
        self.get_mut()
            .poll_next(cx)
            .map(|next| next.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.declared
    }
}

/// The transport faults drawn for one successful response (see `fault`).
pub(crate) struct Faults<'a> {
    shared: &'a Shared,
    /// The connection's reset flag when the response is reset over HTTP/1.1; on HTTP/2
    /// a reset ends only the stream (RST_STREAM), never the shared connection.
    reset_flag: Option<Arc<AtomicBool>>,
    reset: bool,
    /// Whether the response is cut at all (reset or truncated).
    pub(crate) cut: bool,
}

impl<'a> Faults<'a> {
    pub(crate) fn new(
        shared: &'a Shared,
        conn: &ConnState,
        version: Version,
        reset: bool,
        truncate: bool,
    ) -> Self {
        let reset_flag = (reset && version != Version::HTTP_2).then(|| Arc::clone(&conn.reset));
        Self {
            shared,
            reset_flag,
            reset,
            cut: reset || truncate,
        }
    }

    /// Wraps `body` for `slow_body` and the cut (after `cut_after` frames), counting the
    /// cut in the stats; returns `body` itself when there is nothing to do.
    pub(crate) fn shape(self, body: MockBody, declared: SizeHint, cut_after: usize) -> MockBody {
        let rate = self.shared.config.slow_body;
        if !self.cut && rate.is_none() {
            return body;
        }
        let cut = self.cut.then(|| {
            if self.reset {
                self.shared.stats.record_reset();
            } else {
                self.shared.stats.record_truncated();
            }
            Cut {
                after_frames: cut_after,
                reset: self.reset_flag,
            }
        });
        MockBody::Shaped(Box::new(Shaped::new(body, declared, rate, cut)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates_parse_in_every_unit() {
        let cases = [
            ("512", 512),
            ("512B/s", 512),
            ("1kB/s", 1000),
            ("1KB/s", 1000),
            ("2k/s", 2000),
            ("1.5KiB/s", 1536),
            ("2MB/s", 2_000_000),
            ("1MiB/s", 1 << 20),
            (" 300 B/s ", 300),
        ];
        for (text, bytes) in cases {
            let rate: ByteRate = text.parse().unwrap();
            assert_eq!(rate.bytes_per_sec(), bytes, "{text}");
        }
        for bad in ["", "fast", "1kb/m", "0", "0.1B/s", "-5", "1GB/s"] {
            assert!(bad.parse::<ByteRate>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn byte_rates_print_in_a_form_that_parses_back() {
        for bytes in [1, 999, 1000, 1024, 1536, 3000, 1 << 20, 5_000_000] {
            let rate = ByteRate::new(bytes).unwrap();
            let text = rate.to_string();
            assert_eq!(text.parse::<ByteRate>().unwrap(), rate, "{text}");
        }
        assert_eq!(ByteRate::new(1000).unwrap().to_string(), "1kB/s");
        assert_eq!(ByteRate::new(0), None);
    }
}
