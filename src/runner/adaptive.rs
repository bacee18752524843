//! `--limits auto` / `--limit auto`: a concurrency limit that finds itself.
//!
//! Why: a user cannot tell which limit their quota allows (chain time, calls per chain and
//! the provider's bucket all matter), and guessing costs 429s. The [`Controller`] starts at
//! one chain in flight and, window by window, raises the limit by one while calls succeed
//! (additive increase); on a 429 it cuts the limit by 30 % at once, and when the short-window
//! call latency inflates past 1.5 × the long-run minimum it cuts by the gradient
//! `min / short` (multiplicative decrease, as Netflix's concurrency-limits gradient
//! algorithm does). The last limit that held a whole window cleanly before each cut is a
//! "ceiling"; after three ceilings it settles at their median and only steps down from there
//! (by one per 429), so a long batch stops probing the quota once it has found it.
//!
//! The controller is pure (it is fed completions with their times and returns decisions);
//! [`AdaptiveLimit`] wires it to a tokio semaphore whose permits it adds or forgets, so the
//! runner's spawning loop is the same for a fixed and an adaptive limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Cut factor on a 429.
const BACKOFF: f64 = 0.7;
/// Short-window latency over the long-run minimum that counts as inflation.
const TOLERANCE: f64 = 1.5;
/// Cuts after which the limit settles.
const SETTLE_AFTER: usize = 3;
/// Shortest decision window; a window also lasts at least two minimum latencies.
const MIN_WINDOW: Duration = Duration::from_millis(250);

/// One point of the limit's history, as `limit_trace` in report.json holds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// Time since the run started, ms.
    pub t_ms: f64,
    /// The limit from this point on.
    pub limit: usize,
    /// Successful calls per second in the window that led to this decision.
    pub throughput: f64,
}

/// What the controller found: the limit to use and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveOutcome {
    /// The limit to use against this endpoint and quota.
    pub recommended_limit: usize,
    /// Every decision, in time order (the first point is the starting limit).
    pub limit_trace: Vec<TracePoint>,
    /// Time the limit settled, ms since the start (None: the run ended first).
    pub limit_settled_ms: Option<f64>,
}

/// One finished call, as the controller sees it. Times are offsets from the run's start.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    /// When the call was sent.
    pub sent: Duration,
    /// When it ended.
    pub done: Duration,
    /// The server answered 429.
    pub rate_limited: bool,
    /// The call succeeded.
    pub ok: bool,
}

/// The additive-increase / multiplicative-decrease state machine; pure, so tests feed it
/// synthetic completions.
#[derive(Debug, Clone)]
pub struct Controller {
    limit: usize,
    max: usize,
    window_start: Duration,
    last_cut: Duration,
    ok: u32,
    latency_sum: Duration,
    min_latency: Option<Duration>,
    /// The limit of the last clean window since the last cut (None: none yet).
    last_good: Option<usize>,
    ceilings: Vec<usize>,
    settled: Option<usize>,
    settled_at: Option<Duration>,
    trace: Vec<TracePoint>,
}

impl Controller {
    /// A controller starting at one chain in flight, never above `max`.
    pub fn new(max: usize) -> Controller {
        let max = max.max(1);
        Controller {
            limit: 1,
            max,
            window_start: Duration::ZERO,
            last_cut: Duration::ZERO,
            ok: 0,
            latency_sum: Duration::ZERO,
            min_latency: None,
            last_good: None,
            ceilings: Vec::new(),
            settled: None,
            settled_at: None,
            trace: vec![TracePoint {
                t_ms: 0.0,
                limit: 1,
                throughput: 0.0,
            }],
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes in one completion; returns the new limit when it changed.
    pub fn observe(&mut self, c: Completion) -> Option<usize> {
        if c.rate_limited {
            // A 429 of a call sent before the last cut says nothing about the new limit.
            return (c.sent >= self.last_cut).then(|| self.cut(c.done, None));
        }
        if c.ok {
            self.ok += 1;
            self.latency_sum += c.done.saturating_sub(c.sent);
        }
        let window = self
            .min_latency
            .map_or(MIN_WINDOW, |m| (m * 2).max(MIN_WINDOW));
        let elapsed = c.done.saturating_sub(self.window_start);
        if elapsed < window || self.ok == 0 {
            return None;
        }
        let short = self.latency_sum / self.ok;
        let min = *self.min_latency.get_or_insert(short);
        self.min_latency = Some(min.min(short));
        let gradient = min.as_secs_f64() / short.as_secs_f64().max(1e-9);
        if gradient * TOLERANCE < 1.0 {
            return Some(self.cut(c.done, Some(gradient)));
        }
        self.last_good = Some(self.limit);
        let next = match self.settled {
            Some(s) => s,
            None => (self.limit + 1).min(self.max),
        };
        let old = self.limit;
        self.decide(c.done, next);
        (next != old).then_some(next)
    }

    /// Multiplicative decrease: 30 % on a 429, the latency gradient on inflation; once
    /// settled, one step down. Returns the new limit.
    fn cut(&mut self, now: Duration, gradient: Option<f64>) -> usize {
        // A cut with no clean window since the last one adds no ceiling: it only cuts deeper.
        let new_ceiling = self.last_good.take().map(|g| self.ceilings.push(g));
        let next = match self.settled {
            Some(s) => s.saturating_sub(1).max(1),
            None if new_ceiling.is_some() && self.ceilings.len() >= SETTLE_AFTER => {
                let mut last: Vec<usize> =
                    self.ceilings[self.ceilings.len() - SETTLE_AFTER..].to_vec();
                last.sort_unstable();
                self.settled_at = Some(now);
                last[SETTLE_AFTER / 2]
            }
            None => {
                let factor = gradient.map_or(BACKOFF, |g| g.max(0.5));
                ((self.limit as f64 * factor).floor() as usize).max(1)
            }
        };
        if self.settled_at.is_some() {
            self.settled = Some(next);
        }
        self.last_cut = now;
        self.decide(now, next);
        next
    }

    /// Sets the limit, records the trace point, opens a new window.
    fn decide(&mut self, now: Duration, next: usize) {
        let secs = now.saturating_sub(self.window_start).as_secs_f64();
        // A cut can end a window after a few ms: its rate would be noise, so the point keeps
        // the last full window's.
        let throughput = if secs >= MIN_WINDOW.as_secs_f64() {
            f64::from(self.ok) / secs
        } else {
            self.trace.last().map_or(0.0, |p| p.throughput)
        };
        self.limit = next;
        self.trace.push(TracePoint {
            t_ms: crate::record::ms(now),
            limit: next,
            throughput,
        });
        self.window_start = now;
        self.ok = 0;
        self.latency_sum = Duration::ZERO;
    }

    /// The recommendation so far: the settled limit; before settling, the median ceiling;
    /// with no cut at all, the highest limit reached (a lower bound: nothing pushed back).
    pub fn outcome(&self) -> AdaptiveOutcome {
        let recommended = self.settled.unwrap_or_else(|| {
            let mut c = self.ceilings.clone();
            c.sort_unstable();
            c.get(c.len() / 2).copied().unwrap_or(self.limit)
        });
        AdaptiveOutcome {
            recommended_limit: recommended.max(1),
            limit_trace: self.trace.clone(),
            limit_settled_ms: self.settled_at.map(crate::record::ms),
        }
    }
}

/// A [`Controller`] driving a semaphore: the runner's spawning loop takes permits from it as
/// from a fixed one, and hands each permit back through [`AdaptiveLimit::release`].
#[derive(Debug)]
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    /// Permits still to forget as they come back (a cut below the permits in use).
    debt: AtomicUsize,
    t0: Instant,
    controller: Mutex<Controller>,
}

impl AdaptiveLimit {
    /// Starts at limit 1, never above `max`; its clock starts now.
    pub fn new(max: usize) -> AdaptiveLimit {
        AdaptiveLimit {
            semaphore: Arc::new(Semaphore::new(1)),
            debt: AtomicUsize::new(0),
            t0: Instant::now(),
            controller: Mutex::new(Controller::new(max)),
        }
    }

    /// The semaphore whose permit count is the current limit.
    pub fn semaphore(&self) -> Arc<Semaphore> {
        Arc::clone(&self.semaphore)
    }

    /// Gives a chain's permit back, or forgets it while a cut is still being paid off.
    pub fn release(&self, permit: OwnedSemaphorePermit) {
        let paid = self
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
        if paid.is_ok() {
            permit.forget();
        }
    }

    /// Feeds one finished call to the controller and resizes the semaphore if it decides.
    pub fn on_call(&self, sent: Instant, done: Instant, rate_limited: bool, ok: bool) {
        let completion = Completion {
            sent: sent.saturating_duration_since(self.t0),
            done: done.saturating_duration_since(self.t0),
            rate_limited,
            ok,
        };
        let mut ctl = self
            .controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = ctl.limit();
        if let Some(new) = ctl.observe(completion) {
            self.resize(old, new);
        }
    }

    /// Adds permits (paying off debt first) or forgets them (owing what is in use).
    fn resize(&self, old: usize, new: usize) {
        if new > old {
            let mut up = new - old;
            let paid = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| Some(d - d.min(up)))
                .unwrap_or(0);
            up -= paid.min(up);
            self.semaphore.add_permits(up);
        } else {
            let down = old - new;
            let forgotten = self.semaphore.forget_permits(down);
            self.debt.fetch_add(down - forgotten, Ordering::AcqRel);
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit()
    }

    /// What the controller found so far.
    pub fn outcome(&self) -> AdaptiveOutcome {
        self.lock().outcome()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Controller> {
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[path = "adaptive_tests.rs"]
mod tests;
