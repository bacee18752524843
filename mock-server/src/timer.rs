//! A sub-millisecond timer for the injected latency.
//!
//! tokio's timer wheel has 1 ms resolution and rounds every deadline up to the next tick, so
//! a 50 ms sleep lasts 50–52 ms. For a mock whose purpose is to let a harness measure its own
//! overhead, that error is larger than the overhead itself. This timer keeps the deadlines in
//! a heap served by one OS thread that sleeps on a condvar with a precise timeout (futex on
//! Linux: tens of µs) and wakes each waiting task through a oneshot channel.
//!
//! Precision matters when few requests wait (that is where a harness measures its own
//! overhead); past [`MAX_PRECISE_WAITERS`] waiters, sleeps fall back to tokio's timer.
//!
//! The thread ends when the last handle is dropped (the server's shared state), which drops
//! every pending sender and so wakes every waiter.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

/// Deadlines closer than this are slept with `tokio::time` instead: not worth a thread hop.
const MIN_PRECISE: std::time::Duration = std::time::Duration::from_micros(200);

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
        let _ = woken.await;
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.changed.notify_one();
    }
}

fn run(inner: &Inner) {
    let mut due = Vec::new();
    let mut state = inner.lock();
    loop {
        if state.closed {
            state.heap.clear(); // drops every pending sender, waking their tasks
            return;
        }
        let now = Instant::now();
        while let Some(Reverse(top)) = state.heap.peek() {
            if top.deadline > now {
                break;
            }
            if let Some(Reverse(entry)) = state.heap.pop() {
                due.push(entry.wake);
            }
        }
        if !due.is_empty() {
            drop(state);
            for wake in due.drain(..) {
                let _ = wake.send(()); // the waiter may have gone (client hung up)
            }
            state = inner.lock();
            continue;
        }
        state = match state.heap.peek() {
            Some(Reverse(top)) => {
                let timeout = top.deadline.saturating_duration_since(now);
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
    use std::time::Duration;

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
