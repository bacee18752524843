//! End-of-run files: `summary.json` (the accounting and the speedup against sequential) and
//! `failed.csv` (rows that still failed, for the user to inspect or fix). Both are written
//! atomically, so a crash while writing leaves the previous version, never half a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ManifestError, ResultError, ResultLine, write_atomically};
use crate::metrics::{ErrorCounts, LatencySummary, StepLatency};

/// File name of the run summary inside the output folder.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of the failed-rows table inside the output folder.
pub const FAILED_FILE: &str = "failed.csv";
/// Layout version of summary.json: the one version report.json carries too.
pub use crate::files::SCHEMA_VERSION;

/// summary.json: what happened to every manifest row, and what concurrency bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryFile {
    /// Layout version; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Rows in the manifest; equals `succeeded + failed + skipped + not_run`.
    pub rows_in_manifest: usize,
    /// Rows that succeeded in this session.
    pub succeeded: usize,
    /// Rows that still failed after this session's last pass.
    pub failed: usize,
    /// Rows not run because an earlier session already succeeded on them.
    pub skipped: usize,
    /// Rows never started because Ctrl-C stopped the run; `--resume` runs them.
    #[serde(default)]
    pub not_run: usize,
    /// This session's wall time: first task start to last task end, ms.
    pub wall_ms: f64,
    /// Sum of this session's chain latencies, ms: what running them one after another
    /// would have taken, so no second, sequential run is needed to compare.
    pub sum_chain_ms: f64,
    /// `sum_chain_ms / wall_ms`; null when nothing ran.
    pub speedup: Option<f64>,
    /// Concurrency limit (chains in flight).
    pub limit: usize,
    /// Passes run over the batch (1 + retry-failed passes).
    pub passes: u16,
    /// HTTP calls sent, backoff retries included.
    pub calls: u64,
    /// Calls not sent because failed chains (of a retry pass, or of an earlier session on
    /// `--resume`) resumed at the step that failed: the completed steps they did not redo.
    #[serde(default)]
    pub calls_saved: u64,
    /// Requests sent again on a fresh connection because their kept connection had been
    /// closed by the server before any byte of the answer (RFC 9112 §9.3.1).
    #[serde(default)]
    pub stale_retries: u64,
    /// Failed calls per kind.
    pub errors: ErrorCounts,
    /// Per-call latency.
    pub call_latency: LatencySummary,
    /// Per-chain latency.
    pub chain_latency: LatencySummary,
    /// Per-step call latency, in step order.
    #[serde(default)]
    pub step_latency: Vec<StepLatency>,
    /// `--stream` only: time to first token of successful calls (absent without streaming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<LatencySummary>,
    /// Line number of a torn last line in results.jsonl that resume cut off, if any.
    pub torn_line_ignored: Option<usize>,
    /// Calls in flight over time, `[t_ms, in_flight]` step points (at most ~400), for
    /// timeline.png; empty in files written before it was kept.
    #[serde(default)]
    pub timeline: Vec<[f64; 2]>,
    /// What ran and how, for summary.md; absent in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<RunSettings>,
    /// What the run cost, when a price was given (`--price` or the chain's `price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Cost>,
    /// Finish reasons, empty outputs and output tokens of this session (no baseline, so
    /// no similarity); absent in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::metrics::quality::Quality>,
    /// With `--limit auto`: `recommended_limit`, `limit_trace` and `limit_settled_ms` at the
    /// top level (`limit` is then the recommended limit too).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<crate::runner::AdaptiveOutcome>,
    /// Streaming and `--slo` figures: `itl`, `tpot`, `goodput`, `slo_attainment`, ….
    #[serde(flatten)]
    pub llm: crate::metrics::LlmSummary,
}

/// The effective settings of a `loadchain run` session, so summary.md can say what was
/// measured and be rebuilt from summary.json alone. Holds no header or key (see the module
/// note): the target is its display label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// `loadchain <version>` that ran it.
    pub tool: String,
    /// When the session started, RFC 3339 UTC.
    pub started_utc: String,
    /// The manifest, as given on the command line.
    pub manifest: String,
    /// `embedded mock` or the target URL (credentials redacted).
    pub target: String,
    /// API format: `openai` or `raw`.
    pub api: String,
    /// Model name sent in each request (OpenAI format).
    pub model: String,
    /// Step names of the chain, in order.
    pub steps: Vec<String>,
    /// Whether responses were streamed (and time to first token measured).
    pub stream: bool,
    /// Retry-failed passes after the first pass.
    pub retry_passes: u32,
    /// Whether a failed chain's retry ran from step 1 (`--restart-chains`) instead of
    /// resuming at the step that failed: it changes calls, cost and chain latency.
    #[serde(default)]
    pub restart_chains: bool,
    /// Backoff retries per call after 429/503.
    pub max_retries: u32,
    /// Per-call timeout, ms.
    pub timeout_ms: u64,
    /// Longest Retry-After honoured, ms.
    pub max_retry_wait_ms: u64,
    /// Largest response body read per call, bytes.
    pub max_response_bytes: u64,
    /// Whether 3xx answers were followed.
    pub follow_redirects: bool,
    /// Client-side request-per-minute cap, if any.
    pub rpm: Option<u32>,
    /// Client-side token-per-minute cap, if any.
    pub tpm: Option<u32>,
    /// The embedded mock's settings as TOML lines (None for a real target).
    pub mock: Option<String>,
    /// OS, architecture and logical CPUs of the machine it ran on.
    pub machine: String,
    /// Whether sends were paced by the server's rate-limit headers (`--pace`); false in
    /// files written before pacing existed.
    #[serde(default)]
    pub pace: bool,
    /// The largest quota the server announced in its rate-limit headers, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_quota: Option<crate::endpoint::Announced>,
}

impl RunSummaryFile {
    /// Verifies that every manifest row is accounted for exactly once; the message says how
    /// the counts disagree. A failure here is a bug in the run, not bad input.
    pub fn check_accounting(&self) -> Result<(), String> {
        let total = self.succeeded + self.failed + self.skipped + self.not_run;
        if total == self.rows_in_manifest {
            return Ok(());
        }
        Err(format!(
            "row accounting does not add up: succeeded {} + failed {} + skipped {} + not run {} \
             = {total}, but the manifest has {} rows",
            self.succeeded, self.failed, self.skipped, self.not_run, self.rows_in_manifest
        ))
    }

    /// Rows this session ran (the manifest less the rows skipped as already done): the batch
    /// size of its calls.csv and charts.
    pub fn rows_run(&self) -> usize {
        self.rows_in_manifest.saturating_sub(self.skipped)
    }

    /// Writes `dir/summary.json` atomically and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ManifestError> {
        let path = dir.join(SUMMARY_FILE);
        write_atomically(&path, |w| {
            serde_json::to_writer_pretty(&mut *w, self)?;
            w.write_all(b"\n")
        })?;
        Ok(path)
    }
}

/// Speedup against sequential: the sum of chain times over the wall time; None when nothing
/// ran (wall time zero), since no ratio is meaningful then.
pub fn speedup(sum_chain_ms: f64, wall_ms: f64) -> Option<f64> {
    (wall_ms > 0.0).then(|| sum_chain_ms / wall_ms)
}

/// One row of failed.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRow {
    /// The row's id.
    pub id: String,
    /// Where and why it failed.
    pub error: ResultError,
}

/// Counts this session's appended lines so the summary and failed.csv come from exactly what
/// results.jsonl holds. A row appended more than once (once per pass) counts by its latest line.
/// Rows are keyed by their index in this session (manifest order), so a million rows cost a
/// byte each; only failed rows keep their id and error.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    // Per session row: 0 = no line yet, 1 = latest line ok, 2 = latest line failed.
    latest: Vec<u8>,
    succeeded: usize,
    // Rows whose latest line failed: id and error. Outputs are not kept: they can be large.
    failed: HashMap<usize, FailedRow>,
    sum_chain_ms: f64,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// Counts a line just appended to the log for session row `row`.
    pub fn record(&mut self, row: usize, line: &ResultLine) {
        self.sum_chain_ms += line.chain_latency_ms;
        if self.latest.len() <= row {
            self.latest.resize(row + 1, 0);
        }
        match self.latest[row] {
            1 => self.succeeded -= 1,
            2 => {
                self.failed.remove(&row);
            }
            _ => {}
        }
        match &line.error {
            None => {
                self.latest[row] = 1;
                self.succeeded += 1;
            }
            Some(error) => {
                self.latest[row] = 2;
                let id = line.id.clone();
                let error = error.clone();
                self.failed.insert(row, FailedRow { id, error });
            }
        }
    }

    /// Rows whose latest line is ok.
    pub fn succeeded(&self) -> usize {
        self.succeeded
    }

    /// Rows whose latest line is failed.
    pub fn failed(&self) -> usize {
        self.failed.len()
    }

    /// Sum of the chain latencies of every recorded line, ms (each attempt took real time).
    pub fn sum_chain_ms(&self) -> f64 {
        self.sum_chain_ms
    }

    /// The rows that failed, in session order, which is manifest order.
    pub fn failed_rows(&self) -> Vec<FailedRow> {
        let mut rows: Vec<(&usize, &FailedRow)> = self.failed.iter().collect();
        rows.sort_unstable_by_key(|(row, _)| **row);
        rows.into_iter().map(|(_, f)| f.clone()).collect()
    }
}

/// Writes `dir/failed.csv` (id, step, error_kind, status, message) atomically and returns its
/// path. Written even when empty, so a resumed run replaces the list of an earlier session.
pub fn write_failed_csv(dir: &Path, rows: &[FailedRow]) -> Result<PathBuf, ManifestError> {
    let path = dir.join(FAILED_FILE);
    write_atomically(&path, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(["id", "step", "error_kind", "status", "message"])?;
        for row in rows {
            let status = row.error.status.map(|s| s.to_string()).unwrap_or_default();
            out.write_record([
                row.id.as_str(),
                row.error.step.as_str(),
                row.error.kind.as_str(),
                status.as_str(),
                row.error.message.as_str(),
            ])?;
        }
        out.flush()
    })
    .map(|()| path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorKind;

    fn summary(succeeded: usize, failed: usize, skipped: usize) -> RunSummaryFile {
        RunSummaryFile {
            schema_version: SCHEMA_VERSION,
            rows_in_manifest: 10,
            succeeded,
            failed,
            skipped,
            not_run: 0,
            wall_ms: 1000.0,
            sum_chain_ms: 5000.0,
            speedup: speedup(5000.0, 1000.0),
            limit: 5,
            passes: 2,
            calls: 30,
            calls_saved: 0,
            stale_retries: 0,
            errors: ErrorCounts::default(),
            call_latency: LatencySummary::default(),
            chain_latency: LatencySummary::default(),
            step_latency: Vec::new(),
            ttft: None,
            torn_line_ignored: Some(4),
            timeline: vec![[0.0, 1.0], [2.5, 0.0]],
            settings: None,
            cost: None,
            quality: None,
            adaptive: None,
            llm: Default::default(),
        }
    }

    fn line(id: &str, failed: bool, chain_ms: f64) -> ResultLine {
        ResultLine {
            id: id.into(),
            status: if failed {
                ResultStatus::Failed
            } else {
                ResultStatus::Ok
            },
            steps: Vec::new(),
            attempts: 1,
            chain_latency_ms: chain_ms,
            error: failed.then(|| ResultError {
                step: "write".into(),
                kind: ErrorKind::Timeout,
                status: None,
                message: format!("{id}: timed out, \"quoted\""),
            }),
        }
    }

    use super::super::ResultStatus;

    #[test]
    fn accounting_holds_only_when_every_row_is_counted_once() {
        assert!(summary(5, 2, 3).check_accounting().is_ok());
        let msg = summary(5, 2, 2).check_accounting().unwrap_err();
        assert!(msg.contains("= 9, but the manifest has 10 rows"), "{msg}");
    }

    #[test]
    fn speedup_is_sum_over_wall_and_undefined_without_wall_time() {
        assert_eq!(speedup(5000.0, 1000.0), Some(5.0));
        assert_eq!(speedup(0.0, 0.0), None);
    }

    #[test]
    fn summary_json_round_trips_with_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = summary(5, 2, 3);
        let path = s.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["torn_line_ignored"], 4);
        assert_eq!(serde_json::from_str::<RunSummaryFile>(&text).unwrap(), s);
    }

    #[test]
    fn tally_counts_latest_line_per_row_and_sums_every_attempt() {
        let mut t = Tally::new();
        t.record(0, &line("a", true, 10.0));
        t.record(1, &line("b", true, 20.0));
        t.record(0, &line("a", false, 30.0));
        assert_eq!((t.succeeded(), t.failed()), (1, 1));
        assert_eq!(t.sum_chain_ms(), 60.0);
        t.record(0, &line("a", true, 5.0));
        assert_eq!((t.succeeded(), t.failed()), (0, 2));
    }

    #[test]
    fn failed_csv_lists_failures_in_manifest_order_and_quotes_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tally::new();
        for (row, id, failed) in [(2, "z", true), (0, "x", false), (1, "y", true)] {
            t.record(row, &line(id, failed, 1.0));
        }
        let rows = t.failed_rows();
        let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["y", "z"]);
        let path = write_failed_csv(dir.path(), &rows).unwrap();
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header: Vec<_> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, ["id", "step", "error_kind", "status", "message"]);
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[0], "y");
        assert_eq!(&first[2], "timeout");
        assert_eq!(&first[3], "");
        assert_eq!(&first[4], "y: timed out, \"quoted\"");
    }

    #[test]
    fn empty_failed_csv_still_replaces_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = vec![FailedRow {
            id: "a".into(),
            error: line("a", true, 1.0).error.unwrap(),
        }];
        write_failed_csv(dir.path(), &old).unwrap();
        let path = write_failed_csv(dir.path(), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "id,step,error_kind,status,message\n"
        );
    }
}
