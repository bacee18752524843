//! speedup.png: speedup against the concurrency limit, one line per batch size, with the
//! ideal the semaphore pattern allows (speedup = limit, capped at the batch size).

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, REFERENCE, SIZE};
use crate::report::{format, table};
use crate::sweep::SweepReport;

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
    let sizes = table::sizes(report);
    let limits = table::limits(report);
    let lines: Vec<(usize, Vec<(f64, f64)>)> = sizes
        .iter()
        .map(|&size| {
            let pts = limits
                .iter()
                .filter_map(|&l| report.run(size, l, pooling))
                .filter_map(|r| r.speedup.map(|s| (r.key.limit as f64, s)))
                .collect();
            (size, pts)
        })
        .collect();
    let (Some(&min_limit), Some(&max_limit)) = (limits.first(), limits.last()) else {
        return super::draw_empty(&root, &title, "No runs were measured.");
    };
    if lines.iter().all(|(_, p)| p.is_empty()) {
        return super::draw_empty(&root, &title, "No speedup: the baseline limit was not run.");
    }
    let ideal = |x: f64, size: usize| x.min(size as f64) / baseline.min(size) as f64;
    let max_size = sizes.last().copied().unwrap_or(1);
    let y_top = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .chain(std::iter::once(ideal(max_limit as f64, max_size)))
        .fold(1.0, f64::max)
        * 1.08;
    let x_right = max_limit as f64 + (max_limit - min_limit.min(max_limit)) as f64 * 0.04 + 0.5;
    let keys: Vec<f64> = limits.iter().map(|&l| l as f64).collect();

    let mut chart = super::frame(&root, &title)?
        .build_cartesian_2d(super::KeyedAxis::new(0f64..x_right, keys), 0f64..y_top)?;
    chart
        .configure_mesh()
        .bold_line_style(super::grid(true))
        .light_line_style(super::grid(false))
        .max_light_lines(1)
        .x_desc("concurrency limit (chains in flight)")
        .y_desc(format!(
            "speedup (× faster than {})",
            format::limit_header(baseline)
        ))
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .x_label_formatter(&|x| super::tick(*x))
        .y_label_formatter(&|y| {
            if *y == 0.0 {
                "0".to_string()
            } else {
                format!("×{}", super::tick(*y))
            }
        })
        .draw()?;

    // The ideal every size shares while limit <= size.
    let ideal_style = REFERENCE.stroke_width(2);
    let shared: Vec<(f64, f64)> = [min_limit as f64, max_limit as f64]
        .iter()
        .map(|&x| (x, ideal(x, max_size)))
        .collect();
    chart
        .draw_series(DashedLineSeries::new(shared.clone(), 10, 6, ideal_style))?
        .label("ideal: speedup = limit")
        .legend(move |xy| super::dashed_legend(xy, ideal_style));
    for (i, (size, pts)) in lines.iter().enumerate() {
        let color = super::color(i);
        let style = color.stroke_width(3);
        // Where a batch is smaller than the limit, at most `size` chains can run at once.
        if *size < max_limit && *size >= min_limit {
            let cap = ideal(*size as f64, *size);
            let cap_style = color.mix(0.7).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(*size as f64, cap), (max_limit as f64, cap)],
                    10,
                    6,
                    cap_style,
                ))?
                .label(format!("ideal for {size} chains (capped at {size})"))
                .legend(move |xy| super::dashed_legend(xy, cap_style));
        }
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), style))?
            .label(format!("{size} chains"))
            .legend(move |xy| super::solid_legend(xy, style));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 6, color.filled())))?;
    }
    super::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}
