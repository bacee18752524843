//! latency_vs_rate.png: p50 and p99 latency from the intended start against the achieved
//! rate, one point per open-loop run (first pooling mode), the max sustainable rate marked.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, SIZE};
use crate::report::table;
use crate::sweep::SweepReport;

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let title = "Latency from intended start vs achieved rate";
    let pooling = table::main_pooling(report);
    // (offered, achieved, p50 ms, p99 ms)
    let points: Vec<(f64, f64, f64, f64)> = report
        .runs
        .iter()
        .filter(|r| r.key.pooling == pooling)
        .filter_map(|r| r.open_loop.as_ref())
        .map(|o| {
            (
                o.offered_rate,
                o.achieved_rate,
                o.latency.p50_us as f64 / 1000.0,
                o.latency.p99_us as f64 / 1000.0,
            )
        })
        .collect();
    if points.is_empty() {
        return super::draw_empty(&root, title, "No open-loop runs (--rates) were measured.");
    }
    root.fill(&WHITE)?;
    let max_x = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let max_y = points.iter().map(|p| p.3).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, super::title_style())
        .margin(24)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("achieved rate (chains/s)")
        .y_desc("latency from intended start (ms)")
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .bold_line_style(super::grid(true))
        .light_line_style(super::grid(false))
        .draw()?;
    for (i, (name, pick)) in [("p50", 2usize), ("p99", 3usize)].into_iter().enumerate() {
        let color = super::color(i);
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.1, if pick == 2 { p.2 } else { p.3 }))
            .collect();
        chart
            .draw_series(LineSeries::new(xy.clone(), color.stroke_width(3)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 26, y)], color.stroke_width(3))
            });
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
    }
    if let Some(knee) = report.max_sustainable_rate
        && let Some(p) = points.iter().find(|p| p.0 == knee)
    {
        let style = super::REFERENCE.stroke_width(2);
        chart
            .draw_series(LineSeries::new(vec![(p.1, 0.0), (p.1, max_y)], style))?
            .label(format!("max sustainable: {knee} offered/s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 26, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(super::legend_style())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
