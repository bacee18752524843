//! Open loop: chains start on an arrival schedule ([`Schedule`]) whatever the server does,
//! and every chain is measured from its *intended* start, so a stall cannot hide
//! (coordinated omission). The closed-loop path in `run_batch` is untouched.
//!
//! Per chain, with `intended` its scheduled arrival, `start` when it was sent (after waiting
//! for a `--max-concurrency` slot) and `end` when its last call ended:
//! `latency = end − intended`, `service_latency = end − start`, `queue_wait = start −
//! intended`. A *late start* is an arrival the generator itself dispatched more than 1 ms
//! after its intended time (the generator could not keep up, k6's dropped iterations).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::arrivals::{Arrivals, Schedule};
use super::chain::panicked;
use super::{BatchResult, Observer, Runner, StopSignal, stopped};
use crate::chain::Row;
use crate::metrics::{LatencyRecorder, LatencySummary};

/// Generator lateness above which an arrival counts as a late start.
pub const LATE: Duration = Duration::from_millis(1);

/// Yields before falling back to the timer for an arrival's last millisecond.
const MAX_SPINS: u32 = 500;

/// One open-loop step: how many chains arrive, how, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoop {
    /// Offered chain arrivals per second.
    pub rate: f64,
    /// How arrivals are spaced.
    pub arrivals: Arrivals,
    /// Seed of the arrival process.
    pub seed: u64,
    /// Generate arrivals for this long; None: exactly `n` arrivals.
    pub duration: Option<Duration>,
    /// Arrivals when `duration` is None.
    pub n: usize,
    /// Chains in flight at most; later arrivals wait (and the wait is measured).
    pub max_concurrency: Option<usize>,
}

/// The open-loop figures of one rate step (report.json `runs[]`, `--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopStats {
    /// Configured chain arrivals per second.
    pub offered_rate: f64,
    /// Arrivals actually dispatched per second (the generator's accuracy).
    pub arrival_rate: f64,
    /// Chains completed successfully per second, from the step's start to the last end.
    pub achieved_rate: f64,
    /// Chains scheduled and started.
    pub arrivals: u64,
    /// Successful chains, intended start to end: what a user feels.
    pub latency: LatencySummary,
    /// Successful chains, actual send to end: what the server took.
    pub service_latency: LatencySummary,
    /// Every started chain, intended start to actual send.
    pub queue_wait: LatencySummary,
    /// Arrivals the generator dispatched more than 1 ms behind schedule.
    pub late_starts: u64,
}

impl OpenLoopStats {
    /// A one-line warning when the generator fell behind its own schedule, else None.
    pub fn generator_warning(&self) -> Option<String> {
        (self.late_starts > 0).then(|| {
            format!(
                "the load generator fell behind schedule for {} of {} arrivals (> 1 ms late, \
                 offered {:.1}/s, dispatched {:.1}/s); their latency includes that delay",
                self.late_starts, self.arrivals, self.offered_rate, self.arrival_rate
            )
        })
    }
}

/// What one started chain reports back to the generator.
pub struct Outcome {
    /// Whether the chain succeeded.
    pub ok: bool,
    /// When its last call ended.
    pub end: Instant,
}

#[derive(Default)]
struct Figures {
    latency: LatencyRecorder,
    service: LatencyRecorder,
    queue_wait: LatencyRecorder,
    ok: u64,
    finished: usize,
    last_end: Option<Instant>,
}

/// Runs the schedule of `plan`, calling `start(index)` for each arrival at its intended time
/// and awaiting the future once a concurrency slot is free. Generic over the chain so the
/// accounting is testable with tokio's paused clock.
pub async fn drive<F, Fut>(
    plan: &OpenLoop,
    stop: Option<StopSignal>,
    mut start: F,
) -> (BatchResult, OpenLoopStats)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let slots = plan
        .max_concurrency
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let figures = Arc::new(Mutex::new(Figures::default()));
    let lock = |f: &Mutex<Figures>| {
        // A poisoned lock only means a task panicked mid-update; the counts stay usable.
        let mut g = f.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *g)
    };
    let mut tasks = JoinSet::new();
    let (mut late, mut index, mut interrupted) = (0u64, 0usize, false);
    let mut last_dispatch = None;
    let t0 = Instant::now();
    let stop_fut = stopped(stop);
    tokio::pin!(stop_fut);
    for offset in Schedule::new(plan.arrivals, plan.rate, plan.seed) {
        let past_end = plan.duration.map_or(index >= plan.n, |d| offset >= d);
        if past_end {
            break;
        }
        let intended = t0 + offset;
        // tokio's timer rounds a deadline up to the next millisecond: wake a millisecond
        // early, then yield the last stretch, so an arrival is not late by the rounding.
        let wake = intended.checked_sub(LATE).unwrap_or(intended);
        tokio::select! {
            biased;
            () = &mut stop_fut => { interrupted = true; break; }
            () = tokio::time::sleep_until(wake) => {}
        }
        // Bounded: a paused clock (tests) never moves while we yield, so the tail falls back
        // to the timer.
        let mut spins = 0;
        while Instant::now() < intended {
            if spins == MAX_SPINS {
                tokio::time::sleep_until(intended).await;
                break;
            }
            spins += 1;
            tokio::task::yield_now().await;
        }
        let now = Instant::now();
        if now.saturating_duration_since(intended) > LATE {
            late += 1;
        }
        last_dispatch = Some(now);
        let chain = start(index);
        let (slots, figures) = (slots.clone(), Arc::clone(&figures));
        tasks.spawn(async move {
            let _permit = match slots {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let sent = Instant::now();
            let out = chain.await;
            let mut f = figures.lock().unwrap_or_else(|p| p.into_inner());
            f.queue_wait
                .record(sent.saturating_duration_since(intended));
            if out.ok {
                f.ok += 1;
                f.latency
                    .record(out.end.saturating_duration_since(intended));
                f.service.record(out.end.saturating_duration_since(sent));
            }
            f.finished += 1;
            f.last_end = Some(f.last_end.map_or(out.end, |e| e.max(out.end)));
        });
        while tasks.try_join_next().is_some() {}
        index += 1;
    }
    while tasks.join_next().await.is_some() {}
    let f = lock(&figures);
    let wall = f
        .last_end
        .map_or(Duration::ZERO, |e| e.saturating_duration_since(t0));
    let span = last_dispatch.map_or(Duration::ZERO, |d| d.saturating_duration_since(t0));
    let per_s = |count: f64, over: Duration| {
        if over.is_zero() {
            0.0
        } else {
            count / over.as_secs_f64()
        }
    };
    let stats = OpenLoopStats {
        offered_rate: plan.rate,
        // n arrivals span n − 1 gaps (constant: the first is at 0).
        arrival_rate: per_s(index.saturating_sub(1) as f64, span),
        achieved_rate: per_s(f.ok as f64, wall),
        arrivals: index as u64,
        latency: f.latency.summary(),
        service_latency: f.service.summary(),
        queue_wait: f.queue_wait.summary(),
        late_starts: late,
    };
    let batch = BatchResult {
        finished: f.finished,
        not_run: Vec::new(),
        interrupted,
        passes: 1,
        wall,
        retry_wall: Duration::ZERO,
        retried: 0,
        calls_saved: 0,
        stale_retries: 0,
    };
    (batch, stats)
}

impl Runner {
    /// One open-loop step of synthetic rows: chains start on `plan`'s schedule, each a
    /// single pass (backoff retries of a call still apply; failed rows are not re-run, as
    /// a re-run would add arrivals the schedule did not offer).
    pub async fn run_open(
        &self,
        plan: &OpenLoop,
        observer: Arc<dyn Observer>,
    ) -> (BatchResult, OpenLoopStats) {
        let this = Arc::new(self.clone());
        let stale_before = self.client.stale_retries();
        let t0 = Instant::now();
        let (mut batch, stats) = drive(plan, self.stop.clone(), move |idx| {
            let (runner, observer) = (Arc::clone(&this), Arc::clone(&observer));
            async move {
                let row = Row::synthetic_at(idx);
                let chain = runner.run_chain(&row, idx, 0, t0, None, observer.as_ref());
                let run = match AssertUnwindSafe(chain).catch_unwind().await {
                    Ok(run) => run,
                    Err(_) => panicked(idx, "chain task panicked".to_string()),
                };
                observer.chain_done(&row, &run.record, true);
                Outcome {
                    ok: run.record.ok(),
                    end: run.end,
                }
            }
        })
        .await;
        batch.stale_retries = self.client.stale_retries() - stale_before;
        (batch, stats)
    }
}

/// The highest offered rate that is sustained: achieved ≥ 95 % of offered and p99 from the
/// intended start ≤ 2 × the lowest rate's p99. `steps` are `(offered, achieved, p99_us)`;
/// None when no step qualifies.
pub fn max_sustainable_rate(steps: &[(f64, f64, u64)]) -> Option<f64> {
    let base = steps
        .iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|s| s.2)?;
    steps
        .iter()
        .filter(|(offered, achieved, p99)| {
            *achieved >= 0.95 * offered && *p99 as f64 <= 2.0 * base as f64
        })
        .map(|s| s.0)
        .max_by(f64::total_cmp)
}

#[cfg(test)]
#[path = "openloop_tests.rs"]
mod tests;
