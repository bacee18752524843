//! The per-minute quotas behind `--rpm` and `--tpm`, and the headers real providers send.
//!
//! Two ways a quota refills, chosen by `--quota-window`:
//! - `bucket` (default): a token bucket holding up to `burst` tokens (default the per-minute
//!   limit) that starts full and refills continuously at `limit / 60` per second, as OpenAI
//!   and Anthropic describe theirs;
//! - `fixed`: a budget of `limit` per whole minute since the server started, reset at once
//!   at each minute's end, as many other providers do.
//!
//! A request takes `cost` tokens (1 for requests; its estimate for tokens) or is refused with
//! 429. A `std` mutex guards the numbers: it is held for a few arithmetic operations, never
//! across an await.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How a per-minute quota refills (`--quota-window`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum QuotaWindow {
    /// A token bucket refilled continuously (OpenAI, Anthropic).
    #[default]
    Bucket,
    /// A budget per whole minute, reset at the minute's end.
    Fixed,
}

impl std::fmt::Display for QuotaWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaWindow::Bucket => "bucket",
            QuotaWindow::Fixed => "fixed",
        })
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// The limiter's verdict for one request, with what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The configured limit (per minute).
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Time until the quota is full again (OpenAI's `x-ratelimit-reset-*`).
    pub reset: Duration,
    /// Whole seconds until the request's cost is available (at least 1); only meaningful
    /// when refused.
    pub retry_after_secs: u64,
    /// The same wait in whole milliseconds (at least 1), for `retry-after-ms`.
    pub retry_after_ms: u64,
}

/// What both quotas said about one request, for the headers of its response.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Quota {
    /// The requests-per-minute quota's verdict, when `--rpm` is set.
    pub requests: Option<Decision>,
    /// The tokens-per-minute quota's verdict, when `--tpm` is set.
    pub tokens: Option<Decision>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Start of the current minute (fixed windows only).
    window_start: Instant,
}

/// A per-minute quota of `limit` holding at most `burst` tokens (bucket) or `limit` per
/// minute (fixed window).
pub(crate) struct RateLimiter {
    limit: u32,
    capacity: f64,
    per_sec: f64,
    window: QuotaWindow,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    #[cfg(test)]
    pub(crate) fn new(limit: u32, burst: u32) -> Self {
        Self::with_window(limit, burst, QuotaWindow::Bucket, Instant::now())
    }

    /// A quota whose first window (and bucket refill) starts at `now`.
    pub(crate) fn with_window(limit: u32, burst: u32, window: QuotaWindow, now: Instant) -> Self {
        let limit = limit.max(1);
        let capacity = match window {
            QuotaWindow::Bucket => f64::from(burst.max(1)),
            QuotaWindow::Fixed => f64::from(limit),
        };
        Self {
            limit,
            capacity,
            per_sec: f64::from(limit) / 60.0,
            window,
            bucket: Mutex::new(Bucket {
                tokens: capacity,
                last: now,
                window_start: now,
            }),
        }
    }

    /// Takes one token if one is available at `now`.
    pub(crate) fn check(&self, now: Instant) -> Decision {
        self.take(now, 1)
    }

    /// Takes `cost` tokens if that many are available at `now`.
    pub(crate) fn take(&self, now: Instant, cost: u32) -> Decision {
        let cost = f64::from(cost);
        // A poisoned lock only means another request panicked mid-update; the numbers
        // are still usable, so carry on rather than failing every later request.
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.refill(&mut b, now);
        let allowed = b.tokens >= cost;
        if allowed {
            b.tokens -= cost;
        }
        let tokens = b.tokens;
        let window_end = b.window_start + MINUTE;
        drop(b);

        let (reset, wait_secs) = match self.window {
            QuotaWindow::Bucket => (
                Duration::from_secs_f64(((self.capacity - tokens) / self.per_sec).max(0.0)),
                (cost - tokens).max(0.0) / self.per_sec,
            ),
            QuotaWindow::Fixed => {
                let left = window_end.saturating_duration_since(now);
                let wait = if tokens >= cost {
                    0.0
                } else {
                    left.as_secs_f64()
                };
                (left, wait)
            }
        };
        Decision {
            allowed,
            limit: self.limit,
            remaining: tokens.floor().max(0.0) as u32,
            reset,
            retry_after_secs: wait_secs.ceil().max(1.0) as u64,
            retry_after_ms: (wait_secs * 1000.0).ceil().max(1.0) as u64,
        }
    }

    /// Gives back `cost` tokens taken by a request another quota then refused.
    pub(crate) fn refund(&self, cost: u32) {
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.tokens = (b.tokens + f64::from(cost)).min(self.capacity);
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        match self.window {
            QuotaWindow::Bucket => {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens = (b.tokens + elapsed * self.per_sec).min(self.capacity);
                b.last = now.max(b.last);
            }
            QuotaWindow::Fixed => {
                let since = now.saturating_duration_since(b.window_start);
                if since >= MINUTE {
                    let whole = since.as_secs() / 60;
                    b.window_start += MINUTE * whole as u32;
                    b.tokens = self.capacity;
                }
            }
        }
    }
}

/// A duration the way OpenAI's `x-ratelimit-reset-*` headers write it (Go's form):
/// `250ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{}ms", ms.max(1));
    }
    let secs = |ms: u128| {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        format!("{s}s")
    };
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    match (h, m) {
        (0, 0) => secs(rest),
        (0, m) => format!("{m}m{}", secs(rest)),
        (h, m) => format!("{h}h{m}m{}", secs(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_full_bucket_then_refuses() {
        let rl = RateLimiter::new(3, 3);
        let t0 = Instant::now();
        let d: Vec<_> = (0..4).map(|_| rl.check(t0)).collect();
        assert!(d[..3].iter().all(|d| d.allowed));
        assert_eq!(d[0].remaining, 2);
        assert_eq!(d[2].remaining, 0);
        assert!(!d[3].allowed);
        assert_eq!(d[3].limit, 3);
        // 3 rpm = one token per 20 s.
        assert_eq!(d[3].retry_after_secs, 20);
        assert_eq!(d[3].retry_after_ms, 20_000);
        assert_eq!(d[3].reset, Duration::from_secs(60));
    }

    #[test]
    fn refills_at_rpm_per_minute() {
        let rl = RateLimiter::new(60, 60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(rl.check(t0).allowed);
        }
        assert!(!rl.check(t0).allowed);
        let d = rl.check(t0 + Duration::from_millis(500));
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 1);
        // Half a token refilled: the other half comes in 500 ms.
        assert_eq!(d.retry_after_ms, 500);
        assert!(rl.check(t0 + Duration::from_millis(1001)).allowed);
        assert!(!rl.check(t0 + Duration::from_millis(1002)).allowed);
    }

    #[test]
    fn burst_caps_back_to_back_requests_but_not_the_rate() {
        let rl = RateLimiter::new(600, 2);
        let t0 = Instant::now();
        assert!(rl.check(t0).allowed);
        assert!(rl.check(t0).allowed);
        assert!(!rl.check(t0).allowed);
        // 600 rpm refills one token per 100 ms, and never more than the burst.
        assert!(rl.check(t0 + Duration::from_millis(101)).allowed);
        let later = t0 + Duration::from_secs(10);
        assert!(rl.check(later).allowed);
        assert!(rl.check(later).allowed);
        assert!(!rl.check(later).allowed);
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let rl = RateLimiter::new(6000, 6000);
        let t0 = Instant::now();
        for _ in 0..6000 {
            rl.check(t0);
        }
        assert_eq!(rl.check(t0).retry_after_secs, 1);
    }

    #[test]
    fn tokens_cost_their_estimate_and_refunds_return_them() {
        let rl = RateLimiter::new(1000, 1000);
        let t0 = Instant::now();
        let d = rl.take(t0, 600);
        assert!(d.allowed);
        assert_eq!(d.remaining, 400);
        let refused = rl.take(t0, 600);
        assert!(!refused.allowed);
        // 200 tokens short at 1000/min: 12 s.
        assert_eq!(refused.retry_after_ms, 12_000);
        rl.refund(600);
        assert_eq!(rl.take(t0, 0).remaining, 1000);
    }

    #[test]
    fn a_fixed_window_resets_all_at_once_at_the_minute() {
        let t0 = Instant::now();
        let rl = RateLimiter::with_window(2, 99, QuotaWindow::Fixed, t0);
        assert!(rl.check(t0).allowed);
        let d = rl.check(t0 + Duration::from_secs(10));
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset, Duration::from_secs(50), "time to the minute's end");
        // No refill inside the minute, however long: a bucket would have refilled.
        let d = rl.check(t0 + Duration::from_secs(59));
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 1000);
        let d = rl.check(t0 + Duration::from_secs(61));
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        assert_eq!(d.reset, Duration::from_secs(59));
    }

    #[test]
    fn reset_durations_are_written_like_openai() {
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::ZERO), "1ms");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(go_duration(Duration::from_millis(61_250)), "1m1.25s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
    }
}
