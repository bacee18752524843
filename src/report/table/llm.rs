//! The LLM serving table of a sweep: ITL, TPOT, per-request token rate, token source and,
//! with `--slo`, SLO attainment and goodput per run. Shown when a run streamed or had an SLO.

use super::{Align, Table};
use crate::metrics::{LatencySummary, RunSummary};
use crate::report::format;
use crate::sweep::SweepReport;

/// Whether a run has any LLM figure worth a row.
fn has_llm(r: &RunSummary) -> bool {
    r.llm.itl.is_some() || r.llm.tpot.is_some() || r.llm.slo.is_some()
}

/// A p50 / p99 cell, or a dash.
fn p50_p99(s: Option<&LatencySummary>) -> String {
    s.map_or("–".to_string(), |s| {
        format!(
            "{} / {}",
            format::latency_us(s.p50_us),
            format::latency_us(s.p99_us)
        )
    })
}

/// The share cell: `97.5 %`.
pub(crate) fn attainment(a: Option<f64>) -> String {
    a.map_or("–".to_string(), |a| format!("{:.1} %", a * 100.0))
}

/// The goodput cell: `42.0/s`.
pub(crate) fn goodput(g: Option<f64>) -> String {
    g.map_or("–".to_string(), |g| format!("{g:.1}/s"))
}

/// One row per run: ITL, TPOT, tokens/s per request, token source, SLO attainment and
/// goodput. None when no run streamed or had an SLO.
pub(crate) fn llm_table(report: &SweepReport) -> Option<Table> {
    if !report.runs.iter().any(has_llm) {
        return None;
    }
    let header = [
        "Size",
        "Limit",
        "Pooling",
        "ITL p50 / p99",
        "TPOT p50 / p99",
        "Tokens/s per request",
        "Tokens from",
        "SLO met",
        "Goodput",
    ];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    t.align[2] = Align::Left;
    t.align[6] = Align::Left;
    for r in &report.runs {
        t.rows.push(vec![
            r.key.size.to_string(),
            r.key.limit.to_string(),
            r.key.pooling.to_string(),
            p50_p99(r.llm.itl.as_ref()),
            p50_p99(r.llm.tpot.as_ref()),
            r.llm
                .request_output_tokens_per_s
                .map_or("–".to_string(), |x| format!("{x:.0}")),
            r.llm.tokens_from.map_or("–", |s| s.as_str()).to_string(),
            attainment(r.llm.slo_attainment),
            goodput(r.llm.goodput),
        ]);
    }
    Some(t)
}

/// The sentence under the table: the definitions, and the SLO when there was one.
pub(crate) fn llm_note(report: &SweepReport) -> String {
    let mut note = String::from(
        "ITL: every gap between consecutive content chunks. TPOT: (call latency − TTFT) / \
         (output tokens − 1) per request. Tokens from: the server's usage, or content chunks \
         counted.",
    );
    if let Some(slo) = report.runs.iter().find_map(|r| r.llm.slo.as_deref()) {
        note.push_str(&format!(
            " SLO met: share of calls meeting every objective of `{slo}` (failed calls miss \
             it); goodput: those calls per second of wall time."
        ));
    }
    note
}
