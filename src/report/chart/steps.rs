//! latency.png of a `loadchain run` folder: call latency per chain step as grouped bars, one
//! group per step and one bar per percentile (p50, p90, p99, max), so a reader sees which step
//! dominates and how far its tail reaches. Drawn from summary.json's `step_latency` alone.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, SIZE};
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
    let steps: Vec<(&str, &LatencySummary)> = summary
        .step_latency
        .iter()
        .map(|s| (s.step.as_str(), &s.latency))
        .collect();
    let max_ms = steps
        .iter()
        .map(|(_, l)| l.max_us as f64 / 1000.0)
        .fold(0.0, f64::max);
    if steps.is_empty() || max_ms <= 0.0 {
        return super::draw_empty(&root, &title, "No successful calls to plot.");
    }
    let (div, unit) = super::time_unit(max_ms);
    let groups = steps.len() as f64;
    let centers: Vec<f64> = (0..steps.len()).map(|i| i as f64 + 0.5).collect();
    let step_label = |x: &f64| {
        let i = x.floor().max(0.0) as usize;
        steps
            .get(i)
            .map_or_else(String::new, |(name, _)| (*name).to_string())
    };

    let mut chart = super::frame(&root, &title)?.build_cartesian_2d(
        super::KeyedAxis::new(0f64..groups, centers),
        0f64..max_ms / div * 1.12,
    )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(super::grid(true))
        .light_line_style(super::grid(false))
        .max_light_lines(1)
        .x_desc("chain step (successful calls)")
        .y_desc(format!("call latency ({unit})"))
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .x_label_formatter(&step_label)
        .y_label_formatter(&|y| super::tick(*y))
        .draw()?;

    let bar_w = GROUP_FILL / BARS.len() as f64;
    let pad = (1.0 - GROUP_FILL) / 2.0;
    // Value labels only while they fit: 4 bars per step, at most a few steps.
    let font = (steps.len() <= 3)
        .then(|| super::small_style(14).pos(Pos::new(HPos::Center, VPos::Bottom)));
    for (j, (label, figure)) in BARS.iter().enumerate() {
        let color = super::color(j);
        let bars: Vec<(f64, f64, f64)> = steps
            .iter()
            .enumerate()
            .map(|(i, (_, l))| {
                let x0 = i as f64 + pad + j as f64 * bar_w;
                (x0, x0 + bar_w, figure(l) as f64 / 1000.0)
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x0, x1, ms)| {
                Rectangle::new(
                    [(x0 + bar_w * 0.04, 0.0), (x1 - bar_w * 0.04, ms / div)],
                    color.filled(),
                )
            }))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 22, y + 8)], color.filled()));
        if let Some(style) = &font {
            chart.draw_series(bars.iter().map(|&(x0, x1, ms)| {
                Text::new(
                    format::duration_ms(ms),
                    ((x0 + x1) / 2.0, ms / div + max_ms / div * 0.008),
                    style.clone(),
                )
            }))?;
        }
    }
    super::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}
