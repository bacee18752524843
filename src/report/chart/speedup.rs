//! speedup.png: speedup against the concurrency limit, one line per batch size, with the
//! ideal the semaphore pattern allows (speedup = limit, capped at the batch size).

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, KeyedChart, REFERENCE, SIZE};
use crate::record::Pooling;
use crate::report::{format, table};
use crate::sweep::SweepReport;

/// The measured speedup of each batch size: `(size, [(limit, speedup)])`.
type Lines = Vec<(usize, Vec<(f64, f64)>)>;

/// The limits the x axis spans and the baseline the ideal divides by.
struct Span {
    min_limit: usize,
    max_limit: usize,
    baseline: usize,
}

impl Span {
    /// The ideal speedup at limit `x` for a batch of `size`: at most `size` chains run at once.
    fn ideal(&self, x: f64, size: usize) -> f64 {
        x.min(size as f64) / self.baseline.min(size) as f64
    }
}

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let pooling = table::main_pooling(report);
    let baseline = report.settings.baseline_limit.max(1);
    let title = format!(
        "Speedup against {} ({} connections)",
        format::limit_header(baseline),
        format::pooling_word(pooling)
    );
    let limits = table::limits(report);
    let lines = lines(report, pooling);
    let (Some(&min_limit), Some(&max_limit)) = (limits.first(), limits.last()) else {
        return super::draw_empty(&root, &title, "No runs were measured.");
    };
    if lines.iter().all(|(_, p)| p.is_empty()) {
        return super::draw_empty(&root, &title, "No speedup: the baseline limit was not run.");
    }
    let span = Span {
        min_limit,
        max_limit,
        baseline,
    };
    let max_size = lines.last().map_or(1, |(size, _)| *size);
    let y_top = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .chain(std::iter::once(span.ideal(max_limit as f64, max_size)))
        // Room for the error bars' tops too.
        .chain(
            report
                .runs
                .iter()
                .filter_map(|r| r.repeats.as_ref()?.speedup.map(|c| c.hi)),
        )
        .fold(1.0, f64::max)
        * 1.08;
    let x_right = max_limit as f64 + (max_limit - min_limit.min(max_limit)) as f64 * 0.04 + 0.5;
    let keys: Vec<f64> = limits.iter().map(|&l| l as f64).collect();

    let mut chart = super::frame(&root, &title)?
        .build_cartesian_2d(super::KeyedAxis::new(0f64..x_right, keys), 0f64..y_top)?;
    let axes = super::Axes {
        x_desc: "concurrency limit (chains in flight)".to_string(),
        y_desc: format!("speedup (× faster than {})", format::limit_header(baseline)),
        x_tick: &|x| super::tick(*x),
        y_tick: &|y| speedup_tick(*y),
        x_grid: true,
    };
    super::draw_axes(&mut chart, &axes)?;
    draw_ideal(&mut chart, &span, max_size)?;
    for (i, (size, pts)) in lines.iter().enumerate() {
        draw_size(&mut chart, &span, i, *size, pts)?;
        let whiskers: Vec<(f64, f64, f64, f64)> = limits
            .iter()
            .filter_map(|&l| report.run(*size, l, pooling))
            .filter_map(|r| {
                let ci = r.repeats.as_ref()?.speedup?;
                Some((r.key.limit as f64, ci.lo, ci.mean, ci.hi))
            })
            .collect();
        super::error_bars::draw(&mut chart, &whiskers, super::color(i))?;
    }
    super::finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

/// One line per batch size (ascending) through the limits that have a speedup.
fn lines(report: &SweepReport, pooling: Pooling) -> Lines {
    let limits = table::limits(report);
    table::sizes(report)
        .into_iter()
        .map(|size| {
            let pts = limits
                .iter()
                .filter_map(|&l| report.run(size, l, pooling))
                .filter_map(|r| r.speedup.map(|s| (r.key.limit as f64, s)))
                .collect();
            (size, pts)
        })
        .collect()
}

/// y axis tick text: `0`, `×2`, `×2.5`.
fn speedup_tick(y: f64) -> String {
    if y == 0.0 {
        "0".to_string()
    } else {
        format!("×{}", super::tick(y))
    }
}

/// The ideal every size shares while limit <= size.
fn draw_ideal<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    span: &Span,
    max_size: usize,
) -> DrawResult {
    let ideal_style = REFERENCE.stroke_width(2);
    let shared: Vec<(f64, f64)> = [span.min_limit as f64, span.max_limit as f64]
        .iter()
        .map(|&x| (x, span.ideal(x, max_size)))
        .collect();
    chart
        .draw_series(DashedLineSeries::new(shared, 10, 6, ideal_style))?
        .label("ideal: speedup = limit")
        .legend(move |xy| super::dashed_legend(xy, ideal_style));
    Ok(())
}

/// The `i`-th batch size: its capped ideal where the batch is smaller than the largest limit,
/// then its measured line and points.
fn draw_size<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    span: &Span,
    i: usize,
    size: usize,
    pts: &[(f64, f64)],
) -> DrawResult {
    let color = super::color(i);
    let style = color.stroke_width(3);
    // Where a batch is smaller than the limit, at most `size` chains can run at once.
    if size < span.max_limit && size >= span.min_limit {
        let cap = span.ideal(size as f64, size);
        let cap_style = color.mix(0.7).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(size as f64, cap), (span.max_limit as f64, cap)],
                10,
                6,
                cap_style,
            ))?
            .label(format!("ideal for {size} chains (capped at {size})"))
            .legend(move |xy| super::dashed_legend(xy, cap_style));
    }
    if pts.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(LineSeries::new(pts.to_vec(), style))?
        .label(format!("{size} chains"))
        .legend(move |xy| super::solid_legend(xy, style));
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 6, color.filled())))?;
    Ok(())
}
