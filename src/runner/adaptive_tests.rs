use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{AdaptiveLimit, Completion, Controller};

const MS: Duration = Duration::from_millis(1);

/// Feeds `limit` completions of `latency` each, back to back, from `*now`, as a saturated
/// closed loop would; returns the limit after them.
fn round(c: &mut Controller, now: &mut Duration, latency: Duration) -> usize {
    let n = c.limit();
    for _ in 0..n {
        c.observe(Completion {
            sent: *now,
            done: *now + latency,
            rate_limited: false,
            ok: true,
        });
    }
    *now += latency;
    c.limit()
}

fn refused(c: &mut Controller, sent: Duration, done: Duration) -> Option<usize> {
    c.observe(Completion {
        sent,
        done,
        rate_limited: true,
        ok: false,
    })
}

#[test]
fn the_limit_rises_by_one_per_window_while_no_call_is_refused() {
    let mut c = Controller::new(100);
    let mut now = Duration::ZERO;
    let mut seen = vec![c.limit()];
    for _ in 0..40 {
        seen.push(round(&mut c, &mut now, 100 * MS));
    }
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
        "{seen:?}"
    );
    // A window lasts at least 250 ms: a step every third 100 ms round, 13 steps in 4 s.
    assert_eq!(c.limit(), 14, "{seen:?}");
    let out = c.outcome();
    assert_eq!(
        out.recommended_limit,
        c.limit(),
        "no cut: the highest limit reached"
    );
    assert!(out.limit_trace.iter().skip(1).all(|p| p.throughput > 0.0));
    assert_eq!(out.limit_settled_ms, None);
}

#[test]
fn the_limit_never_passes_its_ceiling() {
    let mut c = Controller::new(3);
    let mut now = Duration::ZERO;
    for _ in 0..40 {
        round(&mut c, &mut now, 100 * MS);
    }
    assert_eq!(c.limit(), 3);
}

#[test]
fn a_429_cuts_the_limit_by_thirty_percent_and_late_429s_of_older_calls_are_ignored() {
    let mut c = Controller::new(100);
    let mut now = Duration::ZERO;
    while c.limit() < 10 {
        round(&mut c, &mut now, 100 * MS);
    }
    assert_eq!(refused(&mut c, now, now + MS), Some(7));
    // Sent before the cut: says nothing about limit 7.
    assert_eq!(refused(&mut c, now - 50 * MS, now + 2 * MS), None);
    assert_eq!(c.limit(), 7);
    assert_eq!(
        c.outcome().recommended_limit,
        9,
        "the last clean window before the cut"
    );
}

#[test]
fn latency_inflation_cuts_by_the_gradient() {
    let mut c = Controller::new(100);
    let mut now = Duration::ZERO;
    while c.limit() < 12 {
        round(&mut c, &mut now, 100 * MS);
    }
    // Latency triples: the gradient 1/3 is floored at 0.5.
    let mut before = c.limit();
    loop {
        let after = round(&mut c, &mut now, 300 * MS);
        if after < before {
            break;
        }
        before = after;
    }
    assert_eq!(c.limit(), before / 2);
    assert_eq!(c.outcome().limit_settled_ms, None);
}

#[test]
fn the_limit_settles_after_three_cuts_at_the_median_ceiling_and_only_steps_down() {
    let mut c = Controller::new(100);
    let mut now = Duration::ZERO;
    for _ in 0..3 {
        // Refused as soon as the limit passes 10.
        while c.limit() <= 10 {
            round(&mut c, &mut now, 100 * MS);
        }
        refused(&mut c, now, now + MS);
        now += MS;
    }
    assert_eq!(c.limit(), 10);
    let settled = c.outcome().limit_settled_ms.expect("settled");
    assert!(settled > 0.0);
    for _ in 0..20 {
        round(&mut c, &mut now, 100 * MS);
    }
    assert_eq!(c.limit(), 10, "settled: no more probing");
    refused(&mut c, now, now + MS);
    assert_eq!(c.limit(), 9);
    // Each 429 came the moment a window ended, so no window measured the ceiling: the
    // recommendation is the highest limit that ran clean, and says it is a lower bound.
    let out = c.outcome();
    assert_eq!(out.recommendation_basis, super::Basis::TooShort);
    assert_eq!(out.recommended_limit, 10);
}

/// A server that allows `per_s` calls a second (bucket of `burst`) and answers in `latency`;
/// 429s come back at once.
struct Quota {
    tokens: f64,
    at: Instant,
    per_s: f64,
    burst: f64,
}

impl Quota {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_s;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[tokio::test(start_paused = true)]
async fn against_a_100_per_second_quota_at_100_ms_it_settles_near_10_within_10_s() {
    let limit = Arc::new(AdaptiveLimit::new(500));
    let quota = Arc::new(Mutex::new(Quota {
        tokens: 10.0,
        at: Instant::now(),
        per_s: 100.0,
        burst: 10.0,
    }));
    let t0 = Instant::now();
    // (sent, refused) of every call.
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3000 {
        let permit = limit.semaphore().acquire_owned().await.unwrap();
        let (limit, quota, calls) = (limit.clone(), quota.clone(), calls.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let allowed = quota.lock().unwrap().take();
            tokio::time::sleep(if allowed { 100 * MS } else { MS }).await;
            limit.on_call(sent, Instant::now(), !allowed, allowed);
            calls
                .lock()
                .unwrap()
                .push((sent.duration_since(t0), !allowed));
            limit.release(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let out = limit.outcome();
    assert!((8..=12).contains(&out.recommended_limit), "{out:?}");
    let settled = out.limit_settled_ms.expect("settled");
    assert!(settled <= 10_000.0, "settled at {settled} ms");
    let calls = calls.lock().unwrap();
    let after: Vec<_> = calls
        .iter()
        .filter(|(sent, _)| sent.as_secs_f64() * 1000.0 > settled)
        .collect();
    let refused = after.iter().filter(|(_, r)| *r).count();
    assert!(after.len() > 500, "{} calls after settling", after.len());
    assert!(
        refused * 50 <= after.len(),
        "{refused} of {} refused after settling",
        after.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_below_the_permits_in_use_is_paid_back_as_permits_return() {
    let limit = AdaptiveLimit::new(100);
    limit.resize(1, 5);
    let held: Vec<_> = (0..5)
        .map(|_| limit.semaphore().try_acquire_owned().unwrap())
        .collect();
    limit.resize(5, 2);
    for p in held {
        limit.release(p);
    }
    assert_eq!(limit.semaphore().available_permits(), 2);
    limit.resize(2, 4);
    assert_eq!(limit.semaphore().available_permits(), 4);
}

/// A closed loop against a token bucket of `rate` per second holding `burst`, with a client
/// that waits for a token before each send (the pacer) and calls of `latency`: the controller
/// sees each call from its ask, so the wait counts. Runs `calls` calls; returns the outcome.
fn paced_bucket(rate: f64, burst: f64, latency: Duration, calls: usize) -> super::AdaptiveOutcome {
    let mut c = Controller::new(1000);
    let (mut tokens, mut t_tokens) = (burst, 0.0f64);
    // Each slot frees at its time; a freed slot asks at once.
    let mut slots: Vec<f64> = vec![0.0];
    for _ in 0..calls {
        let (i, &ask) = slots
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        tokens = (tokens + (ask.max(t_tokens) - t_tokens) * rate).min(burst);
        t_tokens = t_tokens.max(ask);
        let send = if tokens >= 1.0 {
            ask
        } else {
            t_tokens + (1.0 - tokens) / rate
        };
        tokens = (tokens + (send - t_tokens) * rate).min(burst) - 1.0;
        t_tokens = send;
        let done = send + latency.as_secs_f64();
        let before = c.limit();
        c.observe(Completion {
            sent: Duration::from_secs_f64(ask),
            done: Duration::from_secs_f64(done),
            rate_limited: false,
            ok: true,
        });
        slots[i] = done;
        let after = c.limit();
        if after > before {
            slots.extend(std::iter::repeat_n(done, after - before));
        } else {
            for _ in after..before {
                // A cut retires the slots that free first after this call.
                let (j, _) = slots
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap();
                slots.swap_remove(j);
            }
        }
    }
    c.outcome()
}

#[test]
fn the_recommendation_is_the_quota_times_the_latency_at_small_and_large_bursts() {
    // 200 calls/s × 50 ms = 10.
    for burst in [1.0, 20.0, 100.0] {
        let out = paced_bucket(200.0, burst, 50 * MS, 4000);
        assert_eq!(
            out.recommendation_basis,
            super::Basis::Measured,
            "burst {burst}"
        );
        assert!(
            (9..=11).contains(&out.recommended_limit),
            "burst {burst}: {} {:?}",
            out.recommended_limit,
            out.limit_trace
        );
    }
}

#[test]
fn a_burst_larger_than_the_run_never_binds_and_gives_a_lower_bound() {
    let out = paced_bucket(200.0, 100_000.0, 50 * MS, 1500);
    assert_eq!(out.recommendation_basis, super::Basis::LowerBound);
    assert!(out.recommended_limit > 11, "{}", out.recommended_limit);
}

#[test]
fn a_run_that_barely_reaches_the_quota_says_it_is_too_short_and_does_not_overshoot() {
    // The limit reaches 10 after ~9 windows; a few calls later the run ends.
    let out = paced_bucket(200.0, 1.0, 50 * MS, 420);
    assert_eq!(out.recommendation_basis, super::Basis::TooShort, "{out:?}");
    assert!(out.recommended_limit <= 11, "{}", out.recommended_limit);
}
