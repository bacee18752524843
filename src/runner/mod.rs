//! One batch at one concurrency limit: the semaphore pattern, failure isolation, backoff
//! retries and retry-failed passes. Emits [`CallRecord`]s and [`ChainRecord`]s; never prints.
//!
//! Concurrency: at a fixed limit, `limit` worker tasks each take the next row when their chain
//! ends (see `workers.rs`), so at most `limit` chains exist at once (limit 1 is sequential)
//! and a batch of 10,000 rows never holds 10,000 futures. The adaptive limit keeps the
//! semaphore pattern: the spawning loop takes an owned permit *before* spawning a chain's
//! task, which gives it back when the chain ends. Either way a failure, timeout or even a
//! panic in one chain is recorded against its row and never touches the others.
//!
//! Clock: `tokio::time::Instant`, monotonic. Wall time runs from just before the first chain
//! is spawned to the end of the last call of the last pass; client construction is excluded.

mod adaptive;
mod arrivals;
mod chain;
mod openloop;
mod rate;
mod resume;
mod workers;

pub use adaptive::{
    AdaptiveLimit, AdaptiveOutcome, Basis, Completion, Controller, MIN_SATURATED, TracePoint,
};
pub use arrivals::{Arrivals, ArrivalsError, Schedule};
pub use openloop::{OpenLoop, OpenLoopStats, Outcome, drive, max_sustainable_rate};
pub use rate::{RateLimiter, estimate_tokens};
pub use resume::{ResumeFrom, Resumed};

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::chain::{Chain, Row, Rows};
use crate::endpoint::{
    ClientError, ClientOptions, Endpoint, HttpClient, Session, SessionError, Target,
};
use crate::record::Pooling;
use crate::record::{CallRecord, ChainRecord};
use chain::{ChainRun, panicked};

/// Receives progress as it happens (progress bars, durable logs). Called from worker tasks:
/// keep implementations quick and non-blocking.
pub trait Observer: Send + Sync {
    /// A pass over `rows` rows begins (pass 0 is the first, 1.. retry the failed rows).
    fn pass_started(&self, _pass: u16, _rows: usize) {}
    /// One call finished, successfully or not.
    fn call_done(&self, _call: &CallRecord) {}
    /// A successful streamed call's chunk timing, just before its `call_done`.
    fn stream_done(&self, _call: &CallRecord, _stream: &crate::endpoint::sse::StreamStats) {}
    /// One chain finished. `is_final` is true when no later pass will run this row again:
    /// it succeeded, or it failed in the last pass.
    fn chain_done(&self, _row: &Row, _chain: &ChainRecord, _is_final: bool) {}
}

/// Several observers as one: each event goes to each, in order.
pub struct Tee(pub Vec<Arc<dyn Observer>>);

impl Observer for Tee {
    fn pass_started(&self, pass: u16, rows: usize) {
        self.0.iter().for_each(|o| o.pass_started(pass, rows));
    }

    fn call_done(&self, call: &CallRecord) {
        self.0.iter().for_each(|o| o.call_done(call));
    }

    fn stream_done(&self, call: &CallRecord, stream: &crate::endpoint::sse::StreamStats) {
        self.0.iter().for_each(|o| o.stream_done(call, stream));
    }

    fn chain_done(&self, row: &Row, chain: &ChainRecord, is_final: bool) {
        self.0
            .iter()
            .for_each(|o| o.chain_done(row, chain, is_final));
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// What happens to a failed call and a failed chain: backoff retries of the call after 429
/// or 503, then whole passes over the failed rows.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Passes over the failed rows after the first pass.
    pub retry_passes: u32,
    /// Backoff retries of one call after 429, 503 or 529 (Anthropic overloaded).
    pub max_retries: u32,
    /// First backoff ceiling; doubles each try (full jitter below it).
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_cap: Duration,
    /// Longest Retry-After honoured; a server asking for more fails the call at once.
    pub max_retry_wait: Duration,
    /// `--restart-chains`: a failed chain's next pass starts again at step 1, instead of at
    /// the step that failed with the saved outputs of the steps before it.
    pub restart_chains: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_passes: 1,
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_retry_wait: Duration::from_secs(60),
            restart_chains: false,
        }
    }
}

/// What every chain of a batch does and how it is sent: the chain, where calls go, the
/// client, retries and rate caps. The part of a sweep's and a run's configuration they share.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The chain every row runs.
    pub chain: Chain,
    /// Where calls go.
    pub endpoint: Endpoint,
    /// Model name (OpenAI format) for a mock endpoint.
    pub model: String,
    /// Stream responses and measure time to first token (OpenAI format).
    pub stream: bool,
    /// The API a mock endpoint is spoken to in (OpenAI or Anthropic); a remote target
    /// carries its own.
    pub api: crate::endpoint::ApiFormat,
    /// Client timeouts, TLS, size limit and redirects.
    pub client: ClientOptions,
    /// Retry passes and backoff.
    pub retry: RetryPolicy,
    /// Client-side request-per-minute cap.
    pub rpm: Option<u32>,
    /// Client-side token-per-minute cap.
    pub tpm: Option<u32>,
    /// Price per 1M tokens, when reports should say what the batch cost.
    pub price: Option<crate::cost::Price>,
    /// `--slo`: objectives each call is judged against (goodput).
    pub slo: Option<crate::slo::Slo>,
}

impl Workload {
    /// Makes the endpoint ready: starts the embedded mock if asked, runs the preflight call.
    pub async fn open(&self) -> Result<Session, SessionError> {
        Session::open(
            &self.endpoint,
            &self.model,
            self.stream,
            self.api,
            &self.chain,
            &self.client,
        )
        .await
    }

    /// The factory of this workload's runners against `session`, stopped by `stop`.
    pub fn factory(&self, session: &Session, stop: Option<StopSignal>) -> RunnerFactory {
        RunnerFactory {
            target: Arc::clone(session.target()),
            chain: Arc::new(self.chain.clone()),
            client: self.client.clone(),
            retry: self.retry.clone(),
            rpm: self.rpm,
            tpm: self.tpm,
            stop,
        }
    }
}

/// Makes the [`Runner`] of each run of a sweep or a `run`: the same target, chain, retries,
/// rate caps and stop signal; a fresh client per run, so every run starts with a cold pool.
#[derive(Debug, Clone)]
pub struct RunnerFactory {
    /// Where calls go.
    pub target: Arc<Target>,
    /// The steps of every chain.
    pub chain: Arc<Chain>,
    /// Timeouts, TLS, size limits and redirects of every client.
    pub client: ClientOptions,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Client-side request-per-minute cap.
    pub rpm: Option<u32>,
    /// Client-side token-per-minute cap.
    pub tpm: Option<u32>,
    /// The caller's stop signal (Ctrl-C); None runs every row.
    pub stop: Option<StopSignal>,
}

impl RunnerFactory {
    /// A runner at `limit` with a new client in `pooling` mode and a fresh rate limiter.
    pub fn runner(&self, limit: usize, pooling: Pooling) -> Result<Runner, ClientError> {
        Ok(Runner {
            client: HttpClient::for_target(pooling, &self.client, &self.target)?,
            target: Arc::clone(&self.target),
            chain: Arc::clone(&self.chain),
            limiter: RateLimiter::new(self.rpm, self.tpm).map(Arc::new),
            limit,
            retry: self.retry.clone(),
            stop: self.stop.clone(),
            adaptive: None,
        })
    }
}

/// Everything one chain needs, shared by all its tasks.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Client in the batch's pooling mode.
    pub client: HttpClient,
    /// Where calls go.
    pub target: Arc<Target>,
    /// The steps of every chain.
    pub chain: Arc<Chain>,
    /// Client-side rate limit, shared by every chain.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Maximum chains in flight (1 is sequential).
    pub limit: usize,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// When it turns `true` (Ctrl-C), no new chain starts; chains in flight finish.
    pub stop: Option<StopSignal>,
    /// `auto`: the limit adapts (see [`AdaptiveLimit`]) and `limit` is only its ceiling.
    pub adaptive: Option<Arc<AdaptiveLimit>>,
}

/// Asks a batch to stop starting chains; the sender side belongs to whoever handles Ctrl-C.
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// What a batch produced.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// Rows with a final record (succeeded, or failed their last pass): every row unless
    /// the batch was stopped. The records themselves went to the observer.
    pub finished: usize,
    /// Rows that never started because the batch was stopped.
    pub not_run: Vec<usize>,
    /// Whether the stop signal cut the batch short.
    pub interrupted: bool,
    /// Most passes any row took (1 = no retry pass was needed).
    pub passes: u16,
    /// First chain start to last chain end, every pass included.
    pub wall: Duration,
    /// Wall time of the retry passes alone.
    pub retry_wall: Duration,
    /// Rows that failed the first pass and were run again.
    pub retried: usize,
    /// Calls not sent because failed chains resumed at the step that failed: the completed
    /// steps they did not redo, summed over every resumed attempt.
    pub calls_saved: u64,
    /// Requests sent again on a fresh connection because the kept connection they went out
    /// on had been closed by the server (see `HttpClient::stale_retries`).
    pub stale_retries: u64,
}

impl Runner {
    /// Runs every row through the chain at `limit`, then re-runs only the failed rows
    /// for up to `retry.retry_passes` passes. A stop signal ends it early: chains in flight
    /// finish, the rest are returned as `not_run`.
    pub async fn run_batch(&self, rows: Rows, observer: Arc<dyn Observer>) -> BatchResult {
        self.run_batch_until(rows, observer, None).await
    }

    /// [`Runner::run_batch`], but the first pass starts no chain after `until` (a closed-loop
    /// soak: `limit` chains in flight for a duration, over as many rows as that takes). Rows
    /// never reached are not `not_run`: they were never part of the load. Failed rows still
    /// get their retry passes after it.
    pub async fn run_batch_until(
        &self,
        rows: Rows,
        observer: Arc<dyn Observer>,
        until: Option<Instant>,
    ) -> BatchResult {
        self.run_batch_from(rows, observer, until, ResumeFrom::new())
            .await
    }

    /// [`Runner::run_batch_until`] where the rows in `resume_from` (failed rows of an earlier
    /// `run` session) start their first pass at the step that failed, with the saved outputs
    /// of the steps before it (unless `retry.restart_chains`).
    pub async fn run_batch_from(
        &self,
        rows: Rows,
        observer: Arc<dyn Observer>,
        until: Option<Instant>,
        resume_from: ResumeFrom,
    ) -> BatchResult {
        // One shared copy for the chain tasks: a task clones an Arc, not the client.
        let this = Arc::new(self.clone());
        let stale_before = self.client.stale_retries();
        let t0 = Instant::now();
        let mut state = BatchState::new(t0);
        state.resume_from = resume_from;
        // None: every row (the first pass walks a range, not a list of a million indices).
        let mut pending: Option<Vec<usize>> = None;
        for pass in 0..=self.retry.retry_passes {
            let queued = pending.as_ref().map_or(rows.len(), Vec::len);
            if queued == 0 || state.cut_short {
                break;
            }
            let pass = pass as u16;
            if pass == 1 {
                state.retried = queued;
                state.retry_start = Some(Instant::now());
            }
            observer.pass_started(pass, queued);
            let is_last = u32::from(pass) == self.retry.retry_passes;
            let pass_ = Pass {
                pass,
                is_last,
                rows: &rows,
                observer: &observer,
                until: until.filter(|_| pass == 0),
            };
            let mut failed = match (pending.take(), &self.adaptive) {
                (None, None) => {
                    let queue = Box::new(0..rows.len());
                    this.run_pass_workers(pass_, queue, rows.len(), &mut state)
                        .await
                }
                (Some(queue), None) => {
                    let n = queue.len();
                    let queue = Box::new(queue.into_iter());
                    this.run_pass_workers(pass_, queue, n, &mut state).await
                }
                (None, Some(_)) => this.run_pass(pass_, 0..rows.len(), &mut state).await,
                (Some(queue), Some(_)) => this.run_pass(pass_, queue.into_iter(), &mut state).await,
            };
            failed.sort_unstable();
            if state.cut_short && !is_last {
                // Stopped: this pass's failures get no later pass, so they are final now.
                for &idx in &failed {
                    state.finalize_held(idx, &rows.get(idx), observer.as_ref());
                }
            }
            pending = Some(failed);
        }
        let mut result = state.finish(&rows, observer.as_ref());
        result.stale_retries = self.client.stale_retries() - stale_before;
        result
    }

    /// One pass over `queue` at the adaptive limit (a fixed one runs `run_pass_workers`);
    /// returns the rows that failed. The spawning loop takes a permit *before* spawning, so at
    /// most `limit` chain tasks exist at once.
    async fn run_pass(
        self: &Arc<Self>,
        p: Pass<'_>,
        mut queue: impl Iterator<Item = usize>,
        state: &mut BatchState,
    ) -> Vec<usize> {
        let semaphore = match &self.adaptive {
            Some(a) => a.semaphore(),
            None => Arc::new(Semaphore::new(self.limit.max(1))),
        };
        let mut tasks = JoinSet::new();
        let mut failed = Vec::new();
        while let Some(idx) = queue.next() {
            let acquire = Arc::clone(&semaphore).acquire_owned();
            let permit = tokio::select! {
                biased;
                () = stopped(self.stop.clone()) => {
                    state.cut_short = true;
                    state.not_run.push(idx);
                    state.not_run.extend(queue.by_ref());
                    break;
                }
                () = deadline(p.until) => break,
                permit = acquire => permit.expect("the semaphore is never closed"),
            };
            let (runner, rows, observer) =
                (Arc::clone(self), p.rows.clone(), Arc::clone(p.observer));
            let (t0, pass) = (state.t0, p.pass);
            let start = state.start_of(idx, self.chain.steps.len(), self.retry.restart_chains);
            tasks.spawn(async move {
                // A panic in one chain becomes that row's failure, never the batch's.
                let row = rows.get(idx);
                // Boxed: the task stays small, so spawning it copies a few words, not the
                // whole chain's state (a memmove of it was ~13 % of a zero-latency run's CPU).
                let chain =
                    Box::pin(runner.run_chain(&row, idx, pass, t0, start, observer.as_ref()));
                let run = AssertUnwindSafe(chain).catch_unwind().await;
                match &runner.adaptive {
                    Some(a) => a.release(permit),
                    None => drop(permit),
                }
                (idx, run.map_err(chain_panicked))
            });
            while let Some(Ok((idx, run))) = tasks.try_join_next() {
                state.settle(idx, &p.rows.get(idx), run, &p, &mut failed);
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((idx, run)) = done {
                state.settle(idx, &p.rows.get(idx), run, &p, &mut failed);
            }
        }
        failed
    }

    /// Opens up to `n` connections before a run is timed: `n` concurrent copies of the first
    /// step of the first row, results discarded. Only useful for a pooled client; for a real
    /// API each warm-up call costs like any other.
    pub async fn warm_up(&self, rows: &Rows, n: usize) {
        let (false, Some(step)) = (rows.is_empty(), self.chain.steps.first()) else {
            return;
        };
        let row = &rows.get(0);
        let body = bytes::Bytes::from(self.target.body(step, row, None));
        let calls = (0..n).map(|_| self.client.call(&self.target, body.clone()));
        futures_util::future::join_all(calls).await;
    }
}

/// Resolves when the stop signal turns `true`; never without a signal (or once its sender is
/// gone, which means nobody can ask to stop any more).
async fn stopped(stop: Option<StopSignal>) {
    if let Some(mut stop) = stop
        && stop.wait_for(|s| *s).await.is_ok()
    {
        return;
    }
    std::future::pending::<()>().await;
}

/// Resolves at `until`, or never.
async fn deadline(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}

/// One pass's settings, as the spawning loop and `settle` share them.
struct Pass<'a> {
    pass: u16,
    is_last: bool,
    rows: &'a Rows,
    observer: &'a Arc<dyn Observer>,
    /// A soak's end: no chain starts after it.
    until: Option<Instant>,
}

/// What a batch has gathered so far, across passes: the records of rows that failed and wait
/// for their next pass (nothing per row otherwise: a row in pass `p` has run `p + 1` times,
/// since each pass runs exactly the previous pass's failures). Calls and finished records go
/// to the observer as they happen, so memory does not grow with the calls.
struct BatchState {
    t0: Instant,
    /// Most passes any row has run (0: none started).
    max_passes: u16,
    /// Failed rows' latest records, until a later pass settles them or the batch stops.
    held: HashMap<usize, ChainRecord>,
    /// Rows whose first pass resumes where an earlier session failed (taken as they start).
    resume_from: ResumeFrom,
    /// Completed steps that resumed chains did not run again.
    calls_saved: u64,
    finished: usize,
    not_run: Vec<usize>,
    cut_short: bool,
    retried: usize,
    last_end: Instant,
    retry_start: Option<Instant>,
}

impl BatchState {
    fn new(t0: Instant) -> BatchState {
        BatchState {
            t0,
            max_passes: 0,
            held: HashMap::new(),
            resume_from: ResumeFrom::new(),
            calls_saved: 0,
            finished: 0,
            not_run: Vec::new(),
            cut_short: false,
            retried: 0,
            last_end: t0,
            retry_start: None,
        }
    }

    /// Takes in one finished chain: the observer hears it and whether it is final; a failure
    /// before the last pass is held and queued for the next pass.
    fn settle(
        &mut self,
        idx: usize,
        row: &Row,
        run: Result<ChainRun, String>,
        p: &Pass<'_>,
        failed: &mut Vec<usize>,
    ) {
        let mut run = run.unwrap_or_else(|message| panicked(idx, message));
        self.last_end = self.last_end.max(run.end);
        run.record.passes = p.pass + 1;
        self.max_passes = self.max_passes.max(p.pass + 1);
        let is_final = run.record.ok() || p.is_last;
        p.observer.chain_done(row, &run.record, is_final);
        if is_final {
            self.finished += 1;
            self.held.remove(&idx);
        } else {
            failed.push(idx);
            self.held.insert(idx, run.record);
        }
    }

    /// A held failure gets no later pass (the batch stopped): it is final now.
    fn finalize_held(&mut self, idx: usize, row: &Row, observer: &dyn Observer) -> bool {
        match self.held.remove(&idx) {
            Some(record) => {
                observer.chain_done(row, &record, true);
                self.finished += 1;
                true
            }
            None => false,
        }
    }

    /// The batch's result. A row that failed an earlier pass and then was not re-run: its
    /// failure is final now.
    fn finish(mut self, rows: &Rows, observer: &dyn Observer) -> BatchResult {
        let mut not_run = std::mem::take(&mut self.not_run);
        not_run.retain(|&idx| !self.finalize_held(idx, &rows.get(idx), observer));
        not_run.sort_unstable();
        let last_end = self.last_end;
        BatchResult {
            finished: self.finished,
            interrupted: self.cut_short,
            not_run,
            passes: self.max_passes,
            wall: last_end.duration_since(self.t0),
            retry_wall: self
                .retry_start
                .map_or(Duration::ZERO, |s| last_end.saturating_duration_since(s)),
            retried: self.retried,
            calls_saved: self.calls_saved,
            stale_retries: 0,
        }
    }
}

/// A chain task's panic as its row's failure message, with the payload's text.
fn chain_panicked(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("chain task panicked: {text}")
}
