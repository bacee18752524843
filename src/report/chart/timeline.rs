//! timeline.png: calls in flight over time for the largest batch, one line per limit, so a
//! reader sees the semaphore fill up, hold, and drain (and how much sooner a higher limit
//! finishes). A `loadchain run` folder gets the same chart for its one session.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, SIZE};
use crate::manifest::RunSummaryFile;
use crate::report::{format, table};
use crate::sweep::SweepReport;

/// Pixel columns across the plot; the timeline is resampled to one level per column.
const COLUMNS: f64 = 1000.0;

/// Resamples `[t, level]` step points (each level valid until the next point) to one level
/// per column of width `w`: the peak within the column, as the runner's own downsampling
/// does. A dip of a few µs between one call ending and the next starting on the same slot
/// is real but narrower than a pixel; drawn as is, it becomes a comb of stray marks.
fn peaks_per_column(points: &[[f64; 2]], w: f64) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = Vec::new();
    let (mut i, mut level) = (0, 0.0);
    let end = points.last().map_or(0.0, |p| p[0]);
    let mut c = 0.0;
    while c * w < end {
        let (start, stop) = (c * w, (c + 1.0) * w);
        let mut peak = level;
        while i < points.len() && points[i][0] < stop {
            level = points[i][1];
            peak = f64::max(peak, level);
            i += 1;
        }
        if out.last().map(|p| p[1]) != Some(peak) {
            out.push([start, peak]);
        }
        c += 1.0;
    }
    out.push([end, points.last().map_or(0.0, |p| p[1])]);
    out
}

/// Turns step points into a polyline with vertical risers, scaling time by `div`.
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

/// One line of the chart: its colour index, legend label and `[t_ms, in_flight]` points.
type Series<'a> = (usize, String, &'a [[f64; 2]]);

/// Draws the chart into `path` (PNG): the largest batch of a sweep, one line per limit.
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    let pooling = table::main_pooling(report);
    let size = table::sizes(report).last().copied().unwrap_or(0);
    let title = format!(
        "Calls in flight over time, {size} chains ({} connections)",
        format::pooling_word(pooling)
    );
    let limits = table::limits(report);
    let series: Vec<Series<'_>> = limits
        .iter()
        .enumerate()
        .filter_map(|(j, &l)| {
            let run = report.run(size, l, pooling)?;
            (!run.timeline.is_empty())
                .then(|| (j, format::limit_header(l), run.timeline.as_slice()))
        })
        .collect();
    plot(path, &title, &series)
}

/// Draws the chart of a `loadchain run` session into `path` (PNG): one line, its limit.
pub fn draw_run(path: &Path, summary: &RunSummaryFile) -> DrawResult {
    let title = format!(
        "Calls in flight over time, {} chains (pooled connections)",
        summary.rows_run()
    );
    let series = [(
        0,
        format::limit_header(summary.limit),
        summary.timeline.as_slice(),
    )];
    plot(path, &title, &series)
}

/// Draws step lines of calls in flight, one per series, on a shared time axis.
fn plot(path: &Path, title: &str, series: &[Series<'_>]) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let max_t = series
        .iter()
        .flat_map(|(_, _, t)| t.iter().map(|p| p[0]))
        .fold(0.0, f64::max);
    if series.is_empty() || max_t <= 0.0 {
        return super::draw_empty(&root, title, "No calls were recorded.");
    }
    let max_level = series
        .iter()
        .flat_map(|(_, _, t)| t.iter().map(|p| p[1]))
        .fold(1.0, f64::max);
    let (div, unit) = super::time_unit(max_t);

    let mut chart = super::frame(&root, title)?
        .build_cartesian_2d(0f64..max_t / div * 1.02, 0f64..(max_level * 1.12).ceil())?;
    let axes = super::Axes {
        x_desc: format!("time since the run started ({unit})"),
        y_desc: "calls in flight".to_string(),
        x_tick: &|x| super::tick(*x),
        y_tick: &|y| super::tick(*y),
        x_grid: true,
    };
    super::draw_axes(&mut chart, &axes)?;
    for (j, label, points) in series {
        let style = super::color(*j).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                staircase(&peaks_per_column(points, max_t / COLUMNS), div),
                style,
            ))?
            .label(label.as_str())
            .legend(move |xy| super::solid_legend(xy, style.stroke_width(3)));
    }
    super::finish(&mut chart, &root, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_hides_sub_pixel_dips_but_keeps_long_ones() {
        let pts = [
            [0.0, 5.0],
            [10.0, 4.0],
            [10.05, 5.0],
            [50.0, 2.0],
            [80.0, 0.0],
        ];
        let r = peaks_per_column(&pts, 1.0);
        // The column where the level drops still held the peak, so the drop shows one column on.
        assert_eq!(r, vec![[0.0, 5.0], [51.0, 2.0], [80.0, 0.0]]);
    }

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
