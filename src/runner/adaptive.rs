//! `--limits auto` / `--limit auto`: a concurrency limit that finds itself.
//!
//! Why: a user cannot tell which limit their quota allows (chain time, calls per chain and
//! the provider's bucket all matter), and guessing costs 429s. The [`Controller`] starts at
//! one chain in flight and, window by window, raises the limit by one while calls succeed
//! (additive increase); on a 429 it cuts the limit by 30 % at once, and when the short-window
//! call latency inflates past 1.5 × the long-run minimum it cuts by the gradient
//! `min / short` (multiplicative decrease, as Netflix's concurrency-limits gradient
//! algorithm does). The last limit that held a whole window cleanly before each cut is a
//! "ceiling"; after three ceilings it settles and only steps down from there (by one per
//! 429), so a long batch stops probing the quota once it has found it.
//!
//! Where it settles, and what it recommends, comes from goodput rather than from the
//! ceilings: a window whose latency is 20 % over the minimum, or that met a 429, is
//! *saturated*: the quota (or the server) was what held it back, so its goodput measures the
//! ceiling R. The ceilings alone overshoot: latency has to inflate by 1.5× before a cut, and
//! a bucket's burst lets windows run above R until it is spent. Saturated windows see
//! neither: a burst is spent before sends queue. The recommendation is the smallest limit
//! that carries 95 % of R at the uncongested latency ℓ (Little's law, one call in flight a
//! chain): ⌈0.95 · R · ℓ⌉, R the median goodput of the saturated windows. With no saturated
//! window the quota never bound: the highest limit reached is a lower bound. With fewer than
//! [`MIN_SATURATED`] the run was too short to tell: the lower of the highest unsaturated
//! limit and the few windows' estimate is given, and said to be a lower bound.
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
/// Window latency over the minimum from which sends were queuing: the window is saturated
/// (well above the jitter of an unloaded server, well below the 1.5× that cuts).
const SATURATED: f64 = 1.2;
/// Saturated windows needed to call the ceiling measured.
pub const MIN_SATURATED: usize = 3;
/// Share of the ceiling the recommended limit carries.
const CARRY: f64 = 0.95;
/// Saturated windows' goodputs kept (the latest): a long run's memory stays bounded.
const KEEP_SATURATED: usize = 64;

/// What a recommendation rests on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Saturated windows measured the ceiling: the smallest limit that carries 95 % of it.
    #[default]
    Measured,
    /// Nothing held the run back (no 429, no queuing): a lower bound.
    LowerBound,
    /// Too few saturated windows to measure the ceiling: the highest limit that ran
    /// unsaturated, a lower bound.
    TooShort,
}

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
    /// What the recommendation rests on.
    #[serde(default)]
    pub recommendation_basis: Basis,
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
    /// A 429 arrived in the current window.
    refused: bool,
    /// Goodput of the latest saturated windows, calls/s.
    saturated: std::collections::VecDeque<f64>,
    /// The highest limit of a clean, unsaturated window.
    unsaturated_max: usize,
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
            refused: false,
            saturated: std::collections::VecDeque::new(),
            unsaturated_max: 0,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes in one completion; returns the new limit when it changed.
    pub fn observe(&mut self, c: Completion) -> Option<usize> {
        if c.rate_limited {
            self.refused = true;
            // A 429 of a call sent before the last cut says nothing about the new limit.
            if c.sent < self.last_cut {
                return None;
            }
            self.classify(c.done, 1.0);
            return Some(self.cut(c.done, None));
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
        self.classify(c.done, gradient);
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

    /// Files the ending window's goodput as saturated (queued sends or a 429), or its limit as
    /// one that ran unsaturated.
    fn classify(&mut self, now: Duration, gradient: f64) {
        let secs = now.saturating_sub(self.window_start).as_secs_f64();
        if gradient * SATURATED < 1.0 || self.refused {
            if secs >= MIN_WINDOW.as_secs_f64() {
                if self.saturated.len() == KEEP_SATURATED {
                    self.saturated.pop_front();
                }
                self.saturated.push_back(f64::from(self.ok) / secs);
            }
        } else {
            self.unsaturated_max = self.unsaturated_max.max(self.limit);
        }
    }

    /// ⌈0.95 · R · ℓ⌉ from the saturated windows, once there are [`MIN_SATURATED`].
    fn measured(&self) -> Option<usize> {
        (self.saturated.len() >= MIN_SATURATED)
            .then(|| self.estimate())
            .flatten()
    }

    /// ⌈0.95 · R · ℓ⌉ from however many saturated windows there are (None: none).
    fn estimate(&self) -> Option<usize> {
        if self.saturated.is_empty() {
            return None;
        }
        let mut r: Vec<f64> = self.saturated.iter().copied().collect();
        r.sort_by(f64::total_cmp);
        let ceiling = r[r.len() / 2];
        let latency = self.min_latency?.as_secs_f64();
        let limit = (CARRY * ceiling * latency).ceil() as usize;
        Some(limit.clamp(1, self.max))
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
                // The goodput rule when it can tell, never above the ceilings' median.
                let median = last[SETTLE_AFTER / 2];
                self.measured().map_or(median, |m| m.min(median))
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
        self.refused = false;
    }

    /// The recommendation so far and what it rests on (see the module docs): measured from
    /// the saturated windows; with none, the highest limit reached (a lower bound: nothing
    /// pushed back); with too few, the lower of the highest limit that ran unsaturated and the
    /// few windows' estimate.
    pub fn outcome(&self) -> AdaptiveOutcome {
        let (recommended, basis) = match self.measured() {
            Some(m) => (m, Basis::Measured),
            None if self.saturated.is_empty() && self.ceilings.is_empty() => {
                (self.limit.max(self.unsaturated_max), Basis::LowerBound)
            }
            // Either figure alone may overshoot: the last unsaturated window can sit just
            // under the threshold, one or two saturated ones may hold a burst.
            None => {
                let few = self.estimate().unwrap_or(usize::MAX);
                (self.unsaturated_max.min(few).max(1), Basis::TooShort)
            }
        };
        AdaptiveOutcome {
            recommended_limit: recommended.max(1),
            limit_trace: self.trace.clone(),
            limit_settled_ms: self.settled_at.map(crate::record::ms),
            recommendation_basis: basis,
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
