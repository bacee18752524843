//! The open-loop driver under tokio's paused clock: schedules, coordinated-omission
//! accounting and knee detection, with fake chains in place of HTTP calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn plan(rate: f64, arrivals: Arrivals, n: usize, duration: Option<Duration>) -> OpenLoop {
    OpenLoop {
        rate,
        arrivals,
        seed: 11,
        duration,
        n,
        max_concurrency: None,
    }
}

/// A chain that takes `service` and always succeeds.
fn fixed(
    service: Duration,
) -> impl FnMut(usize) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>> {
    move |_| {
        Box::pin(async move {
            tokio::time::sleep(service).await;
            Outcome {
                ok: true,
                end: Instant::now(),
            }
        })
    }
}

fn near(value_us: u64, want: Duration, tol: Duration) -> bool {
    (value_us as i128 - want.as_micros() as i128).unsigned_abs() <= tol.as_micros()
}

#[tokio::test(start_paused = true)]
async fn constant_schedule_starts_every_chain_on_time() {
    let p = plan(100.0, Arrivals::Constant, 50, None);
    let (batch, s) = drive(&p, None, fixed(Duration::from_millis(10))).await;
    assert_eq!((s.arrivals, batch.finished, s.late_starts), (50, 50, 0));
    assert!((s.arrival_rate - 100.0).abs() < 0.5, "{}", s.arrival_rate);
    // 50 chains from 0 to 0.49 s, the last ending at 0.50 s.
    assert!((s.achieved_rate - 100.0).abs() < 1.0, "{}", s.achieved_rate);
    let ms = Duration::from_millis;
    assert!(near(s.latency.p99_us, ms(10), ms(1)), "{:?}", s.latency);
    assert!(near(s.service_latency.p50_us, ms(10), ms(1)));
    assert!(s.queue_wait.max_us <= 1, "{:?}", s.queue_wait);
}

#[tokio::test(start_paused = true)]
async fn poisson_and_gamma_steps_offer_the_rate_for_the_duration() {
    for (arrivals, tolerance) in [
        (Arrivals::Poisson, 150.0),
        (Arrivals::Gamma { cv: 2.0 }, 400.0),
    ] {
        let p = plan(200.0, arrivals, 0, Some(Duration::from_secs(10)));
        let (_, s) = drive(&p, None, fixed(Duration::from_millis(5))).await;
        assert!(
            (s.arrivals as f64 - 2000.0).abs() < tolerance,
            "{arrivals}: {} arrivals",
            s.arrivals
        );
        assert_eq!(s.late_starts, 0);
        assert!(
            (s.arrival_rate - 200.0).abs() < tolerance / 10.0,
            "{}",
            s.arrival_rate
        );
    }
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_makes_arrivals_wait_and_the_wait_is_measured() {
    let mut p = plan(100.0, Arrivals::Constant, 20, None);
    p.max_concurrency = Some(1);
    // 20 ms of service every 10 ms: the queue grows by one every 20 ms.
    let (_, s) = drive(&p, None, fixed(Duration::from_millis(20))).await;
    let ms = Duration::from_millis;
    assert!(near(s.service_latency.max_us, ms(20), ms(1)));
    // The last (intended 190 ms) starts at 380 ms: waited 190 ms, done 210 ms late.
    assert!(
        near(s.queue_wait.max_us, ms(190), ms(2)),
        "{:?}",
        s.queue_wait
    );
    assert!(near(s.latency.max_us, ms(210), ms(2)), "{:?}", s.latency);
    assert_eq!(
        s.late_starts, 0,
        "waiting for a slot is not the generator's lateness"
    );
}

/// A single-worker server that stalls from 1 s to 2 s, behind a client that keeps one
/// request in flight: the requests scheduled during the stall must show it (≈ 1 s for the
/// first), although each one's service time is 10 ms.
#[tokio::test(start_paused = true)]
async fn a_stalled_server_shows_in_latency_from_the_intended_start() {
    let mut p = plan(50.0, Arrivals::Constant, 150, None);
    p.max_concurrency = Some(1);
    let t0 = Instant::now();
    let ends = Arc::new(Mutex::new(vec![None; 150]));
    let ends_ = Arc::clone(&ends);
    let (_, s) = drive(&p, None, move |idx| {
        let ends = Arc::clone(&ends_);
        async move {
            let now = Instant::now();
            let (from, to) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(2));
            let begin = if now >= from && now < to { to } else { now };
            tokio::time::sleep_until(begin + Duration::from_millis(10)).await;
            let end = Instant::now();
            ends.lock().unwrap()[idx] = Some(end);
            Outcome { ok: true, end }
        }
    })
    .await;
    let ends = ends.lock().unwrap();
    let latency = |idx: usize| {
        let intended = t0 + Duration::from_millis(20 * idx as u64);
        ends[idx].unwrap().duration_since(intended)
    };
    // Intended at 1.00 s, sent at 1.00 s, answered at 2.01 s.
    assert!(
        (latency(50).as_millis() as i64 - 1010).abs() <= 2,
        "{:?}",
        latency(50)
    );
    // Every request scheduled during the stall felt at least half of it.
    for idx in 50..100 {
        assert!(
            latency(idx) >= Duration::from_millis(500),
            "{idx}: {:?}",
            latency(idx)
        );
    }
    let ms = Duration::from_millis;
    assert!(near(s.latency.max_us, ms(1010), ms(3)), "{:?}", s.latency);
    assert!(s.latency.p90_us > 400_000, "{:?}", s.latency);
    // The service times hide it: only the one request in the stall took long.
    assert!(
        near(s.service_latency.p90_us, ms(10), ms(1)),
        "{:?}",
        s.service_latency
    );
    assert!(s.queue_wait.max_us > 900_000, "{:?}", s.queue_wait);
}

#[test]
fn knee_is_the_highest_rate_kept_up_with_at_twice_the_base_p99() {
    // Capacity 100/s, 20 ms per request.
    let steps = [
        (25.0, 24.9, 21_000),
        (50.0, 49.8, 22_000),
        (75.0, 74.6, 30_000),
        (150.0, 100.0, 900_000),
        (300.0, 100.0, 3_000_000),
    ];
    assert_eq!(max_sustainable_rate(&steps), Some(75.0));
    // Kept up with but too slow: p99 over 2 × 21 ms.
    let slow = [(25.0, 25.0, 21_000), (50.0, 50.0, 43_000)];
    assert_eq!(max_sustainable_rate(&slow), Some(25.0));
    // Even the lowest rate fell short of 95 %.
    assert_eq!(max_sustainable_rate(&[(10.0, 9.0, 1_000)]), None);
    assert_eq!(max_sustainable_rate(&[]), None);
}
