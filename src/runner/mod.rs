//! One batch at one concurrency limit: the semaphore pattern, failure isolation, backoff
//! retries and retry-failed passes. Emits [`CallRecord`]s and [`ChainRecord`]s; never prints.
//!
//! Concurrency: the spawning loop takes an owned permit from a `Semaphore` of `limit` permits
//! *before* spawning a chain's task, and the task drops it when the chain ends, so at most
//! `limit` chains exist at once (limit 1 is sequential) and a batch of 10,000 rows never holds
//! 10,000 futures. Each chain is its own task: a failure, timeout or even a panic in one is
//! recorded against its row and never touches the others.
//!
//! Clock: `tokio::time::Instant`, monotonic. Wall time runs from just before the first chain
//! is spawned to the end of the last call of the last pass; client construction is excluded.

mod rate;

pub use rate::{RateLimiter, estimate_tokens};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::chain::{Chain, Row};
use crate::endpoint::{ClientError, ClientOptions, HttpClient, Target};
use crate::record::Pooling;
use crate::record::{CallRecord, ChainFailure, ChainRecord, ErrorKind};

/// Receives progress as it happens (progress bars, durable logs). Called from worker tasks:
/// keep implementations quick and non-blocking.
pub trait Observer: Send + Sync {
    /// A pass over `rows` rows begins (pass 0 is the first, 1.. retry the failed rows).
    fn pass_started(&self, _pass: u16, _rows: usize) {}
    /// One call finished, successfully or not.
    fn call_done(&self, _call: &CallRecord) {}
    /// One chain finished. `is_final` is true when no later pass will run this row again:
    /// it succeeded, or it failed in the last pass.
    fn chain_done(&self, _row: &Row, _chain: &ChainRecord, _is_final: bool) {}
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
    /// Backoff retries of one call after 429 or 503.
    pub max_retries: u32,
    /// First backoff ceiling; doubles each try (full jitter below it).
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_cap: Duration,
    /// Longest Retry-After honoured; a server asking for more fails the call at once.
    pub max_retry_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_passes: 1,
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_retry_wait: Duration::from_secs(60),
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
            client: HttpClient::new(pooling, &self.client)?,
            target: Arc::clone(&self.target),
            chain: Arc::clone(&self.chain),
            limiter: RateLimiter::new(self.rpm, self.tpm).map(Arc::new),
            limit,
            retry: self.retry.clone(),
            stop: self.stop.clone(),
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
}

/// Asks a batch to stop starting chains; the sender side belongs to whoever handles Ctrl-C.
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// What a batch produced.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// Final record of every row that ran, in row order (every row unless interrupted).
    pub chains: Vec<ChainRecord>,
    /// Rows that never started because the batch was stopped.
    pub not_run: Vec<usize>,
    /// Whether the stop signal cut the batch short.
    pub interrupted: bool,
    /// Every call of every pass, in completion order.
    pub calls: Vec<CallRecord>,
    /// First chain start to last chain end, every pass included.
    pub wall: Duration,
    /// Wall time of the retry passes alone.
    pub retry_wall: Duration,
    /// Rows that failed the first pass and were run again.
    pub retried: usize,
}

struct ChainRun {
    record: ChainRecord,
    calls: Vec<CallRecord>,
    end: Instant,
}

impl Runner {
    /// Runs every row through the chain at `limit`, then re-runs only the failed rows
    /// for up to `retry.retry_passes` passes. A stop signal ends it early: chains in flight
    /// finish, the rest are returned as `not_run`.
    pub async fn run_batch(&self, rows: Arc<[Row]>, observer: Arc<dyn Observer>) -> BatchResult {
        let limit = self.limit.max(1);
        let mut finals: Vec<Option<ChainRecord>> = vec![None; rows.len()];
        let mut calls = Vec::with_capacity(rows.len() * self.chain.steps.len());
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        let mut not_run = Vec::new();
        let mut cut_short = false;
        let mut retried = 0;
        let t0 = Instant::now();
        let mut last_end = t0;
        let mut retry_start = None;
        for pass in 0..=self.retry.retry_passes {
            if pending.is_empty() || cut_short {
                break;
            }
            let pass = pass as u16;
            if pass == 1 {
                retried = pending.len();
                retry_start = Some(Instant::now());
            }
            observer.pass_started(pass, pending.len());
            let is_last = u32::from(pass) == self.retry.retry_passes;
            let semaphore = Arc::new(Semaphore::new(limit));
            let mut tasks = JoinSet::new();
            let mut task_rows = HashMap::new();
            let mut failed = Vec::new();
            let mut settle =
                |idx: usize, run: Result<ChainRun, String>, calls: &mut Vec<CallRecord>| {
                    let mut run = run.unwrap_or_else(|message| panicked(idx, message));
                    last_end = last_end.max(run.end);
                    run.record.passes = finals[idx].as_ref().map_or(0, |r| r.passes) + 1;
                    let ok = run.record.ok();
                    observer.chain_done(&rows[idx], &run.record, ok || is_last);
                    if !ok {
                        failed.push(idx);
                    }
                    calls.extend(run.calls);
                    finals[idx] = Some(run.record);
                };
            let mut queue = std::mem::take(&mut pending).into_iter();
            while let Some(idx) = queue.next() {
                let acquire = Arc::clone(&semaphore).acquire_owned();
                let permit = tokio::select! {
                    biased;
                    () = stopped(self.stop.clone()) => {
                        cut_short = true;
                        not_run.push(idx);
                        not_run.extend(queue.by_ref());
                        break;
                    }
                    permit = acquire => permit.expect("the semaphore is never closed"),
                };
                let (runner, rows, observer) =
                    (self.clone(), Arc::clone(&rows), Arc::clone(&observer));
                let handle = tasks.spawn(async move {
                    let run = runner
                        .run_chain(&rows, idx, pass, t0, observer.as_ref())
                        .await;
                    drop(permit);
                    run
                });
                task_rows.insert(handle.id(), idx);
                while let Some(done) = tasks.try_join_next_with_id() {
                    let (idx, run) = joined(&task_rows, done);
                    settle(idx, run, &mut calls);
                }
            }
            while let Some(done) = tasks.join_next_with_id().await {
                let (idx, run) = joined(&task_rows, done);
                settle(idx, run, &mut calls);
            }
            failed.sort_unstable();
            if cut_short && !is_last {
                // Stopped: this pass's failures get no later pass, so they are final now.
                for &idx in &failed {
                    if let Some(record) = &finals[idx] {
                        observer.chain_done(&rows[idx], record, true);
                    }
                }
            }
            pending = failed;
        }
        // A row that failed an earlier pass and then was not re-run: its failure is final now.
        not_run.retain(|&idx| match &finals[idx] {
            Some(record) => {
                observer.chain_done(&rows[idx], record, true);
                false
            }
            None => true,
        });
        not_run.sort_unstable();
        BatchResult {
            interrupted: cut_short,
            not_run,
            chains: finals.into_iter().flatten().collect(),
            calls,
            wall: last_end.duration_since(t0),
            retry_wall: retry_start
                .map_or(Duration::ZERO, |s| last_end.saturating_duration_since(s)),
            retried,
        }
    }

    /// Opens up to `n` connections before a run is timed: `n` concurrent copies of the first
    /// step of the first row, results discarded. Only useful for a pooled client; for a real
    /// API each warm-up call costs like any other.
    pub async fn warm_up(&self, rows: &[Row], n: usize) {
        let (Some(row), Some(step)) = (rows.first(), self.chain.steps.first()) else {
            return;
        };
        let body = self.target.body(step, row, None);
        let calls = (0..n).map(|_| self.client.call(&self.target, body.clone()));
        futures_util::future::join_all(calls).await;
    }

    /// One chain: its steps in order, each step's output feeding the next.
    async fn run_chain(
        &self,
        rows: &[Row],
        idx: usize,
        pass: u16,
        t0: Instant,
        observer: &dyn Observer,
    ) -> ChainRun {
        let row = &rows[idx];
        let mut record = ChainRecord {
            row: idx as u32,
            passes: 1,
            latency: Duration::ZERO,
            outputs: Vec::with_capacity(self.chain.steps.len()),
            step_latencies: Vec::with_capacity(self.chain.steps.len()),
            failure: None,
        };
        let mut calls = Vec::with_capacity(self.chain.steps.len());
        let mut first_send = None;
        let mut end = Instant::now();
        'steps: for (k, step) in self.chain.steps.iter().enumerate() {
            let previous = record.outputs.last().map(String::as_str);
            let body = self.target.body(step, row, previous);
            let tokens = estimate_tokens(body.len(), step.max_tokens);
            let mut try_no = 0u16;
            loop {
                if let Some(limiter) = &self.limiter {
                    limiter.acquire(tokens).await;
                }
                let out = self.client.call(&self.target, body.clone()).await;
                let sent = out.started;
                first_send.get_or_insert(sent);
                end = sent + out.latency;
                let call = CallRecord {
                    row: idx as u32,
                    step: k as u16,
                    pass,
                    try_no,
                    start: sent.duration_since(t0),
                    latency: out.latency,
                    status: out.status,
                    error: out.error,
                    bytes: out.bytes,
                    tokens: out.tokens,
                    ttft: out.ttft,
                };
                observer.call_done(&call);
                calls.push(call);
                let failure = match out.error {
                    None => {
                        record.outputs.push(out.output.unwrap_or_default());
                        record.step_latencies.push(out.latency);
                        continue 'steps;
                    }
                    Some(kind)
                        if kind.is_backoff_retryable(out.status)
                            && u32::from(try_no) < self.retry.max_retries =>
                    {
                        match self.wait_before_retry(try_no, out.retry_after).await {
                            Ok(()) => {
                                try_no += 1;
                                continue;
                            }
                            Err(why) => ChainFailure {
                                step: k as u16,
                                kind,
                                status: out.status,
                                message: format!("{}; {why}", out.message),
                            },
                        }
                    }
                    Some(kind) => ChainFailure {
                        step: k as u16,
                        kind,
                        status: out.status,
                        message: out.message,
                    },
                };
                record.failure = Some(failure);
                break 'steps;
            }
        }
        record.latency = first_send.map_or(Duration::ZERO, |s| end.duration_since(s));
        ChainRun { record, calls, end }
    }

    /// Sleeps before a backoff retry, or says why the call must fail now instead: the server
    /// asked for longer than `--max-retry-wait`, or Ctrl-C ended the wait (at once, however
    /// long the wait was meant to be).
    async fn wait_before_retry(
        &self,
        try_no: u16,
        retry_after: Option<Duration>,
    ) -> Result<(), String> {
        if let Some(asked) = retry_after.filter(|a| *a > self.retry.max_retry_wait) {
            return Err(format!(
                "the server asked to wait {} before retrying, over --max-retry-wait {}",
                humantime::format_duration(asked),
                humantime::format_duration(self.retry.max_retry_wait)
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(self.backoff(try_no, retry_after)) => Ok(()),
            () = stopped(self.stop.clone()) => Err("backoff wait ended by Ctrl-C".to_string()),
        }
    }

    /// Exponential backoff with full jitter (AWS's "full jitter"); a server's Retry-After is a
    /// floor under it.
    fn backoff(&self, try_no: u16, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .retry
            .backoff_base
            .saturating_mul(1u32 << try_no.min(16))
            .min(self.retry.backoff_cap);
        let jitter = ceiling.mul_f64(rand::rng().random_range(0.0..=1.0));
        // Waiting exactly Retry-After would send every refused call back at the same instant;
        // the jitter on top spreads them over the refill.
        retry_after.unwrap_or_default() + jitter
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

type Joined = (tokio::task::Id, ChainRun);

/// Maps a finished task back to its row; a panic becomes that row's failure.
fn joined(
    task_rows: &HashMap<tokio::task::Id, usize>,
    done: Result<Joined, tokio::task::JoinError>,
) -> (usize, Result<ChainRun, String>) {
    match done {
        Ok((id, run)) => (task_rows[&id], Ok(run)),
        Err(e) => (task_rows[&e.id()], Err(format!("chain task panicked: {e}"))),
    }
}

fn panicked(idx: usize, message: String) -> ChainRun {
    ChainRun {
        record: ChainRecord {
            row: idx as u32,
            passes: 1,
            latency: Duration::ZERO,
            outputs: Vec::new(),
            step_latencies: Vec::new(),
            failure: Some(ChainFailure {
                step: 0,
                kind: ErrorKind::Body,
                status: None,
                message,
            }),
        },
        calls: Vec::new(),
        end: Instant::now(),
    }
}
