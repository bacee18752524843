//! wall_time.png: the course table as grouped bars — one group per batch size, one bar per
//! limit, bar height = wall time of the whole batch, with the value printed on each bar.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, SIZE};
use crate::report::{format, table};
use crate::sweep::SweepReport;

/// Fraction of a group's width the bars take; the rest separates the groups.
const GROUP_FILL: f64 = 0.8;
/// Widest a bar may be, as a fraction of its group.
const MAX_BAR: f64 = 0.3;

/// The largest font (16 px down to 10 px) at which every bar's value label fits within its
/// bar; None when even 10 px would overlap the neighbours, and the labels are left out.
fn label_font_px(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    report: &SweepReport,
    pooling: crate::record::Pooling,
    bar_fraction: f64,
) -> Option<u32> {
    // Plot width: the chart minus its margins and the y label area.
    let plot_px = f64::from(SIZE.0) - 2.0 * 24.0 - 80.0;
    let bar_px = bar_fraction * plot_px * 0.96;
    let labels: Vec<String> = report
        .runs
        .iter()
        .filter(|r| r.key.pooling == pooling)
        .map(|r| format::duration_ms(r.wall_ms))
        .collect();
    (10..=16u32).rev().find(|&px| {
        let style = super::small_style(px);
        labels.iter().all(|l| {
            root.estimate_text_size(l, &style)
                .is_ok_and(|(w, _)| f64::from(w) <= bar_px)
        })
    })
}

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let pooling = table::main_pooling(report);
    let title = format!(
        "Wall time per batch ({} connections)",
        format::pooling_word(pooling)
    );
    let sizes = table::sizes(report);
    let limits = table::limits(report);
    let max_ms = report
        .runs
        .iter()
        .filter(|r| r.key.pooling == pooling)
        .map(|r| r.wall_ms)
        .fold(0.0, f64::max);
    if sizes.is_empty() || max_ms <= 0.0 {
        return super::draw_empty(&root, &title, "No runs were measured.");
    }
    let (div, unit) = super::time_unit(max_ms);
    let groups = sizes.len() as f64;
    let centers: Vec<f64> = (0..sizes.len()).map(|i| i as f64 + 0.5).collect();
    let size_label = |x: &f64| {
        let i = x.floor().max(0.0) as usize;
        sizes
            .get(i)
            .map_or_else(String::new, |s| format!("{s} chains"))
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
        .x_desc("batch size")
        .y_desc(format!("wall time ({unit}), lower is better"))
        .axis_desc_style(super::axis_desc_style())
        .label_style(super::tick_style())
        .x_label_formatter(&size_label)
        .y_label_formatter(&|y| super::tick(*y))
        .draw()?;

    // A lone bar per group would fill the whole group; keep bars bar-shaped.
    let bar_w = (GROUP_FILL / limits.len() as f64).min(MAX_BAR);
    let group_pad = (1.0 - bar_w * limits.len() as f64) / 2.0;
    let font_px = label_font_px(&root, report, pooling, bar_w / groups);
    for (j, &limit) in limits.iter().enumerate() {
        let color = super::color(j);
        let bars: Vec<(f64, f64, f64)> = sizes
            .iter()
            .enumerate()
            .filter_map(|(i, &size)| {
                let run = report.run(size, limit, pooling)?;
                let x0 = i as f64 + group_pad + j as f64 * bar_w;
                Some((x0, x0 + bar_w, run.wall_ms))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x0, x1, ms)| {
                // A hair of white between neighbouring bars keeps them apart.
                Rectangle::new(
                    [(x0 + bar_w * 0.04, 0.0), (x1 - bar_w * 0.04, ms / div)],
                    color.filled(),
                )
            }))?
            .label(format::limit_header(limit))
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 22, y + 8)], color.filled()));
        if let Some(px) = font_px {
            let style = super::small_style(px).pos(Pos::new(HPos::Center, VPos::Bottom));
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
