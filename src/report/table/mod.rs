//! The tables every human-readable report shows, built once as plain cells and rendered either
//! as Markdown (summary.md) or with comfy-table (terminal), so the two never disagree.
//!
//! This module decides what a table contains; [`super::format`] decides how a number reads.

use std::collections::BTreeSet;

use comfy_table::{CellAlignment, ContentArrangement, presets};

use super::format;
use crate::metrics::ErrorCounts;
use crate::record::{ErrorKind, Pooling};
use crate::sweep::{RunSummary, Settings, SweepReport};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table as plain text cells, independent of where it is shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first column is left-aligned and whose other columns hold numbers.
    pub(crate) fn numeric(header: Vec<String>) -> Table {
        let align = (0..header.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Table {
            header,
            align,
            rows: Vec::new(),
        }
    }

    /// GitHub-flavoured Markdown, with `|` in cells escaped.
    pub fn to_markdown(&self) -> String {
        let row = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = row(&self.header);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => ":---",
                Align::Right => "---:",
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out
    }

    /// A boxed terminal table. Width is fixed by the content (not the terminal), so output
    /// piped to a file or compared in a test is the same everywhere.
    pub fn to_terminal(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty()
            .set_header(self.header.clone());
        for r in &self.rows {
            t.add_row(r.clone());
        }
        for (i, a) in self.align.iter().enumerate() {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(match a {
                    Align::Left => CellAlignment::Left,
                    Align::Right => CellAlignment::Right,
                });
            }
        }
        t.to_string()
    }
}

/// Batch sizes measured, ascending.
pub(crate) fn sizes(report: &SweepReport) -> Vec<usize> {
    let set: BTreeSet<usize> = report.runs.iter().map(|r| r.key.size).collect();
    set.into_iter().collect()
}

/// Limits measured, ascending.
pub(crate) fn limits(report: &SweepReport) -> Vec<usize> {
    let set: BTreeSet<usize> = report.runs.iter().map(|r| r.key.limit).collect();
    set.into_iter().collect()
}

/// Pooling modes measured, `on` first.
pub(crate) fn poolings(report: &SweepReport) -> Vec<Pooling> {
    let set: BTreeSet<Pooling> = report.runs.iter().map(|r| r.key.pooling).collect();
    set.into_iter().collect()
}

/// The mode single-mode charts show: pooled when measured, else the only one.
pub(crate) fn main_pooling(report: &SweepReport) -> Pooling {
    poolings(report).first().copied().unwrap_or(Pooling::On)
}

/// One course-table cell: wall time, then the speedup against the baseline limit.
pub(crate) fn course_cell(run: &RunSummary, baseline_limit: usize) -> String {
    let mut cell = format::duration_ms(run.wall_ms);
    if let Some(s) = run.speedup.filter(|_| run.key.limit != baseline_limit) {
        cell.push_str(&format!(" ({})", format::speedup(s)));
    }
    if run.chains_failed > 0 {
        cell.push_str(&format!(" [{} failed]", run.chains_failed));
    }
    if run.partial {
        cell.push_str(&format!(" [partial: {} not run]", run.chains_not_run));
    }
    cell
}

/// The course's table for one pooling mode: rows are batch sizes, columns are limits.
pub(crate) fn course_table(report: &SweepReport, pooling: Pooling) -> Table {
    let limits = limits(report);
    let mut header = vec!["Batch size".to_string()];
    header.extend(limits.iter().map(|l| format::limit_header(*l)));
    let mut t = Table::numeric(header);
    for size in sizes(report) {
        let mut row = vec![format!("{size} chains")];
        for &limit in &limits {
            row.push(report.run(size, limit, pooling).map_or_else(
                || "–".to_string(),
                |r| course_cell(r, report.settings.baseline_limit),
            ));
        }
        t.rows.push(row);
    }
    t
}

/// Pooled against unpooled call latency per limit, at the largest size measured in both
/// modes; None when only one mode was measured.
pub(crate) fn pooling_table(report: &SweepReport) -> Option<(usize, Table)> {
    let size = sizes(report).into_iter().rev().find(|&s| {
        report
            .runs
            .iter()
            .any(|r| r.key.size == s && r.key.pooling == Pooling::On)
            && report
                .runs
                .iter()
                .any(|r| r.key.size == s && r.key.pooling == Pooling::Off)
    })?;
    let header = [
        "Limit",
        "p50 pooled",
        "p50 unpooled",
        "Δ p50",
        "p99 pooled",
        "p99 unpooled",
        "Δ p99",
        "conns pooled",
        "conns unpooled",
    ];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    for limit in limits(report) {
        let (Some(on), Some(off)) = (
            report.run(size, limit, Pooling::On),
            report.run(size, limit, Pooling::Off),
        ) else {
            continue;
        };
        let (a, b) = (&on.call_latency, &off.call_latency);
        t.rows.push(vec![
            format::limit_header(limit),
            format::latency_us(a.p50_us),
            format::latency_us(b.p50_us),
            format::delta_ms((b.p50_us as f64 - a.p50_us as f64) / 1000.0),
            format::latency_us(a.p99_us),
            format::latency_us(b.p99_us),
            format::delta_ms((b.p99_us as f64 - a.p99_us as f64) / 1000.0),
            format::opt_count(on.connections),
            format::opt_count(off.connections),
        ]);
    }
    Some((size, t))
}

/// Every figure of every run, one row per run, in the order they ran.
pub(crate) fn detail_table(report: &SweepReport) -> Table {
    let header = [
        "Size",
        "Limit",
        "Pooling",
        "Wall",
        "Speedup",
        "Eff.",
        "OK",
        "Failed",
        "Retried",
        "Calls",
        "Calls failed",
        "Call p50",
        "Call p90",
        "Call p99",
        "Call max",
        "Chain p50",
        "Chain p99",
        "Chains/s",
        "Conns",
        "Differ",
    ];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    t.align[2] = Align::Left;
    for r in &report.runs {
        let c = &r.call_latency;
        t.rows.push(vec![
            r.key.size.to_string(),
            r.key.limit.to_string(),
            r.key.pooling.to_string(),
            format::duration_ms(r.wall_ms),
            r.speedup.map_or("–".to_string(), format::speedup),
            r.efficiency.map_or("–".to_string(), format::percent),
            r.chains_ok.to_string(),
            r.chains_failed.to_string(),
            r.chains_retried.to_string(),
            r.calls.to_string(),
            r.calls_failed.to_string(),
            format::latency_us(c.p50_us),
            format::latency_us(c.p90_us),
            format::latency_us(c.p99_us),
            format::latency_us(c.max_us),
            format::latency_us(r.chain_latency.p50_us),
            format::latency_us(r.chain_latency.p99_us),
            format!("{:.1}", r.chains_per_s),
            format::opt_count(r.connections),
            r.outputs_differ.to_string(),
        ]);
    }
    t
}

/// Per-step call latency (p50 / p99) for every run of the largest batch; None for one-step
/// chains, where it would repeat the call latency.
pub(crate) fn step_table(report: &SweepReport) -> Option<(usize, Table)> {
    let size = sizes(report).into_iter().max()?;
    let runs: Vec<&RunSummary> = report.runs.iter().filter(|r| r.key.size == size).collect();
    let steps: Vec<String> = runs
        .first()?
        .step_latency
        .iter()
        .map(|s| s.step.clone())
        .collect();
    if steps.len() < 2 {
        return None;
    }
    let mut header = vec!["Limit".to_string(), "Pooling".to_string()];
    header.extend(steps.iter().map(|s| format!("{s} p50 / p99")));
    let mut t = Table::numeric(header);
    t.align[0] = Align::Left;
    t.align[1] = Align::Left;
    for r in runs {
        let mut row = vec![format::limit_header(r.key.limit), r.key.pooling.to_string()];
        row.extend(r.step_latency.iter().map(|s| {
            format!(
                "{} / {}",
                format::latency_us(s.latency.p50_us),
                format::latency_us(s.latency.p99_us)
            )
        }));
        t.rows.push(row);
    }
    Some((size, t))
}

/// Streaming runs: time to first token and output token rate; None without streaming.
pub(crate) fn streaming_table(report: &SweepReport) -> Option<Table> {
    if report.runs.iter().all(|r| r.ttft.is_none()) {
        return None;
    }
    let header = [
        "Size",
        "Limit",
        "Pooling",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "Call p50",
        "Output tokens/s",
    ];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    t.align[2] = Align::Left;
    for r in &report.runs {
        let ttft = |f: fn(&crate::metrics::LatencySummary) -> u64| {
            r.ttft
                .map_or("–".to_string(), |s| format::latency_us(f(&s)))
        };
        t.rows.push(vec![
            r.key.size.to_string(),
            r.key.limit.to_string(),
            r.key.pooling.to_string(),
            ttft(|s| s.p50_us),
            ttft(|s| s.p90_us),
            ttft(|s| s.p99_us),
            format::latency_us(r.call_latency.p50_us),
            r.output_tokens_per_s
                .map_or("–".to_string(), |x| format!("{x:.0}")),
        ]);
    }
    Some(t)
}

/// `1 chain`, `3 chains`.
fn chains(n: usize) -> String {
    if n == 1 {
        "1 chain".to_string()
    } else {
        format!("{n} chains")
    }
}

/// The error kinds of one run as words, e.g. `3 × 429 (rate limited), 1 timeout`.
pub(crate) fn error_words(e: &ErrorCounts) -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .filter(|k| e.get(**k) > 0)
        .map(|&k| {
            let n = e.get(k);
            let what = match k {
                ErrorKind::RateLimited => "429 (rate limited)",
                ErrorKind::ServerError => "5xx",
                ErrorKind::ClientError => "other 4xx",
                ErrorKind::Timeout => "timeout",
                ErrorKind::Connect => "connect error",
                ErrorKind::Body => "truncated body",
                ErrorKind::Decode => "undecodable body",
                ErrorKind::Redirect => "redirect",
                ErrorKind::Protocol => "protocol error",
                ErrorKind::Local => "local fault",
            };
            format!("{n} × {what}")
        })
        .collect()
}

/// One line per run that saw 429s, timeouts, 5xx, other failed calls, chains left failed
/// after the retry passes, or outputs that differ; empty when the sweep was clean.
pub(crate) fn issues(report: &SweepReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.interrupted {
        lines.push(match report.runs.len() {
            0 => "interrupted by Ctrl-C before any run completed".to_string(),
            n if report.runs.iter().any(|r| r.partial) => format!(
                "interrupted by Ctrl-C: {n} runs reported; the run it cut short is marked \
                 partial (finished chains only, no speedup)"
            ),
            n => format!("interrupted by Ctrl-C: only the {n} runs that completed are reported"),
        });
    }
    for r in &report.runs {
        let mut parts = error_words(&r.errors);
        if r.chains_retried > 0 {
            let recovered = r.chains_retried.saturating_sub(r.chains_failed);
            parts.push(format!(
                "{} retried, {recovered} recovered",
                chains(r.chains_retried)
            ));
        }
        if r.chains_failed > 0 {
            parts.push(format!(
                "{} still failed after every pass",
                chains(r.chains_failed)
            ));
        }
        if r.outputs_differ > 0 {
            let (n, verb) = match r.outputs_differ {
                1 => ("1 output".to_string(), "differs"),
                n => (format!("{n} outputs"), "differ"),
            };
            parts.push(format!("{n} {verb} from the first run of this size"));
        }
        if !parts.is_empty() {
            lines.push(format!(
                "{} chains, {}, {}: {}",
                r.key.size,
                format::limit_header(r.key.limit),
                format::pooling_word(r.key.pooling),
                parts.join("; ")
            ));
        }
    }
    lines
}

/// The sentence shown when [`issues`] is empty.
pub(crate) const NO_ISSUES: &str = "None: no 429s, timeouts, 5xx or other failed calls; \
every chain succeeded; every output matched the first run of its size.";

/// Every setting as a single-line `(name, value)` pair, in a fixed order; the mock's
/// multi-line config is left to the caller.
pub(crate) fn settings_rows(s: &Settings) -> Vec<(&'static str, String)> {
    fn list<T: std::fmt::Display>(v: &[T]) -> String {
        v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
    }
    let opt = |v: Option<u32>| v.map_or("none".to_string(), |v| v.to_string());
    vec![
        ("target", s.target.clone()),
        ("api", s.api.clone()),
        ("model", s.model.clone()),
        ("steps", s.steps.join(" → ")),
        ("sizes", list(&s.sizes)),
        ("limits", list(&s.limits)),
        ("pooling", list(&s.pooling)),
        ("baseline limit", s.baseline_limit.to_string()),
        ("retry passes", s.retry_passes.to_string()),
        ("max retries (429/503)", s.max_retries.to_string()),
        ("timeout", format!("{} ms", s.timeout_ms)),
        ("rpm cap", opt(s.rpm)),
        ("tpm cap", opt(s.tpm)),
        ("warm-up", if s.warmup { "yes" } else { "no" }.to_string()),
        ("max retry wait", format!("{} ms", s.max_retry_wait_ms)),
        (
            "max response size",
            format!("{} bytes", s.max_response_bytes),
        ),
        (
            "redirects",
            if s.follow_redirects {
                "followed (credentials to the target's origin only)"
            } else {
                "not followed"
            }
            .to_string(),
        ),
        ("wall time excludes", s.wall_time_excludes.clone()),
        ("machine", s.machine.clone()),
        ("command", s.command.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::fixture;

    #[test]
    fn course_table_cells_show_wall_time_and_speedup() {
        let report = fixture();
        let t = course_table(&report, Pooling::On);
        assert_eq!(t.header, ["Batch size", "sequential", "5 concurrent"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][0], "10 chains");
        let r = report.run(25, 5, Pooling::On).unwrap();
        let expected = format!(
            "{} (×{:.1})",
            format::duration_ms(r.wall_ms),
            r.speedup.unwrap()
        );
        assert_eq!(t.rows[1][2], expected);
        assert!(
            !t.rows[1][1].contains('×'),
            "the baseline shows no speedup: {}",
            t.rows[1][1]
        );
        let md = t.to_markdown();
        assert!(
            md.starts_with(
                "| Batch size | sequential | 5 concurrent |\n|:---|---:|---:|\n| 10 chains | "
            ),
            "{md}"
        );
    }

    #[test]
    fn course_cells_use_the_course_duration_style() {
        let mut report = fixture();
        let run = report
            .runs
            .iter_mut()
            .find(|r| (r.key.size, r.key.limit, r.key.pooling) == (10, 5, Pooling::On))
            .unwrap();
        run.wall_ms = 2_500_000.0;
        run.speedup = Some(4.93);
        assert_eq!(course_cell(run, 1), "41 min 40 s (×4.9)");
        run.wall_ms = 4_210.0;
        assert_eq!(course_cell(run, 1), "4.21 s (×4.9)");
    }

    #[test]
    fn step_table_shows_each_step_for_the_largest_batch_only_for_multi_step_chains() {
        use crate::metrics::{LatencySummary, StepLatency};
        let (mut report, _) = crate::report::tests::fixture_with(&[10, 25], &[1, 5]);
        assert!(step_table(&report).is_none(), "no step data, no table");
        for run in &mut report.runs {
            run.step_latency = ["research", "write"]
                .iter()
                .map(|s| StepLatency {
                    step: s.to_string(),
                    latency: LatencySummary {
                        count: 10,
                        p50_us: 80_000,
                        p99_us: 140_000,
                        ..LatencySummary::default()
                    },
                })
                .collect();
        }
        let (size, t) = step_table(&report).unwrap();
        assert_eq!(size, 25);
        assert_eq!(t.rows.len(), 4, "limits 1, 5 × pooling on, off");
        assert!(t.to_markdown().contains("research p50 / p99"));
        assert!(t.to_markdown().contains("80 ms / 140 ms"));
    }
}
