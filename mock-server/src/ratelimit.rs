//! The requests-per-minute token bucket behind `--rpm`, and the headers real providers send.
//!
//! The bucket holds up to `burst` tokens (default `rpm`), starts full and refills continuously at `rpm / 60`
//! tokens per second; each request takes one token or is refused with 429. A `std` mutex
//! guards the two numbers: it is held for a few arithmetic operations, never across an await.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The limiter's verdict for one request, with what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The configured limit (requests per minute).
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Time until the bucket is full again (OpenAI's `x-ratelimit-reset-requests`).
    pub reset: Duration,
    /// Whole seconds until one token is available (at least 1); only meaningful when refused.
    pub retry_after_secs: u64,
    /// The same wait in whole milliseconds (at least 1), for `retry-after-ms`.
    pub retry_after_ms: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket of `rpm` requests per minute holding at most `burst` tokens.
pub(crate) struct RateLimiter {
    rpm: u32,
    burst: u32,
    per_sec: f64,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(rpm: u32, burst: u32) -> Self {
        let rpm = rpm.max(1);
        let burst = burst.max(1);
        Self {
            rpm,
            burst,
            per_sec: f64::from(rpm) / 60.0,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Instant::now(),
            }),
        }
    }

    /// Takes a token if one is available at `now`.
    pub(crate) fn check(&self, now: Instant) -> Decision {
        let capacity = f64::from(self.burst);
        // A poisoned lock only means another request panicked mid-update; the two numbers
        // are still usable, so carry on rather than failing every later request.
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(capacity);
        b.last = now.max(b.last);
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        let tokens = b.tokens;
        drop(b);

        let reset = Duration::from_secs_f64(((capacity - tokens) / self.per_sec).max(0.0));
        let wait_secs = (1.0 - tokens).max(0.0) / self.per_sec;
        let retry_after_secs = wait_secs.ceil().max(1.0) as u64;
        let retry_after_ms = (wait_secs * 1000.0).ceil().max(1.0) as u64;
        Decision {
            allowed,
            limit: self.rpm,
            remaining: tokens.floor().max(0.0) as u32,
            reset,
            retry_after_secs,
            retry_after_ms,
        }
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
}
