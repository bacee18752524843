//! One run's figures as reports show them: a [`RunSummary`] (histograms of call, chain,
//! per-step and TTFT latency, errors by kind, throughput), made by a
//! [`RunRecorder`](super::RunRecorder). Shared by `sweep` (one per cell) and `run`.

use serde::{Deserialize, Serialize};

use super::{DistributionRow, ErrorCounts, LatencySummary, LlmSummary, StepLatency};
use crate::record::RunKey;

/// Figures of one run: one batch of `size` chains at one `limit` and `pooling` mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Which run: size (chains in the batch), limit (chains in flight at most), pooling.
    #[serde(flatten)]
    pub key: RunKey,
    /// First chain start to last chain end, retry passes included, ms.
    pub wall_ms: f64,
    /// Wall time of the retry-failed passes alone, ms (0 when none ran).
    pub retry_wall_ms: f64,
    /// Chains finished successfully per second of wall time.
    pub chains_per_s: f64,
    /// Calls sent per second of wall time (failed calls and retries included).
    pub calls_per_s: f64,
    /// wall(baseline limit) / wall(this limit), same size and pooling; None without a baseline.
    pub speedup: Option<f64>,
    /// speedup / (min(limit, size) / min(baseline, size)); 1.0 is the semaphore's ceiling.
    pub efficiency: Option<f64>,
    /// Chains that succeeded, after every pass.
    pub chains_ok: usize,
    /// Chains still failed after every pass.
    pub chains_failed: usize,
    /// Chains that failed on the first pass and were run again.
    pub chains_retried: usize,
    /// Calls not sent because failed chains resumed at the step that failed (one per
    /// completed step not redone, every resumed attempt counted); 0 with `--restart-chains`.
    #[serde(default)]
    pub calls_saved: u64,
    /// Requests sent again on a fresh connection because the kept connection they went out
    /// on had been closed by the server before any byte of the answer (RFC 9112 §9.3.1);
    /// 0 with `--no-stale-retry` or when nothing went stale.
    #[serde(default)]
    pub stale_retries: u64,
    /// Calls sent, every pass and backoff retry included.
    pub calls: u64,
    /// Calls that failed (each is counted in `errors`).
    pub calls_failed: u64,
    /// Latency of successful calls.
    pub call_latency: LatencySummary,
    /// Latency of successful chains (their last attempt).
    pub chain_latency: LatencySummary,
    /// Failed calls per kind.
    pub errors: ErrorCounts,
    /// Connections the server accepted during the run, warm-up included (known for the
    /// embedded mock only).
    pub connections: Option<u64>,
    /// Rows whose final output differs from the same row in the first run of this size.
    pub outputs_differ: usize,
    /// Latency of successful calls per chain step, in step order: which step dominates.
    #[serde(default)]
    pub step_latency: Vec<StepLatency>,
    /// Streaming runs only: time to first token of successful calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<LatencySummary>,
    /// Completion tokens of successful calls per second of wall time, when the API reports
    /// tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_s: Option<f64>,
    /// Prompt (input) tokens of successful calls per second of wall time, when the API
    /// reports them: with `output_tokens_per_s`, what a tokens-per-minute quota is charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_per_s: Option<f64>,
    /// Percentile distribution of successful call latency (HdrHistogram rows).
    pub call_distribution: Vec<DistributionRow>,
    /// Cut short by Ctrl-C: the chains that finished are counted (and their calls kept), the
    /// rest are `chains_not_run`; its wall time covers only part of the batch, so it gets no
    /// speedup and is no baseline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Chains of a partial run that never started (0 for a complete run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chains_not_run: usize,
    /// An `auto` run: its limit adapted, `limit` is the limit it recommends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// Calls in flight over time: `[t_ms, in_flight]` step points, at most ~400.
    pub timeline: Vec<[f64; 2]>,
    /// What the run cost, when `--price` (or the chain's `price`) was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Cost>,
    /// `sweep --repeat K` with K ≥ 2: each repeat's wall time, the order they ran in, and
    /// the intervals; the figures above then merge every repeat (wall time: the mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<crate::sweep::Repeats>,
    /// Streaming and `--slo` figures: `itl`, `tpot`, `goodput`, `slo_attainment`, ….
    #[serde(flatten)]
    pub llm: LlmSummary,
    /// Wall-clock start and end of the run, Unix ms (end taken when the run finished, start
    /// = end − wall): `merge` spans segments from the earliest start to the latest end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_ms: Option<[f64; 2]>,
    /// Finish reasons, empty outputs, output tokens and similarity to the baseline run;
    /// absent in reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<super::quality::Quality>,
    /// Open-loop runs (`--rates`): offered and achieved rate, latency from the intended
    /// start, service latency, queue wait, late starts.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<crate::runner::OpenLoopStats>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
