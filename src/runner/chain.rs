//! One chain of one row: its steps in order, each step's output feeding the next; backoff
//! retries of a call after 429/503 (full jitter, Retry-After as the floor, bounded by
//! `--max-retry-wait`, cut short by the stop signal).

use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::{Observer, Resumed, Runner, estimate_tokens, stopped};
use crate::chain::Row;
use crate::record::{CallRecord, ChainFailure, ChainRecord, ErrorKind};

/// What one chain task hands back: its record and when its last call ended (its calls went
/// to the observer as they finished).
pub(super) struct ChainRun {
    pub(super) record: ChainRecord,
    pub(super) end: Instant,
}

impl Runner {
    /// One chain: its steps in order, each step's output feeding the next. A `start` (a
    /// chain resumed at the step that failed) supplies the completed steps' outputs and
    /// latencies: the record begins with them, so it stays complete, and the chain runs from
    /// the first step it lacks. Its `latency` then counts only this attempt's calls.
    pub(super) async fn run_chain(
        &self,
        row: &Row,
        idx: usize,
        pass: u16,
        t0: Instant,
        start: Option<Resumed>,
        observer: &dyn Observer,
    ) -> ChainRun {
        let steps = self.chain.steps.len();
        let start = start.unwrap_or_default();
        let mut record = ChainRecord {
            row: idx as u32,
            passes: 1,
            latency: Duration::ZERO,
            outputs: start.outputs,
            step_latencies: start.step_latencies,
            failure: None,
        };
        record
            .outputs
            .reserve(steps.saturating_sub(record.outputs.len()));
        record
            .step_latencies
            .reserve(steps.saturating_sub(record.step_latencies.len()));
        let skip = record.outputs.len();
        let mut trail = Trail {
            first_send: None,
            end: None,
        };
        for (k, step) in self.chain.steps.iter().enumerate().skip(skip) {
            let previous = record.outputs.last().map(String::as_str);
            let at = StepAt {
                row: idx as u32,
                step: k as u16,
                pass,
                t0,
            };
            // Bytes: a backoff retry resends the same body without copying it.
            let body = bytes::Bytes::from(self.target.body(step, row, previous));
            let tokens = estimate_tokens(body.len(), step.max_tokens);
            match self
                .run_step(at, row, body, tokens, observer, &mut trail)
                .await
            {
                Ok((output, latency)) => {
                    record.outputs.push(output);
                    record.step_latencies.push(latency);
                }
                Err(failure) => {
                    record.failure = Some(failure);
                    break;
                }
            }
        }
        // A chain that sent nothing ends now (one clock read saved on every other chain).
        let end = trail.end.unwrap_or_else(Instant::now);
        record.latency = trail
            .first_send
            .map_or(Duration::ZERO, |s| end.duration_since(s));
        ChainRun { record, end }
    }

    /// One step's call, with backoff retries after 429/503: the output and latency of the
    /// call that succeeded, or why the step failed.
    async fn run_step(
        &self,
        at: StepAt,
        row: &Row,
        body: bytes::Bytes,
        tokens: u32,
        observer: &dyn Observer,
        trail: &mut Trail,
    ) -> Result<(String, Duration), ChainFailure> {
        let mut try_no = 0u16;
        loop {
            // The adaptive limit counts a call from before any pacing wait: when the quota
            // binds and the pacer holds sends back, that wait is the latency it must see.
            let asked = self.adaptive.as_ref().map(|_| Instant::now());
            if let Some(limiter) = &self.limiter {
                limiter.acquire(tokens).await;
            }
            // Header-aware pacing (`--pace`): a stop ends its wait like a backoff's; a send
            // the pacer lets go at once is never cut (biased: polled first).
            let ticket = tokio::select! {
                biased;
                ticket = self.client.pace(tokens) => ticket,
                () = stopped(self.stop.clone()) => return Err(ChainFailure {
                    step: at.step,
                    kind: ErrorKind::RateLimited,
                    status: None,
                    message: "waiting for the server's rate limit; the wait ended by Ctrl-C".into(),
                }),
            };
            let out = match self.target.exec() {
                // Boxed: the --exec future (≈13 KB) would otherwise size every chain task,
                // HTTP or not, and 10,000 chains in flight would hold ≈130 MB for it.
                Some(exec) => Box::pin(exec.call(row)).await,
                None => {
                    self.client
                        .call_paced(&self.target, body.clone(), ticket)
                        .await
                }
            };
            trail.first_send.get_or_insert(out.started);
            let end = out.started + out.latency;
            trail.end = Some(end);
            let call = CallRecord {
                row: at.row,
                step: at.step,
                pass: at.pass,
                try_no,
                start: out.started.duration_since(at.t0),
                latency: out.latency,
                status: out.status,
                error: out.error,
                bytes: out.bytes,
                tokens: out.tokens,
                input_tokens: out.input_tokens,
                ttft: out.ttft,
                finish: out.finish,
            };
            if let (None, Some(stream)) = (out.error, &out.stream) {
                observer.stream_done(&call, stream);
            }
            observer.call_done(&call);
            if let Some(a) = &self.adaptive {
                a.on_call(
                    asked.unwrap_or(out.started),
                    end,
                    out.status == Some(429),
                    out.error.is_none(),
                );
            }
            let Some(kind) = out.error else {
                return Ok((out.output.unwrap_or_default(), out.latency));
            };
            let mut message = out.message;
            if kind.is_backoff_retryable(out.status) && u32::from(try_no) < self.retry.max_retries {
                match self.wait_before_retry(try_no, out.retry_after).await {
                    Ok(()) => {
                        try_no += 1;
                        continue;
                    }
                    Err(why) => message = format!("{message}; {why}"),
                }
            }
            return Err(ChainFailure {
                step: at.step,
                kind,
                status: out.status,
                message,
            });
        }
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

/// Where a call belongs: its row, step and pass, and the run's start for its offset.
#[derive(Debug, Clone, Copy)]
struct StepAt {
    row: u32,
    step: u16,
    pass: u16,
    t0: Instant,
}

/// When a chain's first call was sent and its last one ended.
struct Trail {
    first_send: Option<Instant>,
    end: Option<Instant>,
}

/// The record of a row whose task panicked: a failure like any other, the batch goes on.
pub(super) fn panicked(idx: usize, message: String) -> ChainRun {
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
        end: Instant::now(),
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
