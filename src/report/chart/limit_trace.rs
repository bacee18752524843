//! limit_trace.png: an `auto` run's limit (left axis, a staircase: each decision holds until
//! the next) and the throughput of each decision window (right axis), over time, so a reader
//! sees the limit climb, get cut at the quota, and settle.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, SIZE};
use crate::runner::AdaptiveOutcome;

/// File name of the chart, written only when a run had an adaptive limit.
pub const FILE_NAME: &str = "limit_trace.png";

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, a: &AdaptiveOutcome) -> DrawResult {
    let title = format!(
        "Adaptive limit over time (recommended limit: {})",
        a.recommended_limit
    );
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let trace = &a.limit_trace;
    let max_t = trace.iter().map(|p| p.t_ms).fold(0.0, f64::max);
    if trace.len() < 2 || max_t <= 0.0 {
        return super::draw_empty(&root, &title, "The run ended before the first decision.");
    }
    let (div, unit) = super::time_unit(max_t);
    let max_limit = trace.iter().map(|p| p.limit as f64).fold(1.0, f64::max);
    let max_tp = trace.iter().map(|p| p.throughput).fold(1.0, f64::max);
    let mut chart = super::frame(&root, &title)?
        .right_y_label_area_size(80)
        .build_cartesian_2d(0f64..max_t / div * 1.02, 0f64..(max_limit * 1.15).ceil())?
        .set_secondary_coord(0f64..max_t / div * 1.02, 0f64..max_tp * 1.15);
    let axes = super::Axes {
        x_desc: format!("time since the run started ({unit})"),
        y_desc: "limit (chains in flight)".to_string(),
        x_tick: &|x| super::tick(*x),
        y_tick: &|y| super::tick(*y),
        x_grid: true,
    };
    super::draw_axes(&mut chart, &axes)?;
    chart
        .configure_secondary_axes()
        .y_desc("throughput (successful calls/s)")
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .y_label_formatter(&|y| super::tick(*y))
        .draw()?;
    let mut steps = Vec::with_capacity(trace.len() * 2);
    for (i, p) in trace.iter().enumerate() {
        if i > 0 {
            steps.push((p.t_ms / div, trace[i - 1].limit as f64));
        }
        steps.push((p.t_ms / div, p.limit as f64));
    }
    let limit_style = super::color(0).stroke_width(3);
    chart
        .draw_series(LineSeries::new(steps, limit_style))?
        .label("limit")
        .legend(move |xy| super::solid_legend(xy, limit_style));
    let tp_style = super::color(1).stroke_width(2);
    chart
        .draw_secondary_series(LineSeries::new(
            trace.iter().skip(1).map(|p| (p.t_ms / div, p.throughput)),
            tp_style,
        ))?
        .label("throughput (right axis)")
        .legend(move |xy| super::solid_legend(xy, tp_style));
    super::finish(&mut chart, &root, SeriesLabelPosition::LowerRight)
}
