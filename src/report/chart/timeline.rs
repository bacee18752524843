//! timeline.png: calls in flight over time for the largest batch, one line per limit, so a
//! reader sees the semaphore fill up, hold, and drain (and how much sooner a higher limit
//! finishes).

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, SIZE};
use crate::report::{format, table};
use crate::sweep::SweepReport;

/// Turns `[t, level]` step points (each level valid until the next point) into a polyline
/// with vertical risers, scaling time by `div`.
fn staircase(points: &[[f64; 2]], div: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push((p[0] / div, points[i - 1][1]));
        }
        out.push((p[0] / div, p[1]));
    }
    out
}

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let pooling = table::main_pooling(report);
    let size = table::sizes(report).last().copied().unwrap_or(0);
    let title = format!(
        "Calls in flight over time, {size} chains ({} connections)",
        format::pooling_word(pooling)
    );
    let limits = table::limits(report);
    let series: Vec<(usize, usize, &[[f64; 2]])> = limits
        .iter()
        .enumerate()
        .filter_map(|(j, &l)| {
            let run = report.run(size, l, pooling)?;
            (!run.timeline.is_empty()).then_some((j, l, run.timeline.as_slice()))
        })
        .collect();
    let max_t = series
        .iter()
        .flat_map(|(_, _, t)| t.iter().map(|p| p[0]))
        .fold(0.0, f64::max);
    if series.is_empty() || max_t <= 0.0 {
        return super::draw_empty(&root, &title, "No calls were recorded.");
    }
    let max_level = series
        .iter()
        .flat_map(|(_, _, t)| t.iter().map(|p| p[1]))
        .fold(1.0, f64::max);
    let (div, unit) = super::time_unit(max_t);

    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&title, super::title_style())
        .margin(24)
        .x_label_area_size(64)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max_t / div * 1.02, 0f64..(max_level * 1.12).ceil())?;
    chart
        .configure_mesh()
        .bold_line_style(super::grid(true))
        .light_line_style(super::grid(false))
        .x_desc(format!("time since the run started ({unit})"))
        .y_desc("calls in flight")
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .x_label_formatter(&|x| super::tick(*x))
        .y_label_formatter(&|y| super::tick(*y))
        .draw()?;
    for (j, limit, points) in series {
        let style = super::color(j).stroke_width(2);
        chart
            .draw_series(LineSeries::new(staircase(points, div), style))?
            .label(format::limit_header(limit))
            .legend(move |xy| super::solid_legend(xy, style.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(16)
        .label_font(super::legend_style())
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staircase_adds_a_riser_before_each_change() {
        let s = staircase(&[[0.0, 0.0], [10.0, 2.0], [30.0, 0.0]], 1.0);
        assert_eq!(
            s,
            vec![
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 2.0),
                (30.0, 2.0),
                (30.0, 0.0)
            ]
        );
    }
}
