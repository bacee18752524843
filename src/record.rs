//! Raw per-call and per-chain records: what the runner observed, before any aggregation.
//!
//! These are the only facts the runner emits; metrics, sweeps and reports are computed from
//! them. Kept small and `Copy`-friendly so recording 10,000s of calls stays cheap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a batch shares one pooled client or opens a fresh connection for every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// One shared client for the whole batch; connections are kept alive and reused.
    On,
    /// No idle connections are kept: every call pays connection set-up again.
    Off,
}

impl Pooling {
    /// The word used in tables, CSV and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::On => "on",
            Pooling::Off => "off",
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which cell of a sweep (or which `run`) a set of figures belongs to. Flattened into every
/// per-run type, so JSON and CSV keep their `size`, `limit`, `pooling` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunKey {
    /// Chains in the batch.
    pub size: usize,
    /// Chains in flight at most.
    pub limit: usize,
    /// Pooled or not.
    pub pooling: Pooling,
}

impl std::fmt::Display for RunKey {
    /// `n=100 c=10 pool=on`, as progress lines, checks and messages name a run.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n={} c={} pool={}", self.size, self.limit, self.pooling)
    }
}

/// Every call of one run, for calls.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCalls {
    /// The run.
    pub key: RunKey,
    /// Its calls, every pass and retry included, in completion order.
    pub calls: Vec<CallRecord>,
}

/// Milliseconds with microsecond resolution, as every `*_ms` field holds them.
pub fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Why a call failed. A failed call is data, not an error: it is counted and the batch goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// HTTP 429: the provider's rate limit.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// HTTP 4xx other than 429 (bad request, auth, not found).
    ClientError,
    /// No complete response within the per-call timeout.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// The response body was cut short or could not be read.
    Body,
    /// The body arrived but was not the JSON shape the API format expects.
    Decode,
    /// A 3xx answer that was not followed (redirects are off by default, or it left the
    /// origin in a way `--follow-redirects` does not allow).
    Redirect,
    /// The connection opened but what came back was not valid HTTP (garbage bytes, too many
    /// headers, closed mid-headers, an HTTP/2 frame error).
    Protocol,
    /// A fault on this machine, not the server's: out of file descriptors or ports.
    Local,
}

impl ErrorKind {
    /// Every kind, in the order used by tables and CSV columns.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::ClientError,
        ErrorKind::Redirect,
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Protocol,
        ErrorKind::Body,
        ErrorKind::Decode,
        ErrorKind::Local,
    ];

    /// Stable snake_case name, as in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::ClientError => "client_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Body => "body",
            ErrorKind::Decode => "decode",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Local => "local",
        }
    }

    /// Classifies an HTTP status that is not a success.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            429 => ErrorKind::RateLimited,
            300..=399 => ErrorKind::Redirect,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::ClientError,
        }
    }

    /// Whether waiting and sending the same call again can help (429, 503, and Anthropic's
    /// 529 "overloaded", per provider docs).
    pub fn is_backoff_retryable(self, status: Option<u16>) -> bool {
        matches!(self, ErrorKind::RateLimited) || matches!(status, Some(503 | 529))
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP call as observed by the client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Index of the row (chain) in the batch, 0-based.
    pub row: u32,
    /// Step of the chain, 0-based.
    pub step: u16,
    /// Pass over the batch: 0 is the first pass, 1.. are retry-failed passes.
    pub pass: u16,
    /// Try within the pass: 0 is the first send, 1.. are backoff retries after 429/503.
    pub try_no: u16,
    /// When the request was sent, measured from the start of the run.
    pub start: Duration,
    /// From just before the request is sent to the last byte of the body.
    pub latency: Duration,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Why the call failed, or None on success.
    pub error: Option<ErrorKind>,
    /// Response body size in bytes.
    pub bytes: u64,
    /// Completion tokens the API reported (or estimated), when known.
    pub tokens: Option<u32>,
    /// Prompt (input) tokens the API reported, when known: with `tokens`, the call's cost.
    #[serde(default)]
    pub input_tokens: Option<u32>,
    /// Streaming calls only: from the send to the first chunk carrying content (TTFT).
    pub ttft: Option<Duration>,
    /// Why generation stopped (Unknown when the call failed or the API did not say): the
    /// quality section counts truncated answers from it.
    #[serde(default)]
    pub finish: crate::endpoint::Finish,
}

/// The final fate of one row after every pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRecord {
    /// Index of the row in the batch, 0-based.
    pub row: u32,
    /// Passes this row took part in (1 = succeeded or failed on the first pass).
    pub passes: u16,
    /// Chain latency of the last attempt: first send to last byte of the last step.
    pub latency: Duration,
    /// Each completed step's output text, in order (all steps when the chain succeeded).
    pub outputs: Vec<String>,
    /// Each completed step's call latency, in order.
    pub step_latencies: Vec<Duration>,
    /// None when the chain succeeded.
    pub failure: Option<ChainFailure>,
}

impl ChainRecord {
    /// Whether every step of the chain succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The last step's output, the chain's result.
    pub fn final_output(&self) -> Option<&str> {
        if self.ok() {
            self.outputs.last().map(String::as_str)
        } else {
            None
        }
    }
}

/// Where and why a chain stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainFailure {
    /// Step that failed, 0-based.
    pub step: u16,
    /// Kind of the failure.
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Human-readable detail (never contains credentials).
    pub message: String,
}
