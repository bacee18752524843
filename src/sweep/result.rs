//! The serializable outcome of a sweep: one source for every report format.
//!
//! NOTE: adding or renaming a field changes report.json, summary.csv and the golden outputs of
//! report/; bump `SCHEMA_VERSION` when a change is not backwards compatible.

use serde::{Deserialize, Serialize};

use crate::metrics::RunSummary;
use crate::record::Pooling;

/// Layout version of report.json: the one version summary.json carries too. Readers refuse
/// a newer version.
pub use crate::files::SCHEMA_VERSION;

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
    /// With `--limits auto`: `recommended_limit`, `limit_trace` and `limit_settled_ms` of the
    /// last auto run, at the top level.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<crate::runner::AdaptiveOutcome>,
    /// Open-loop sweeps: the highest offered rate with achieved ≥ 95 % of offered and p99
    /// from the intended start ≤ 2 × the lowest rate's p99 (first pooling mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sustainable_rate: Option<f64>,
    /// Unpooled against pooled call latency per size and limit measured both ways, with the
    /// test used (paired by (row, step) where calls pair up); see [`super::PoolingTest`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pooling: Vec<super::PoolingTest>,
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
    /// Whether a failed chain's retry ran from step 1 (`--restart-chains`) instead of
    /// resuming at the step that failed: it changes calls, cost and chain latency.
    #[serde(default)]
    pub restart_chains: bool,
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
    /// Whether sends were paced by the server's rate-limit headers (`--pace`); false in
    /// files written before pacing existed.
    #[serde(default)]
    pub pace: bool,
    /// The largest quota the server announced in its rate-limit headers, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_quota: Option<crate::endpoint::Announced>,
    /// What wall time excludes, in words.
    pub wall_time_excludes: String,
    /// Machine the sweep ran on: OS, architecture and logical CPUs.
    pub machine: String,
    /// The command line that repeats this sweep.
    pub command: String,
    /// Runs of every cell (`--repeat`); 1 in reports written before repeats existed.
    #[serde(default = "one")]
    pub repeat: usize,
}

fn one() -> usize {
    1
}

impl Settings {
    /// Whether the sweep ran the user's program (`--exec`): no connections, no pool.
    pub fn is_exec(&self) -> bool {
        self.api == "exec"
    }
}

/// What reports written before these settings existed ran with.
fn default_max_retry_wait_ms() -> u64 {
    60_000
}

fn default_max_response_bytes() -> u64 {
    crate::endpoint::DEFAULT_MAX_RESPONSE_BYTES
}

impl SweepReport {
    /// The run for one cell, if it was measured.
    pub fn run(&self, size: usize, limit: usize, pooling: Pooling) -> Option<&RunSummary> {
        self.runs
            .iter()
            .find(|r| r.key.size == size && r.key.limit == limit && r.key.pooling == pooling)
    }
}
