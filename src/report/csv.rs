//! summary.csv (one row per run, every metric flattened) and calls.csv (one row per call), for
//! notebooks and spreadsheets.
//!
//! Times are milliseconds with microsecond precision; the unit is in every column name. A value
//! that does not apply (TTFT without streaming, speedup without a baseline) is an empty cell.
//! NOTE: a new field of `RunSummary` needs a column in [`SummaryRow`] too.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::metrics::LatencySummary;
use crate::record::{CallRecord, ErrorKind, RunCalls, RunKey};
use crate::sweep::RunSummary;

/// One row of summary.csv: a [`RunSummary`] without nesting, as spreadsheets want it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Batch size (chains).
    pub size: usize,
    /// Concurrency limit.
    pub limit: usize,
    /// `on` or `off`.
    pub pooling: String,
    /// Wall time of the batch, retry passes included.
    pub wall_ms: f64,
    /// Wall time of the retry passes alone.
    pub retry_wall_ms: f64,
    /// Successful chains per second of wall time.
    pub chains_per_s: f64,
    /// Calls sent per second of wall time.
    pub calls_per_s: f64,
    /// Against the baseline limit; empty without one.
    pub speedup: Option<f64>,
    /// Speedup over its ideal; 1.0 is the ceiling.
    pub efficiency: Option<f64>,
    /// Chains that succeeded.
    pub chains_ok: usize,
    /// Chains still failed after every pass.
    pub chains_failed: usize,
    /// Chains run again by a retry pass.
    pub chains_retried: usize,
    /// Calls sent, retries included.
    pub calls: u64,
    /// Calls that failed.
    pub calls_failed: u64,
    /// Successful calls measured.
    pub call_count: u64,
    /// Fastest successful call.
    pub call_min_ms: f64,
    /// Median call latency.
    pub call_p50_ms: f64,
    /// 90th percentile call latency.
    pub call_p90_ms: f64,
    /// 99th percentile call latency.
    pub call_p99_ms: f64,
    /// Slowest successful call.
    pub call_max_ms: f64,
    /// Mean call latency.
    pub call_mean_ms: f64,
    /// Successful chains measured.
    pub chain_count: u64,
    /// Fastest chain.
    pub chain_min_ms: f64,
    /// Median chain latency.
    pub chain_p50_ms: f64,
    /// 90th percentile chain latency.
    pub chain_p90_ms: f64,
    /// 99th percentile chain latency.
    pub chain_p99_ms: f64,
    /// Slowest chain.
    pub chain_max_ms: f64,
    /// Mean chain latency.
    pub chain_mean_ms: f64,
    /// HTTP 429 answers.
    pub errors_rate_limited: u64,
    /// HTTP 5xx answers.
    pub errors_server_error: u64,
    /// HTTP 4xx answers other than 429.
    pub errors_client_error: u64,
    /// Calls that timed out.
    pub errors_timeout: u64,
    /// Connections that failed.
    pub errors_connect: u64,
    /// Bodies cut short.
    pub errors_body: u64,
    /// Bodies that were not the expected JSON.
    pub errors_decode: u64,
    /// 3xx answers not followed.
    #[serde(default)]
    pub errors_redirect: u64,
    /// Responses that were not valid HTTP.
    #[serde(default)]
    pub errors_protocol: u64,
    /// Faults on this machine (out of file descriptors).
    #[serde(default)]
    pub errors_local: u64,
    /// Connections the server accepted; empty when unknown.
    pub connections: Option<u64>,
    /// Rows whose output differs from the first run of this size.
    pub outputs_differ: usize,
    /// Streaming only: median time to first token.
    pub ttft_p50_ms: Option<f64>,
    /// Streaming only: 90th percentile time to first token.
    pub ttft_p90_ms: Option<f64>,
    /// Streaming only: 99th percentile time to first token.
    pub ttft_p99_ms: Option<f64>,
    /// Completion tokens per second of wall time, when the API reports tokens.
    pub output_tokens_per_s: Option<f64>,
    /// With a price: what the run cost (every call, retries included).
    pub cost_total: Option<f64>,
    /// With a price: cost per chain that ran.
    pub cost_per_chain: Option<f64>,
    /// With a price: the part spent on retries.
    pub cost_retries: Option<f64>,
    /// With a price: the part paid twice (steps a retry pass ran again).
    pub cost_redone: Option<f64>,
    /// Streaming only: median inter-token latency.
    #[serde(default)]
    pub itl_p50_ms: Option<f64>,
    /// Streaming only: 99th percentile inter-token latency.
    #[serde(default)]
    pub itl_p99_ms: Option<f64>,
    /// Streaming only: median time per output token.
    #[serde(default)]
    pub tpot_p50_ms: Option<f64>,
    /// Streaming only: 99th percentile time per output token.
    #[serde(default)]
    pub tpot_p99_ms: Option<f64>,
    /// Streaming only: `usage`, `chunks` or `mixed`.
    #[serde(default)]
    pub tokens_from: Option<String>,
    /// `--slo` only: share of calls meeting every objective.
    #[serde(default)]
    pub slo_attainment: Option<f64>,
    /// `--slo` only: calls meeting every objective per second.
    #[serde(default)]
    pub goodput: Option<f64>,
    /// Calls not sent because failed chains resumed at the step that failed.
    #[serde(default)]
    pub calls_saved: u64,
    /// Successful calls that ended by themselves (`stop`, `end_turn`).
    #[serde(default)]
    pub quality_stop: u64,
    /// Successful calls cut by max_tokens (truncated).
    #[serde(default)]
    pub quality_length: u64,
    /// Successful calls that stopped for another reason.
    #[serde(default)]
    pub quality_other: u64,
    /// Successful calls whose stop reason the API did not give.
    #[serde(default)]
    pub quality_unknown: u64,
    /// Successful rows whose final output is blank.
    #[serde(default)]
    pub quality_empty: usize,
    /// Median output tokens per successful call.
    #[serde(default)]
    pub quality_output_tokens_p50: Option<u64>,
    /// 99th percentile output tokens per successful call.
    #[serde(default)]
    pub quality_output_tokens_p99: Option<u64>,
    /// Rows that succeeded here and in the baseline run; empty for the baseline.
    #[serde(default)]
    pub quality_compared: Option<usize>,
    /// Of those, rows whose final output equals the baseline's.
    #[serde(default)]
    pub quality_exact_matches: Option<usize>,
    /// Token-set Jaccard to the baseline (first 4,096 rows), 10th percentile.
    #[serde(default)]
    pub quality_similarity_p10: Option<f64>,
    /// Token-set Jaccard to the baseline (first 4,096 rows), median.
    #[serde(default)]
    pub quality_similarity_p50: Option<f64>,
}

/// One row of calls.csv: a [`crate::record::CallRecord`] with the run it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRow {
    /// Batch size of the run.
    pub size: usize,
    /// Concurrency limit of the run.
    pub limit: usize,
    /// `on` or `off`.
    pub pooling: String,
    /// Row (chain) index, 0-based.
    pub row: u32,
    /// Step of the chain, 0-based.
    pub step: u16,
    /// 0 = first pass, 1.. = retry passes.
    pub pass: u16,
    #[serde(rename = "try")]
    /// 0 = first send, 1.. = backoff retries after 429/503.
    pub try_no: u16,
    /// When the call was sent, from the run's start.
    pub start_offset_ms: f64,
    /// Send to last byte of the body.
    pub latency_ms: f64,
    /// HTTP status; empty when no response arrived.
    pub status: Option<u16>,
    /// Why the call failed (`rate_limited`, `timeout`, …); empty on success.
    pub error_kind: Option<String>,
    /// Response body size.
    pub bytes: u64,
    /// Completion tokens, when known.
    pub tokens: Option<u32>,
    /// Streaming only: send to the first chunk with content.
    pub ttft_ms: Option<f64>,
    /// Prompt (input) tokens, when the API reported them: with `tokens`, the call's cost.
    #[serde(default)]
    pub input_tokens: Option<u32>,
    /// Why generation stopped (`stop`, `length` = truncated, `other`, `unknown`); empty for a
    /// failed call.
    #[serde(default)]
    pub finish: Option<String>,
}

/// Milliseconds rounded to whole microseconds, so CSV cells do not carry float noise.
fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Rounds a ratio to 4 decimals for the same reason as [`ms`].
fn ratio(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl SummaryRow {
    /// Flattens one run.
    pub fn from_run(r: &RunSummary) -> SummaryRow {
        let lat = |l: &LatencySummary| {
            (
                l.count,
                us_to_ms(l.min_us),
                us_to_ms(l.p50_us),
                us_to_ms(l.p90_us),
                us_to_ms(l.p99_us),
                us_to_ms(l.max_us),
                ms(l.mean_us / 1000.0),
            )
        };
        let c = lat(&r.call_latency);
        let h = lat(&r.chain_latency);
        let e = |k| r.errors.get(k);
        SummaryRow {
            size: r.key.size,
            limit: r.key.limit,
            pooling: r.key.pooling.to_string(),
            wall_ms: ms(r.wall_ms),
            retry_wall_ms: ms(r.retry_wall_ms),
            chains_per_s: ratio(r.chains_per_s),
            calls_per_s: ratio(r.calls_per_s),
            speedup: r.speedup.map(ratio),
            efficiency: r.efficiency.map(ratio),
            chains_ok: r.chains_ok,
            chains_failed: r.chains_failed,
            chains_retried: r.chains_retried,
            calls: r.calls,
            calls_failed: r.calls_failed,
            call_count: c.0,
            call_min_ms: c.1,
            call_p50_ms: c.2,
            call_p90_ms: c.3,
            call_p99_ms: c.4,
            call_max_ms: c.5,
            call_mean_ms: c.6,
            chain_count: h.0,
            chain_min_ms: h.1,
            chain_p50_ms: h.2,
            chain_p90_ms: h.3,
            chain_p99_ms: h.4,
            chain_max_ms: h.5,
            chain_mean_ms: h.6,
            errors_rate_limited: e(ErrorKind::RateLimited),
            errors_server_error: e(ErrorKind::ServerError),
            errors_client_error: e(ErrorKind::ClientError),
            errors_timeout: e(ErrorKind::Timeout),
            errors_connect: e(ErrorKind::Connect),
            errors_body: e(ErrorKind::Body),
            errors_decode: e(ErrorKind::Decode),
            errors_redirect: e(ErrorKind::Redirect),
            errors_protocol: e(ErrorKind::Protocol),
            errors_local: e(ErrorKind::Local),
            connections: r.connections,
            outputs_differ: r.outputs_differ,
            ttft_p50_ms: r.ttft.as_ref().map(|t| us_to_ms(t.p50_us)),
            ttft_p90_ms: r.ttft.as_ref().map(|t| us_to_ms(t.p90_us)),
            ttft_p99_ms: r.ttft.as_ref().map(|t| us_to_ms(t.p99_us)),
            output_tokens_per_s: r.output_tokens_per_s.map(ratio),
            cost_total: r.cost.as_ref().map(|c| c.total),
            cost_per_chain: r.cost.as_ref().and_then(|c| c.per_chain),
            cost_retries: r.cost.as_ref().map(|c| c.retries),
            cost_redone: r.cost.as_ref().map(|c| c.redone),
            itl_p50_ms: r.llm.itl.as_ref().map(|t| us_to_ms(t.p50_us)),
            itl_p99_ms: r.llm.itl.as_ref().map(|t| us_to_ms(t.p99_us)),
            tpot_p50_ms: r.llm.tpot.as_ref().map(|t| us_to_ms(t.p50_us)),
            tpot_p99_ms: r.llm.tpot.as_ref().map(|t| us_to_ms(t.p99_us)),
            tokens_from: r.llm.tokens_from.map(|s| s.as_str().to_string()),
            slo_attainment: r.llm.slo_attainment.map(ratio),
            goodput: r.llm.goodput.map(ratio),
            calls_saved: r.calls_saved,
            ..quality_columns(r.quality.as_ref())
        }
    }
}

/// The quality columns of a run (all empty or 0 in reports written before it was kept).
fn quality_columns(q: Option<&crate::metrics::quality::Quality>) -> SummaryRow {
    let Some(q) = q else {
        return SummaryRow::default();
    };
    let sim = q.similarity.as_ref();
    SummaryRow {
        quality_stop: q.finish.stop,
        quality_length: q.finish.length,
        quality_other: q.finish.other,
        quality_unknown: q.finish.unknown,
        quality_empty: q.empty,
        quality_output_tokens_p50: q.output_tokens.map(|t| t.p50),
        quality_output_tokens_p99: q.output_tokens.map(|t| t.p99),
        quality_compared: q.compared,
        quality_exact_matches: q.exact_matches,
        quality_similarity_p10: sim.map(|s| s.p10),
        quality_similarity_p50: sim.map(|s| s.p50),
        ..SummaryRow::default()
    }
}

/// Writes summary.csv: a header, then one row per run in the order they ran.
pub fn write_summary<W: Write>(runs: &[RunSummary], w: W) -> Result<(), ::csv::Error> {
    let mut out = ::csv::Writer::from_writer(w);
    if runs.is_empty() {
        // serde writes the header with the first record; an empty sweep still gets one.
        out.write_record(&header::<SummaryRow>()?)?;
    }
    for r in runs {
        out.serialize(SummaryRow::from_run(r))?;
    }
    out.flush()?;
    Ok(())
}

/// Writes calls.csv: a header, then one row per call of every run.
pub fn write_calls<W: Write>(runs: &[RunCalls], w: W) -> Result<(), ::csv::Error> {
    let runs: Vec<(RunKey, &[CallRecord])> =
        runs.iter().map(|r| (r.key, r.calls.as_slice())).collect();
    write_call_rows(&runs, w)
}

/// Writes calls.csv from each run's key and its calls: `sweep` has one entry per cell, `run`
/// one for the whole session (size = rows run).
pub fn write_call_rows<W: Write>(
    runs: &[(RunKey, &[CallRecord])],
    w: W,
) -> Result<(), ::csv::Error> {
    let mut out = ::csv::Writer::from_writer(w);
    if runs.iter().all(|(_, calls)| calls.is_empty()) {
        out.write_record(&header::<CallRow>()?)?;
    }
    for (key, calls) in runs {
        for c in *calls {
            out.serialize(super::calls::row(*key, c))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Column names of a row type, taken from serde by writing a default row: serde only emits
/// the header along with a record, and an empty file should still say what it would hold.
pub(super) fn header<T: Serialize + Default>() -> Result<::csv::StringRecord, ::csv::Error> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.serialize(T::default())?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    let mut r = ::csv::Reader::from_reader(bytes.as_slice());
    Ok(r.headers()?.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::fixture;

    #[test]
    fn ttft_percentiles_sit_together_and_are_empty_without_streaming() {
        let mut report = fixture();
        report.runs[0].ttft = Some(LatencySummary {
            count: 3,
            min_us: 900,
            mean_us: 2000.0,
            p50_us: 1_000,
            p90_us: 2_500,
            p99_us: 4_000,
            max_us: 4_000,
            hdr: None,
        });
        report.runs[1].ttft = None;
        let mut bytes = Vec::new();
        write_summary(&report.runs[..2], &mut bytes).unwrap();
        let mut r = ::csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let at = header.iter().position(|h| h == "ttft_p50_ms").unwrap();
        assert_eq!(
            header[at..at + 3],
            ["ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms"]
        );
        let rows: Vec<::csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(
            (&rows[0][at], &rows[0][at + 1], &rows[0][at + 2]),
            ("1.0", "2.5", "4.0")
        );
        assert_eq!(
            (&rows[1][at], &rows[1][at + 1], &rows[1][at + 2]),
            ("", "", "")
        );
    }
}
