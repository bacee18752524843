//! A sub-millisecond timer for the injected latency.
//!
//! tokio's timer wheel has 1 ms resolution and rounds every deadline up to the next tick, so
//! a 50 ms sleep lasts 50–52 ms. For a mock whose purpose is to let a harness measure its own
//! overhead, that error is larger than the overhead itself. This timer keeps the deadlines in
//! a heap served by one OS thread that sleeps on a condvar with a precise timeout (futex on
//! Linux: tens of µs) and wakes each waiting task through a oneshot channel.
//!
//! Two measures keep the thread's own wake-up out of the response time (measured on a 2-vCPU
//! VM, where an idle vCPU takes 100–300 µs to run a woken thread): the thread asks Linux for
//! 1 ns timer slack instead of the default 50 µs, and it wakes a waiter [`EARLY_WAKE`] before
//! its deadline; the waiter then yields on its (now awake) worker until the deadline, so the
//! cross-thread hop is paid before the deadline instead of after it. That yielding costs CPU,
//! so a [`SpinBudget`] caps it at a fraction of one core; past the budget, waiters are woken
//! at their deadline as before.
//!
//! Precision matters when few requests wait (that is where a harness measures its own
//! overhead); past [`MAX_PRECISE_WAITERS`] waiters, sleeps fall back to tokio's timer.
//!
//! The thread ends when the last handle is dropped (the server's shared state), which drops
//! every pending sender and so wakes every waiter.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Deadlines closer than this are slept with `tokio::time` instead: not worth a thread hop.
const MIN_PRECISE: Duration = Duration::from_micros(200);

/// How long before its deadline a waiter is woken (budget permitting); it yields the rest.
/// With the timer slack, at `fixed:50ms`, 10 pooled connections, 2 vCPUs, oha's p50 fell
/// from +0.67 to +0.44 ms over configured (medians of 3 runs); 300 µs measured no better
/// and costs more CPU. The rest is mostly the client's and the request's own wake-ups.
const EARLY_WAKE: Duration = Duration::from_micros(200);

/// The share of one core that early wake-ups may spend yielding, and the most it may save up.
const SPIN_SHARE: u32 = 8; // 1/8 of a core
const SPIN_BURST: Duration = Duration::from_millis(2);

/// Above this many waiting requests, new sleeps use tokio's timer: waking thousands of tasks
/// from one outside thread costs more (runtime injection queue, cross-thread wake-ups) than
/// the ≤1 ms rounding it avoids, which is noise next to a herd that size anyway. Measured
/// with scripts/mock-bench.sh: 10,000 requests at 100 ms sat +238 ms above configured at
/// p50 through this timer alone, +137 ms through tokio's.
const MAX_PRECISE_WAITERS: usize = 1024;

struct Entry {
    deadline: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    next_seq: u64,
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under panics (push/pop only), so poisoning is ignored.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Handle to the timer thread; clones share it. Dropping the last one stops the thread.
pub(crate) struct PreciseTimer {
    inner: Arc<Inner>,
}

impl PreciseTimer {
    /// Starts the timer thread.
    pub(crate) fn start() -> std::io::Result<PreciseTimer> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("mock-timer".into())
            .spawn(move || run(&worker))?;
        Ok(PreciseTimer { inner })
    }

    /// Waits until `deadline` with sub-millisecond precision.
    pub(crate) async fn sleep_until(&self, deadline: tokio::time::Instant) {
        let deadline = deadline.into_std();
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        if deadline - now < MIN_PRECISE {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        let (wake, woken) = oneshot::channel();
        let queued = {
            let mut state = self.inner.lock();
            if state.closed {
                return;
            }
            let queued = state.heap.len() < MAX_PRECISE_WAITERS;
            if queued {
                let seq = state.next_seq;
                state.next_seq += 1;
                let earliest = state
                    .heap
                    .peek()
                    .is_none_or(|Reverse(top)| deadline < top.deadline);
                state.heap.push(Reverse(Entry {
                    deadline,
                    seq,
                    wake,
                }));
                if earliest {
                    self.inner.changed.notify_one();
                }
            }
            queued
        };
        if !queued {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        // Err means the timer stopped (server gone): nothing left to wait for.
        if woken.await.is_ok() {
            // Woken at most EARLY_WAKE early: finish on this worker, which is awake now.
            while Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
        }
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.changed.notify_one();
    }
}

/// A token bucket of CPU time for early wake-ups: it fills at 1/[`SPIN_SHARE`] of wall time
/// up to [`SPIN_BURST`], and each early wake-up (one batch of waiters, which yield side by
/// side on the same workers) takes [`EARLY_WAKE`] from it. This bounds the busy-waiting at
/// high request rates, where workers are awake anyway and it would only burn CPU.
#[derive(Debug)]
struct SpinBudget {
    saved: Duration,
    at: Instant,
}

impl SpinBudget {
    fn new(now: Instant) -> Self {
        Self {
            saved: SPIN_BURST,
            at: now,
        }
    }

    /// How early the next wake-up may be: [`EARLY_WAKE`] if the budget has it, else zero.
    fn lead(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = self.at.max(now);
        self.saved = (self.saved + elapsed / SPIN_SHARE).min(SPIN_BURST);
        if self.saved >= EARLY_WAKE {
            EARLY_WAKE
        } else {
            Duration::ZERO
        }
    }

    /// Takes one early wake-up's worth.
    fn spend(&mut self) {
        self.saved = self.saved.saturating_sub(EARLY_WAKE);
    }
}

/// Timer slack is how late Linux may fire a thread's timeouts to batch wake-ups: 50 µs by
/// default, which would land on every response. 1 ns asks for the precise expiry.
fn precise_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only the calling thread's slack;
    // no memory is passed. A failure (return -1) leaves the default slack, which is harmless.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn run(inner: &Inner) {
    precise_timer_slack();
    let mut due = Vec::new();
    let mut budget = SpinBudget::new(Instant::now());
    let mut state = inner.lock();
    loop {
        if state.closed {
            state.heap.clear(); // drops every pending sender, waking their tasks
            return;
        }
        let now = Instant::now();
        let lead = budget.lead(now);
        while let Some(Reverse(top)) = state.heap.peek() {
            if top.deadline > now + lead {
                break;
            }
            if let Some(Reverse(entry)) = state.heap.pop() {
                due.push(entry.wake);
            }
        }
        if !due.is_empty() {
            if lead > Duration::ZERO {
                budget.spend();
            }
            drop(state);
            for wake in due.drain(..) {
                let _ = wake.send(()); // the waiter may have gone (client hung up)
            }
            state = inner.lock();
            continue;
        }
        state = match state.heap.peek() {
            Some(Reverse(top)) => {
                let timeout = top.deadline.saturating_duration_since(now + lead);
                inner
                    .changed
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
            None => inner
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_budget_allows_early_wakes_up_to_its_share_of_time() {
        let t0 = Instant::now();
        let mut budget = SpinBudget::new(t0);
        // A full bucket holds SPIN_BURST / EARLY_WAKE early wake-ups back to back.
        let burst = (SPIN_BURST.as_micros() / EARLY_WAKE.as_micros()) as usize;
        for _ in 0..burst {
            assert_eq!(budget.lead(t0), EARLY_WAKE);
            budget.spend();
        }
        assert_eq!(budget.lead(t0), Duration::ZERO, "bucket empty");
        // It refills at 1/SPIN_SHARE of wall time: one more after EARLY_WAKE * SPIN_SHARE.
        let almost = t0 + EARLY_WAKE * SPIN_SHARE - Duration::from_micros(1);
        assert_eq!(budget.lead(almost), Duration::ZERO);
        let refilled = t0 + EARLY_WAKE * SPIN_SHARE;
        assert_eq!(budget.lead(refilled), EARLY_WAKE);
        budget.spend();
        // A long idle spell refills only up to SPIN_BURST.
        let later = refilled + Duration::from_secs(60);
        let mut n = 0;
        while budget.lead(later) == EARLY_WAKE && n < 1000 {
            budget.spend();
            n += 1;
        }
        assert_eq!(n, burst);
        // An instant earlier than the last one (never happens; Instant is monotonic) is no gain.
        assert_eq!(budget.lead(t0), Duration::ZERO);
    }

    #[tokio::test]
    async fn an_early_wake_still_returns_no_sooner_than_the_deadline() {
        let timer = PreciseTimer::start().unwrap();
        for _ in 0..20 {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
            timer.sleep_until(deadline).await;
            assert!(tokio::time::Instant::now() >= deadline);
        }
    }

    #[tokio::test]
    async fn wakes_after_the_deadline_and_close_to_it() {
        let timer = PreciseTimer::start().unwrap();
        let mut late = Vec::new();
        for ms in [5u64, 1, 3] {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(deadline).await;
            let now = tokio::time::Instant::now();
            assert!(now >= deadline);
            late.push(now - deadline);
        }
        // Generous: a busy 2-core CI machine can delay any wake-up; tokio's own timer would
        // typically be ~1 ms late here.
        late.sort();
        assert!(late[0] < Duration::from_millis(5), "{late:?}");
    }

    #[tokio::test]
    async fn many_concurrent_sleeps_all_wake_in_order_of_deadline() {
        let timer = Arc::new(PreciseTimer::start().unwrap());
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let timer = Arc::clone(&timer);
            tasks.push(tokio::spawn(async move {
                let deadline = start + Duration::from_micros(500 + (i % 20) * 250);
                timer.sleep_until(deadline).await;
                tokio::time::Instant::now() >= deadline
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap());
        }
    }

    #[tokio::test]
    async fn dropping_the_timer_wakes_waiters() {
        let timer = PreciseTimer::start().unwrap();
        let inner = Arc::clone(&timer.inner);
        let waiter = PreciseTimer { inner };
        let task = tokio::spawn(async move {
            waiter
                .sleep_until(tokio::time::Instant::now() + Duration::from_secs(3600))
                .await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(timer);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("waiter woke")
            .unwrap();
    }

    #[tokio::test]
    async fn past_the_waiter_cap_sleeps_still_end_on_time() {
        let timer = Arc::new(PreciseTimer::start().unwrap());
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_millis(30);
        let mut tasks = Vec::new();
        for _ in 0..MAX_PRECISE_WAITERS + 200 {
            let timer = Arc::clone(&timer);
            tasks.push(tokio::spawn(async move {
                timer.sleep_until(deadline).await;
                tokio::time::Instant::now() >= deadline
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap(), "woke before the deadline");
        }
        assert!(timer.inner.lock().heap.is_empty());
    }
}
