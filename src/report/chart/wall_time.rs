//! wall_time.png: the course table as grouped bars — one group per batch size, one bar per
//! limit, bar height = wall time of the whole batch, with the value printed on each bar.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::bars::{self, Bar};
use super::{DrawResult, KeyedChart, SIZE};
use crate::record::Pooling;
use crate::report::{format, table};
use crate::sweep::SweepReport;

/// Fraction of a group's width the bars take; the rest separates the groups.
const GROUP_FILL: f64 = 0.8;
/// Widest a bar may be, as a fraction of its group.
const MAX_BAR: f64 = 0.3;

/// The largest font (16 px down to 10 px) at which every bar's value label fits within its
/// bar; None when even 10 px would overlap the neighbours, and the labels are left out.
fn label_font_px(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    report: &SweepReport,
    pooling: Pooling,
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
    let max_ms = report
        .runs
        .iter()
        .filter(|r| r.key.pooling == pooling)
        // Room for the error bars' tops too.
        .map(|r| {
            let hi = r.repeats.as_ref().and_then(|x| x.wall_ms).map(|c| c.hi);
            hi.map_or(r.wall_ms, |hi| hi.max(r.wall_ms))
        })
        .fold(0.0, f64::max);
    if sizes.is_empty() || max_ms <= 0.0 {
        return super::draw_empty(&root, &title, "No runs were measured.");
    }
    let (div, unit) = super::time_unit(max_ms);
    let groups: Vec<String> = sizes.iter().map(|s| format!("{s} chains")).collect();
    let mut chart = bars::chart(
        &root,
        &title,
        &groups,
        max_ms / div * 1.12,
        "batch size",
        format!("wall time ({unit}), lower is better"),
    )?;
    draw_limits(&mut chart, &root, report, pooling, (div, max_ms))?;
    super::finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

/// One series of bars per limit, a bar per batch size; `div` turns ms into the axis' unit.
fn draw_limits<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    report: &SweepReport,
    pooling: Pooling,
    (div, max_ms): (f64, f64),
) -> DrawResult {
    let sizes = table::sizes(report);
    let limits = table::limits(report);
    // A lone bar per group would fill the whole group; keep bars bar-shaped.
    let bar_w = (GROUP_FILL / limits.len() as f64).min(MAX_BAR);
    let group_pad = (1.0 - bar_w * limits.len() as f64) / 2.0;
    let series = bars::Series {
        width: bar_w,
        div,
        max_ms,
        values: label_font_px(root, report, pooling, bar_w / sizes.len() as f64)
            .map(|px| super::small_style(px).pos(Pos::new(HPos::Center, VPos::Bottom))),
    };
    for (j, &limit) in limits.iter().enumerate() {
        let bars: Vec<Bar> = sizes
            .iter()
            .enumerate()
            .filter_map(|(i, &size)| {
                let run = report.run(size, limit, pooling)?;
                let x0 = i as f64 + group_pad + j as f64 * bar_w;
                Some((x0, x0 + bar_w, run.wall_ms))
            })
            .collect();
        series.draw(chart, &bars, super::color(j), format::limit_header(limit))?;
        let whiskers: Vec<(f64, f64, f64, f64)> = sizes
            .iter()
            .enumerate()
            .filter_map(|(i, &size)| {
                let run = report.run(size, limit, pooling)?;
                let ci = run.repeats.as_ref()?.wall_ms?;
                let x = i as f64 + group_pad + (j as f64 + 0.5) * bar_w;
                Some((x, ci.lo / div, run.wall_ms / div, ci.hi / div))
            })
            .collect();
        super::error_bars::draw(chart, &whiskers, BLACK)?;
    }
    Ok(())
}
