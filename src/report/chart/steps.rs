//! latency.png of a `loadchain run` folder: call latency per chain step as grouped bars, one
//! group per step and one bar per percentile (p50, p90, p99, max), so a reader sees which step
//! dominates and how far its tail reaches. Drawn from summary.json's `step_latency` alone.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::bars::{self, Bar};
use super::{DrawResult, KeyedChart, SIZE};
use crate::manifest::RunSummaryFile;
use crate::metrics::LatencySummary;
use crate::report::format;

/// Reads one figure (µs) of a latency summary.
type Figure = fn(&LatencySummary) -> u64;

/// The bars of each group: legend label and the figure it shows.
const BARS: [(&str, Figure); 4] = [
    ("p50", |l| l.p50_us),
    ("p90", |l| l.p90_us),
    ("p99", |l| l.p99_us),
    ("max", |l| l.max_us),
];

/// Fraction of a group's width the bars take; the rest separates the groups.
const GROUP_FILL: f64 = 0.8;

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, summary: &RunSummaryFile) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let title = format!(
        "Call latency per step, {} chains at {}",
        summary.rows_run(),
        format::limit_header(summary.limit)
    );
    let steps: Vec<&LatencySummary> = summary.step_latency.iter().map(|s| &s.latency).collect();
    let max_ms = steps
        .iter()
        .map(|l| l.max_us as f64 / 1000.0)
        .fold(0.0, f64::max);
    if steps.is_empty() || max_ms <= 0.0 {
        return super::draw_empty(&root, &title, "No successful calls to plot.");
    }
    let (div, unit) = super::time_unit(max_ms);
    let names: Vec<String> = summary
        .step_latency
        .iter()
        .map(|s| s.step.clone())
        .collect();
    let mut chart = bars::chart(
        &root,
        &title,
        &names,
        max_ms / div * 1.12,
        "chain step (successful calls)",
        format!("call latency ({unit})"),
    )?;
    draw_percentiles(&mut chart, &steps, (div, max_ms))?;
    super::finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

/// One series of bars per percentile, a bar per step; `div` turns ms into the axis' unit.
fn draw_percentiles<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    steps: &[&LatencySummary],
    (div, max_ms): (f64, f64),
) -> DrawResult {
    let bar_w = GROUP_FILL / BARS.len() as f64;
    let pad = (1.0 - GROUP_FILL) / 2.0;
    let series = bars::Series {
        width: bar_w,
        div,
        max_ms,
        // Value labels only while they fit: 4 bars per step, at most a few steps.
        values: (steps.len() <= 3)
            .then(|| super::small_style(14).pos(Pos::new(HPos::Center, VPos::Bottom))),
    };
    for (j, (label, figure)) in BARS.iter().enumerate() {
        let bars: Vec<Bar> = steps
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let x0 = i as f64 + pad + j as f64 * bar_w;
                (x0, x0 + bar_w, figure(l) as f64 / 1000.0)
            })
            .collect();
        series.draw(chart, &bars, super::color(j), label.to_string())?;
    }
    Ok(())
}
