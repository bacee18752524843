use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn quota(limit: u64, remaining: u64, reset: Duration) -> QuotaHeaders {
    QuotaHeaders {
        requests: Some(QuotaState {
            limit: Some(limit),
            remaining,
            reset: Some(reset),
        }),
        tokens: None,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn without_an_announced_quota_sends_go_at_once() {
    let pacer = Pacer::default();
    let t0 = Instant::now();
    for _ in 0..100 {
        let ticket = pacer.wait(500).await;
        pacer.observe(&ticket, None, None);
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(pacer.announced(), Announced::default());
}

#[tokio::test(start_paused = true)]
async fn an_empty_bucket_lets_sends_out_at_its_refill_rate() {
    let pacer = Pacer::default();
    let first = pacer.wait(1).await;
    // 60 a minute, none left, whole again in 60 s: one a second refills.
    pacer.observe(&first, Some(&quota(60, 0, secs(60.0))), None);
    let t0 = Instant::now();
    for _ in 0..3 {
        pacer.wait(1).await;
    }
    let waited = t0.elapsed();
    assert!(waited >= secs(3.0) && waited <= secs(3.3), "{waited:?}");
    assert_eq!(pacer.announced().requests, Some(60));
}

#[tokio::test(start_paused = true)]
async fn plenty_left_means_no_wait_and_own_sends_are_counted() {
    let pacer = Pacer::default();
    let first = pacer.wait(1).await;
    // 100 left of 1000 in a bucket: 100 more go at once, the next ones wait for refill
    // (the 100 sent after the observed call were not in its count).
    pacer.observe(&first, Some(&quota(1000, 100, secs(54.0))), None);
    let t0 = Instant::now();
    for _ in 0..40 {
        pacer.wait(1).await;
    }
    assert_eq!(
        t0.elapsed(),
        Duration::ZERO,
        "well above the low-water mark"
    );
    for _ in 0..60 {
        pacer.wait(1).await;
    }
    assert_eq!(t0.elapsed(), Duration::ZERO, "the 100 left cover them");
    // Then one refill apart: 1000 a minute = 60 ms; 10 more take 0.6 s.
    for _ in 0..10 {
        pacer.wait(1).await;
    }
    let spread = t0.elapsed();
    assert!(spread >= secs(0.55) && spread <= secs(0.65), "{spread:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_window_is_recognised_and_waited_out() {
    let pacer = Pacer::default();
    let a = pacer.wait(1).await;
    let b = pacer.wait(1).await;
    let c = pacer.wait(1).await;
    pacer.observe(&a, Some(&quota(600, 50, secs(10.0))), None);
    tokio::time::advance(secs(1.0)).await;
    // The same window end (10 s from the first answer) with 15 fewer left: a bucket's reset
    // would have moved 1.4 s or more (one refill of 100 ms per request consumed).
    pacer.observe(&c, Some(&quota(600, 35, secs(9.0))), None);
    let _ = b;
    let t0 = Instant::now();
    // 35 left: the first 5 go at once (30 left is the 5 % low-water mark) ...
    for _ in 0..5 {
        pacer.wait(1).await;
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    // ... the other 30 are spread over the 9 s to the window's end, and the next one waits
    // for the new window.
    for _ in 0..31 {
        pacer.wait(1).await;
    }
    let waited = t0.elapsed();
    assert!(waited >= secs(8.5) && waited <= secs(9.3), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_every_send_for_at_most_a_second() {
    let pacer = Pacer::default();
    let t = pacer.wait(1).await;
    pacer.observe(&t, None, Some(Duration::from_millis(700)));
    let t0 = Instant::now();
    let t = pacer.wait(1).await;
    assert_eq!(t0.elapsed(), Duration::from_millis(700));
    // A server asking for hours: the runner fails that call; the others wait 1 s only.
    pacer.observe(&t, None, Some(Duration::from_secs(999_999)));
    let t1 = Instant::now();
    pacer.wait(1).await;
    assert_eq!(t1.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn an_older_answer_does_not_overwrite_a_fresher_one() {
    let pacer = Pacer::default();
    let old = pacer.wait(1).await;
    let new = pacer.wait(1).await;
    pacer.observe(&new, Some(&quota(100, 90, secs(6.0))), None);
    // The older call's answer arrives late claiming the quota is spent: ignored.
    pacer.observe(&old, Some(&quota(100, 0, secs(60.0))), None);
    let t0 = Instant::now();
    pacer.wait(1).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_token_quota_charges_each_send_its_estimate() {
    let pacer = Pacer::default();
    let first = pacer.wait(100).await;
    let tokens = QuotaHeaders {
        requests: None,
        tokens: Some(QuotaState {
            limit: Some(6000),
            remaining: 250,
            reset: Some(secs(57.5)),
        }),
    };
    pacer.observe(&first, Some(&tokens), None);
    let t0 = Instant::now();
    pacer.wait(100).await;
    pacer.wait(100).await;
    assert!(
        t0.elapsed() < secs(2.0),
        "200 of 250 left: {:?}",
        t0.elapsed()
    );
    // 50 left: the next 100 need 50 more at 100 tokens a second.
    let t1 = Instant::now();
    pacer.wait(100).await;
    assert!(t1.elapsed() >= secs(0.4), "{:?}", t1.elapsed());
    assert_eq!(pacer.announced().tokens, Some(6000));
}

#[tokio::test(start_paused = true)]
async fn a_draining_bucket_is_not_taken_for_a_window() {
    let pacer = Pacer::default();
    // 600 a minute, a bucket: each request consumed moves the reset 100 ms later.
    let mut tickets = Vec::new();
    for _ in 0..200 {
        tickets.push(pacer.wait(1).await);
    }
    for (i, t) in tickets.iter().enumerate().step_by(20) {
        let remaining = 600 - i as u64 - 1;
        let reset = Duration::from_millis(100 * (600 - remaining));
        pacer.observe(t, Some(&quota(600, remaining, reset)), None);
    }
    // 419 left by the last answer, minus the 19 sent after it: 400 go at once (a window
    // would be spread) and, once spent, one refill (100 ms) apart, not at the window's end.
    let t0 = Instant::now();
    for _ in 0..400 {
        pacer.wait(1).await;
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    pacer.wait(1).await;
    pacer.wait(1).await;
    assert!(t0.elapsed() <= secs(0.25), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_bucket_without_burst_stays_one_refill_apart_past_its_reset() {
    let pacer = Pacer::default();
    let first = pacer.wait(1).await;
    // 12,000 a minute with none left and whole again in 5 ms: a bucket of one, not of
    // 12,000. Past the reset it must not let every waiting send out at once.
    pacer.observe(&first, Some(&quota(12_000, 0, secs(0.005))), None);
    tokio::time::advance(secs(0.010)).await;
    let t0 = Instant::now();
    for _ in 0..21 {
        pacer.wait(1).await;
    }
    // One goes at once (the bucket is full), then 20 refills of 5 ms at 95 % pace, each
    // rounded up to tokio's 1 ms timer tick (before: all 21 at once).
    let spread = t0.elapsed();
    assert!(spread >= secs(0.100) && spread <= secs(0.13), "{spread:?}");
}

#[tokio::test(start_paused = true)]
async fn sends_the_server_has_not_counted_yet_are_charged_against_a_bucket() {
    let pacer = Pacer::default();
    let first = pacer.wait(1).await;
    // Nine more go before the first call's answer arrives, 50 ms later, with 10 left of a
    // bucket of 10 (rate 10/s): its 10 did not count them.
    for _ in 0..9 {
        pacer.wait(1).await;
    }
    tokio::time::advance(secs(0.050)).await;
    pacer.observe(&first, Some(&quota(600, 9, secs(0.1))), None);
    // 9 left less the 9 uncounted, refilled for 50 ms: half a unit, so 50 ms to the next.
    let t0 = Instant::now();
    pacer.wait(1).await;
    let first_wait = t0.elapsed();
    assert!(
        first_wait >= secs(0.045) && first_wait <= secs(0.06),
        "{first_wait:?}"
    );
    pacer.wait(1).await;
    let second = t0.elapsed();
    assert!(second >= secs(0.14) && second <= secs(0.17), "{second:?}");
}
