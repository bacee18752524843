//! The open-loop part of a report (`sweep --rates`): the rate table, the max sustainable
//! rate line and the generator warnings, for the terminal and summary.md alike.

use std::fmt::Write;

use super::format;
use super::table::{Align, Table};
use crate::metrics::LatencySummary;
use crate::sweep::SweepReport;

/// Whether the sweep ran open loop (any run has open-loop figures).
pub(crate) fn is_open_loop(report: &SweepReport) -> bool {
    report.runs.iter().any(|r| r.open_loop.is_some())
}

/// One row per open-loop run: offered, dispatched and achieved rates, latency from the
/// intended start, service latency, queue wait and late starts.
pub(crate) fn rate_table(report: &SweepReport) -> Table {
    let header = [
        "Offered/s",
        "Pooling",
        "Sent/s",
        "Done/s",
        "Latency p50",
        "Latency p99",
        "Service p50",
        "Service p99",
        "Queue p99",
        "Late starts",
        "Failed",
    ];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    t.align[1] = Align::Left;
    let us = |s: &LatencySummary, f: fn(&LatencySummary) -> u64| format::latency_us(f(s));
    for r in &report.runs {
        let Some(o) = &r.open_loop else { continue };
        t.rows.push(vec![
            rate(o.offered_rate),
            r.key.pooling.to_string(),
            rate(o.arrival_rate),
            rate(o.achieved_rate),
            us(&o.latency, |s| s.p50_us),
            us(&o.latency, |s| s.p99_us),
            us(&o.service_latency, |s| s.p50_us),
            us(&o.service_latency, |s| s.p99_us),
            us(&o.queue_wait, |s| s.p99_us),
            format!("{} of {}", o.late_starts, o.arrivals),
            r.chains_failed.to_string(),
        ]);
    }
    t
}

/// A rate as shown: `75`, `2.5`, `4,980`-like without separators.
fn rate(r: f64) -> String {
    if r >= 100.0 || r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// The one-line verdict on saturation.
pub(crate) fn sustainable_line(report: &SweepReport) -> String {
    match report.max_sustainable_rate {
        Some(r) => format!(
            "Max sustainable rate: {} chains/s (highest offered rate completed at ≥ 95 % of \
             offered with p99 from intended start ≤ 2 × the lowest rate's p99).",
            rate(r)
        ),
        None => "Max sustainable rate: none: even the lowest offered rate was not completed at \
                 ≥ 95 % of offered."
            .to_string(),
    }
}

/// One sentence per run whose generator fell behind its own schedule.
pub(crate) fn generator_warnings(report: &SweepReport) -> Vec<String> {
    report
        .runs
        .iter()
        .filter_map(|r| {
            let o = r.open_loop.as_ref()?;
            let w = o.generator_warning()?;
            Some(format!(
                "{} chains/s ({}): {w}",
                rate(o.offered_rate),
                r.key.pooling
            ))
        })
        .collect()
}

/// The terminal's open-loop section.
pub(crate) fn terminal(report: &SweepReport) -> String {
    let mut out = String::new();
    if report.interrupted {
        out.push_str("Interrupted by Ctrl-C: partial results.\n");
    }
    let _ = writeln!(
        out,
        "\nOpen loop: latency from each chain's intended start, service from its send:"
    );
    let _ = writeln!(out, "{}", rate_table(report).to_terminal());
    for w in generator_warnings(report) {
        let _ = writeln!(out, "Warning: {w}");
    }
    let _ = writeln!(out, "{}", sustainable_line(report));
    out
}

/// summary.md's open-loop section.
pub(crate) fn markdown(md: &mut String, report: &SweepReport) {
    if !is_open_loop(report) {
        return;
    }
    md.push_str("## Open loop\n\n");
    md.push_str(&rate_table(report).to_markdown());
    md.push('\n');
    let _ = writeln!(md, "**{}**\n", sustainable_line(report));
    for w in generator_warnings(report) {
        let _ = writeln!(md, "- Warning: {w}");
    }
    md.push_str(
        "Latency runs from each chain's intended start (its scheduled arrival), service from \
         its actual send; queue wait is the difference. A late start is an arrival the \
         generator dispatched more than 1 ms behind schedule. Chart: \
         `latency_vs_rate.png`.\n\n",
    );
}
