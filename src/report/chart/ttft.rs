//! ttft.png and itl.png, for runs that streamed: time to first token and inter-token latency
//! by percentile for the largest batch, one colour per limit, pooled solid against unpooled
//! dashed, on latency.png's log percentile axis.

use std::path::Path;

use plotters::prelude::*;

use super::DrawResult;
use super::latency::{Curve, draw_curve, percentile_label, x_of};
use crate::metrics::DistributionRow;
use crate::report::table;
use crate::sweep::{RunSummary, SweepReport};

/// ttft.png: time to first token by percentile.
pub fn draw_ttft(path: &Path, report: &SweepReport) -> DrawResult {
    draw(
        path,
        report,
        (
            "Time to first token by percentile",
            "time to first token (ms)",
        ),
        |r| &r.llm.ttft_distribution,
    )
}

/// itl.png: inter-token latency (every gap between content chunks) by percentile.
pub fn draw_itl(path: &Path, report: &SweepReport) -> DrawResult {
    draw(
        path,
        report,
        (
            "Inter-token latency by percentile",
            "gap between content chunks (ms)",
        ),
        |r| &r.llm.itl_distribution,
    )
}

/// The curve of one distribution: (x, ms) for every row below 100 % (which has no x).
fn curve(rows: &[DistributionRow]) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.percentile < 1.0)
        .map(|r| (x_of(r.percentile), r.value_us as f64 / 1000.0))
        .collect()
}

fn draw(
    path: &Path,
    report: &SweepReport,
    (what, y_desc): (&str, &str),
    pick: fn(&RunSummary) -> &[DistributionRow],
) -> DrawResult {
    let root = BitMapBackend::new(path, super::SIZE).into_drawing_area();
    let size = table::sizes(report).last().copied().unwrap_or(0);
    let title = format!("{what}, {size} chains");
    let mut curves: Vec<Curve> = Vec::new();
    for (j, &limit) in table::limits(report).iter().enumerate() {
        for pooling in table::poolings(report) {
            if let Some(c) = report
                .run(size, limit, pooling)
                .map(|run| curve(pick(run)))
                .filter(|c| !c.is_empty())
            {
                curves.push((j, pooling, c));
            }
        }
    }
    if curves.is_empty() {
        return super::draw_empty(&root, &title, "No streamed content to plot.");
    }
    let points = || curves.iter().flat_map(|(_, _, c)| c.iter());
    let max_x = points().map(|p| p.0).fold(0.0, f64::max);
    let x_right = (max_x * 1.04).clamp(1.2, 6.0);
    let max_ms = points().map(|p| p.1).fold(0.0, f64::max).max(0.001);
    let mut keys = vec![0.0, 2f64.log10()];
    keys.extend((1..=x_right.floor() as i64).map(|k| k as f64));
    let mut chart = super::frame(&root, &title)?.build_cartesian_2d(
        super::KeyedAxis::new(0f64..x_right, keys),
        0f64..max_ms * 1.1,
    )?;
    let axes = super::Axes {
        x_desc: "percentile (log scale of 1/(1 − p))".to_string(),
        y_desc: y_desc.to_string(),
        x_tick: &|x| percentile_label(*x),
        y_tick: &|y| super::tick(*y),
        x_grid: true,
    };
    super::draw_axes(&mut chart, &axes)?;
    let limits = table::limits(report);
    for c in curves {
        draw_curve(&mut chart, &limits, c)?;
    }
    super::finish(&mut chart, &root, SeriesLabelPosition::LowerRight)
}
