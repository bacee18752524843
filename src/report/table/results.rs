//! The result tables of a sweep: the course table (wall time per size × limit), pooled against
//! unpooled latency, per-step latency, streaming and the every-figure detail table.

use super::{Align, Table, limits, sizes};
use crate::record::Pooling;
use crate::report::{format, significance};
use crate::sweep::{RunSummary, SweepReport};

/// One course-table cell: wall time, then the speedup against the baseline limit.
fn course_cell(run: &RunSummary, baseline_limit: usize) -> String {
    let mut cell = significance::wall_cell(run);
    if let Some(s) = run.speedup.filter(|_| run.key.limit != baseline_limit) {
        cell.push_str(&format!(" ({})", significance::speedup_cell(run, s)));
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
                .as_ref()
                .map_or("–".to_string(), |s| format::latency_us(f(s)))
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
