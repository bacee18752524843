//! Client-side rate limits (`--rpm`, `--tpm`): a pacer that spaces sends evenly.
//!
//! A bursty token bucket would let a whole minute's budget out at once and then trip the
//! provider's own limiter; pacing at 60 s / rpm per request (and 60 s / tpm per token) keeps
//! every 60 s window at or under the limit. The schedule is a single "next free slot" behind
//! a mutex that is never held across an await.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces sends to a request rate and/or a token rate.
#[derive(Debug)]
pub struct RateLimiter {
    per_request: Option<Duration>,
    per_token: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// None when neither limit is set.
    pub fn new(rpm: Option<u32>, tpm: Option<u32>) -> Option<RateLimiter> {
        if rpm.is_none() && tpm.is_none() {
            return None;
        }
        let interval = |per_min: u32| Duration::from_secs(60).div_f64(f64::from(per_min.max(1)));
        Some(RateLimiter {
            per_request: rpm.map(interval),
            per_token: tpm.map(interval),
            next: Mutex::new(None),
        })
    }

    /// Waits for this request's slot. `tokens` is the request's estimated token cost.
    pub async fn acquire(&self, tokens: u32) {
        let cost = self.per_request.unwrap_or_default()
            + self.per_token.map_or(Duration::ZERO, |d| d * tokens);
        let slot = {
            let mut next = self
                .next
                .lock()
                .expect("rate limiter mutex is never poisoned");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + cost);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Tokens a request will use when the API does not say in advance: ~4 bytes of prompt per
/// token, plus the completion budget.
pub fn estimate_tokens(body_len: usize, max_tokens: Option<u32>) -> u32 {
    (body_len / 4) as u32 + max_tokens.unwrap_or(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rpm_spaces_requests_evenly() {
        let limiter = RateLimiter::new(Some(600), None).unwrap();
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire(0).await;
        }
        // 600/min = one per 100 ms; the first goes at once.
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_charges_by_tokens() {
        let limiter = RateLimiter::new(None, Some(6000)).unwrap();
        let start = Instant::now();
        limiter.acquire(100).await; // at once, books 1 s
        limiter.acquire(50).await; // waits for the first booking
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[test]
    fn no_limits_no_limiter() {
        assert!(RateLimiter::new(None, None).is_none());
        assert_eq!(estimate_tokens(400, Some(10)), 110);
    }
}
