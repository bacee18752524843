//! A pass at a fixed limit without a task per chain: `limit` worker tasks, each taking the
//! next row from the shared queue as soon as its chain ends, as oha's and wrk's connection
//! loops do. The same rows start in the same order and at most `limit` chains run at once, as
//! with the permit-per-chain loop (which the adaptive limit keeps, since it resizes its
//! permits); what goes is a spawn, a semaphore permit, a join-set entry and a wake-up of the
//! spawning loop per chain (about a tenth of loadchain's CPU at zero latency).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{BatchState, Pass, Runner, chain_panicked};

/// The queue of rows a pass has not started yet.
type Queue = Mutex<Box<dyn Iterator<Item = usize> + Send>>;

/// What the workers settle into: the batch's state and the rows that failed this pass.
type Settled = Mutex<(BatchState, Vec<usize>)>;

impl Runner {
    /// One pass over `queue` by `limit` worker tasks; returns the rows that failed. A stop
    /// signal or the soak's end lets no worker start another chain; chains in flight finish.
    pub(super) async fn run_pass_workers(
        self: &Arc<Self>,
        p: Pass<'_>,
        queue: Box<dyn Iterator<Item = usize> + Send>,
        rows_left: usize,
        state: &mut BatchState,
    ) -> Vec<usize> {
        let t0 = state.t0;
        // Only a retry pass, or a first pass seeded by `run --resume`, can start a row
        // part-way; every other chain skips the state lock before it starts.
        let may_resume =
            !self.retry.restart_chains && (p.pass > 0 || !state.resume_from.is_empty());
        let steps = self.chain.steps.len();
        let queue: Arc<Queue> = Arc::new(Mutex::new(queue));
        let settled: Arc<Settled> = Arc::new(Mutex::new((
            std::mem::replace(state, BatchState::new(t0)),
            Vec::new(),
        )));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = JoinSet::new();
        for _ in 0..self.limit.max(1).min(rows_left) {
            let (runner, queue, settled, stopped) = (
                Arc::clone(self),
                Arc::clone(&queue),
                Arc::clone(&settled),
                Arc::clone(&stopped),
            );
            let (rows, observer) = (p.rows.clone(), Arc::clone(p.observer));
            let (pass, is_last, until) = (p.pass, p.is_last, p.until);
            workers.spawn(async move {
                let p = Pass {
                    pass,
                    is_last,
                    rows: &rows,
                    observer: &observer,
                    until,
                };
                loop {
                    if runner.stop.as_ref().is_some_and(|s| *s.borrow()) {
                        stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                    if until.is_some_and(|u| Instant::now() >= u) {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                    let Some(idx) = next else { break };
                    let row = rows.get(idx);
                    let start = may_resume
                        .then(|| {
                            let mut guard = settled.lock().unwrap_or_else(PoisonError::into_inner);
                            guard.0.start_of(idx, steps, false)
                        })
                        .flatten();
                    // A panic in one chain becomes that row's failure, never the batch's.
                    let chain = runner.run_chain(&row, idx, pass, t0, start, observer.as_ref());
                    let run = AssertUnwindSafe(chain)
                        .catch_unwind()
                        .await
                        .map_err(chain_panicked);
                    let mut guard = settled.lock().unwrap_or_else(PoisonError::into_inner);
                    let (state, failed) = &mut *guard;
                    state.settle(idx, &row, run, &p, failed);
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            // Only settling (the observers) can panic outside a chain: as when it ran in the
            // spawning loop, the batch does not survive it.
            if let Err(e) = done
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        let mut guard = settled.lock().unwrap_or_else(PoisonError::into_inner);
        *state = std::mem::replace(&mut guard.0, BatchState::new(t0));
        let failed = std::mem::take(&mut guard.1);
        if stopped.load(std::sync::atomic::Ordering::Relaxed) {
            state.cut_short = true;
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            state.not_run.extend(queue.by_ref());
        }
        failed
    }
}
