//! The serializable outcome of a sweep: one source for every report format.
//!
//! NOTE: adding or renaming a field changes report.json, summary.csv and the golden outputs of
//! report/; bump `SCHEMA_VERSION` when a change is not backwards compatible.

use serde::{Deserialize, Serialize};

use crate::metrics::{DistributionRow, ErrorCounts, LatencySummary, StepLatency};
use crate::record::Pooling;

/// Version of the report.json layout. Readers refuse a newer version.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a sweep produced, as written to report.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Layout version of this document; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `loadchain <version>` that produced it.
    pub tool: String,
    /// When the sweep started, RFC 3339 UTC.
    pub started_utc: String,
    /// Every setting needed to repeat the sweep.
    pub settings: Settings,
    /// One entry per size × limit × pooling, in the order they ran.
    pub runs: Vec<RunSummary>,
    /// Stopped by Ctrl-C: `runs` holds the runs that completed and, marked `partial`, the
    /// one it cut short (when any of its chains finished).
    #[serde(default)]
    pub interrupted: bool,
}

/// The effective settings of a sweep, printed in every report header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `embedded mock` or the target URL.
    pub target: String,
    /// API format: `openai` (chat completions) or `raw`.
    pub api: String,
    /// Model name sent in each request (OpenAI format).
    pub model: String,
    /// Step names of the chain, in order.
    pub steps: Vec<String>,
    /// Batch sizes (number of chains per run).
    pub sizes: Vec<usize>,
    /// Concurrency limits (1 = sequential).
    pub limits: Vec<usize>,
    /// Pooling modes measured.
    pub pooling: Vec<Pooling>,
    /// The limit speedup is measured against (1 when the sweep includes it).
    pub baseline_limit: usize,
    /// Retry-failed passes after the first pass.
    pub retry_passes: u32,
    /// Backoff retries per call after 429/503.
    pub max_retries: u32,
    /// Per-call timeout, in ms.
    pub timeout_ms: u64,
    /// Client-side request-per-minute cap, if any.
    pub rpm: Option<u32>,
    /// Client-side token-per-minute cap, if any.
    pub tpm: Option<u32>,
    /// Whether each run opened its connections with discarded warm-up calls before timing.
    #[serde(default)]
    pub warmup: bool,
    /// Longest Retry-After honoured, ms; a server asking for more failed the call.
    #[serde(default = "default_max_retry_wait_ms")]
    pub max_retry_wait_ms: u64,
    /// Largest response body read per call, bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Whether 3xx answers were followed (credentials to the target's origin only).
    #[serde(default)]
    pub follow_redirects: bool,
    /// The embedded mock's settings, as `key = value` lines of its TOML config (None for a
    /// real target).
    pub mock: Option<String>,
    /// What wall time excludes, in words.
    pub wall_time_excludes: String,
    /// Machine the sweep ran on: OS, architecture and logical CPUs.
    pub machine: String,
    /// The command line that repeats this sweep.
    pub command: String,
}

/// What reports written before these settings existed ran with.
fn default_max_retry_wait_ms() -> u64 {
    60_000
}

fn default_max_response_bytes() -> u64 {
    crate::target::DEFAULT_MAX_RESPONSE_BYTES
}

/// Figures of one run: one batch of `size` chains at one `limit` and `pooling` mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Number of chains (rows) in the batch.
    pub size: usize,
    /// Maximum chains in flight.
    pub limit: usize,
    /// Pooled or fresh connection per call.
    pub pooling: Pooling,
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
    /// Calls in flight over time: `[t_ms, in_flight]` step points, at most ~400.
    pub timeline: Vec<[f64; 2]>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SweepReport {
    /// The run for one cell, if it was measured.
    pub fn run(&self, size: usize, limit: usize, pooling: Pooling) -> Option<&RunSummary> {
        self.runs
            .iter()
            .find(|r| r.size == size && r.limit == limit && r.pooling == pooling)
    }
}
