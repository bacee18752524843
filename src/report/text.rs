//! What the terminal shows: the summary after a sweep and the side-by-side comparison of two
//! reports. Plain text without colour, so it reads the same in a pipe or a CI log.

use std::fmt::Write;

use super::table::{self, Table};
use super::{format, markdown, significance};
use crate::record::Pooling;
use crate::sweep::SweepReport;

/// A report re-rendered on its own: the settings header, then the results.
pub fn render(report: &SweepReport) -> String {
    let mut out = header(report);
    out.push('\n');
    out.push_str(&results(report));
    out
}

/// The settings block of a report: who ran what against which target.
fn header(report: &SweepReport) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; results are ignored for that reason.
    let _ = writeln!(out, "{} sweep, started {}", report.tool, report.started_utc);
    for (k, v) in table::settings_rows(&report.settings) {
        let _ = writeln!(out, "  {k:<22} {v}");
    }
    if let Some(mock) = &report.settings.mock {
        let inline: Vec<&str> = mock
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let _ = writeln!(out, "  {:<22} {}", "mock", inline.join("; "));
    }
    out
}

/// What a sweep prints on stdout when it ends: the tables and the issues, no settings (the
/// banner on stderr showed those before the first call), so stdout is pure results.
pub fn results(report: &SweepReport) -> String {
    if super::openloop::is_open_loop(report) {
        return super::openloop::terminal(report);
    }
    let mut out = String::new();
    if report.interrupted {
        out.push_str("Interrupted by Ctrl-C: partial results.\n");
    }
    if let Some(a) = &report.adaptive {
        let _ = writeln!(out, "{}", super::adaptive::line(a));
    }
    for pooling in table::poolings(report) {
        // A program (--exec) has no connections to name.
        let what = if report.settings.is_exec() {
            String::new()
        } else {
            format!(", {} connections", format::pooling_word(pooling))
        };
        let _ = writeln!(
            out,
            "\nWall time{what} (×speedup against {}):",
            format::limit_header(report.settings.baseline_limit)
        );
        let _ = writeln!(
            out,
            "{}",
            table::course_table(report, pooling).to_terminal()
        );
    }
    match table::pooling_table(report) {
        Some((size, t)) => {
            let _ = writeln!(
                out,
                "\nCall latency, pooled vs unpooled ({size} chains; Δ = unpooled − pooled):"
            );
            let _ = writeln!(out, "{}", t.to_terminal());
            for line in significance::pooling_statements(report, size) {
                let _ = writeln!(out, "  {line}");
            }
        }
        None => {
            let _ = writeln!(out, "\n{}", markdown::single_mode_note(report));
        }
    }
    if let Some(t) = table::streaming_table(report) {
        let _ = writeln!(
            out,
            "\nStreaming: time to first token (TTFT) and output tokens/s:"
        );
        let _ = writeln!(out, "{}", t.to_terminal());
    }
    if let (Some(t), Some(note)) = (table::cost_table(report), table::cost_note(report)) {
        let _ = writeln!(out, "\nCost:");
        let _ = writeln!(out, "{}", t.to_terminal());
        let _ = writeln!(out, "{note}");
    }
    if let Some(t) = table::llm_table(report) {
        let _ = writeln!(out, "\nLLM serving: ITL, TPOT, SLO attainment and goodput:");
        let _ = writeln!(out, "{}", t.to_terminal());
    }
    out.push_str("\nIssues:\n");
    let issues = table::issues(report);
    if issues.is_empty() {
        let _ = writeln!(out, "  {}", table::NO_ISSUES);
    }
    for line in issues {
        let _ = writeln!(out, "  - {line}");
    }
    let noisy = significance::noise_warnings(report);
    if !noisy.is_empty() {
        out.push_str("\nNoise warnings:\n");
        for line in noisy {
            let _ = writeln!(out, "  - {line}");
        }
    }
    // Each section opens with a blank line; the first needs none.
    out.trim_start_matches('\n').to_string()
}

/// Every cell measured in either report: A's order first, then cells only B has.
fn cells(a: &SweepReport, b: &SweepReport) -> Vec<(usize, usize, Pooling)> {
    let mut cells: Vec<(usize, usize, Pooling)> = Vec::new();
    for r in a.runs.iter().chain(&b.runs) {
        let key = (r.key.size, r.key.limit, r.key.pooling);
        if !cells.contains(&key) {
            cells.push(key);
        }
    }
    cells.sort();
    cells
}

/// The side-by-side comparison of two reports.
pub fn compare(a: &SweepReport, b: &SweepReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {} ({})", a.started_utc, a.tool);
    let _ = writeln!(out, "B: {} ({})", b.started_utc, b.tool);
    let (sa, sb) = (
        table::settings_rows(&a.settings),
        table::settings_rows(&b.settings),
    );
    let differ: Vec<String> = sa
        .iter()
        .zip(&sb)
        .filter(|(x, y)| x.1 != y.1 && x.0 != "command")
        .map(|(x, y)| format!("  {}: A = {}, B = {}", x.0, x.1, y.1))
        .collect();
    if !differ.is_empty() || a.settings.mock != b.settings.mock {
        out.push_str("Settings that differ (compare with care):\n");
        for d in differ {
            let _ = writeln!(out, "{d}");
        }
        if a.settings.mock != b.settings.mock {
            out.push_str("  mock settings\n");
        }
    }
    let header = [
        "Size",
        "Limit",
        "Pooling",
        "Wall A",
        "Wall B",
        "Change",
        "p99 A",
        "p99 B",
        "Change",
        "Δ (95 % CI)",
        "Verdict",
    ];
    let mut t = Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        align: vec![table::Align::Right; header.len()],
        rows: Vec::new(),
    };
    t.align[2] = table::Align::Left;
    let changes = significance::changes(a, b);
    for (size, limit, pooling) in cells(a, b) {
        let (ra, rb) = (a.run(size, limit, pooling), b.run(size, limit, pooling));
        let key = crate::record::RunKey {
            size,
            limit,
            pooling,
        }
        .to_string();
        let wall = |r: Option<&crate::sweep::RunSummary>| {
            r.map_or("–".to_string(), significance::wall_cell)
        };
        let p99 = |r: Option<&crate::sweep::RunSummary>| {
            r.map_or("–".to_string(), |r| {
                format::latency_us(r.call_latency.p99_us)
            })
        };
        let (wall_change, p99_change) = match (ra, rb) {
            (Some(x), Some(y)) => (
                format::change_pct(x.wall_ms, y.wall_ms),
                format::change_pct(x.call_latency.p99_us as f64, y.call_latency.p99_us as f64),
            ),
            _ => ("–".to_string(), "–".to_string()),
        };
        let (ci, verdict) = match changes.iter().find(|c| c.key == key) {
            Some(c) => (
                significance::change_cell(c.change, c.interval),
                c.verdict.as_str().to_string(),
            ),
            None => ("–".to_string(), "–".to_string()),
        };
        t.rows.push(vec![
            size.to_string(),
            limit.to_string(),
            pooling.to_string(),
            wall(ra),
            wall(rb),
            wall_change,
            p99(ra),
            p99(rb),
            p99_change,
            ci,
            verdict,
        ]);
    }
    let _ = writeln!(
        out,
        "{}\nChange = (B − A) / A; negative is faster. p99 is the call latency's 99th percentile.\n\
         Δ (95 % CI): change of the mean wall time over the repeats (Welch's t-test) when both \
         sides were repeated, else of the median call latency (Mann–Whitney U on the \
         histograms). Verdict: `slower` / `faster` when that test has p < {} (Holm–Bonferroni \
         adjusted over the cells) and a change beyond ±{} %, else `no change`.",
        t.to_terminal(),
        crate::stats::ALPHA,
        crate::stats::NOISE * 100.0
    );
    out
}
