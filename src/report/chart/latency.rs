//! latency.png: call latency by percentile for the largest batch, one colour per limit,
//! pooled solid against unpooled dashed. The x axis is HdrHistogram's: log10(1/(1-p)), so
//! the tail (99 %, 99.9 %) gets as much room as the median.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, KeyedChart, SIZE};
use crate::metrics::DistributionRow;
use crate::record::Pooling;
use crate::report::{format, table};
use crate::sweep::{RunSummary, SweepReport};

/// x position of a percentile (0..1) on the log axis.
fn x_of(p: f64) -> f64 {
    (1.0 / (1.0 - p)).log10()
}

/// Axis label of an x position: 0 %, 50 %, 90 %, 99 %, 99.9 %, …
pub(super) fn percentile_label(x: f64) -> String {
    let pct = (1.0 - 10f64.powf(-x)) * 100.0;
    let decimals = (x.round() as i64 - 2).max(0) as usize;
    format!("{pct:.decimals$} %")
}

/// The curve of one distribution: (x, ms) for every row below 100 % (which has no x).
fn curve(rows: &[DistributionRow]) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.percentile < 1.0)
        .map(|r| (x_of(r.percentile), r.value_us as f64 / 1000.0))
        .collect()
}

/// One line of the chart: the index of its limit, its pooling mode and its points.
pub(super) type Curve = (usize, Pooling, Vec<(f64, f64)>);

/// The curves of the largest batch `size`: one per limit and pooling mode whose picked
/// distribution has points.
fn curves(
    report: &SweepReport,
    size: usize,
    pick: fn(&RunSummary) -> &[DistributionRow],
) -> Vec<Curve> {
    let mut curves: Vec<Curve> = Vec::new();
    for (j, &limit) in table::limits(report).iter().enumerate() {
        for pooling in table::poolings(report) {
            if let Some(run) = report.run(size, limit, pooling) {
                let c = curve(pick(run));
                if !c.is_empty() {
                    curves.push((j, pooling, c));
                }
            }
        }
    }
    curves
}

/// Draws the chart into `path` (PNG).
pub fn draw(path: &Path, report: &SweepReport) -> DrawResult {
    plot(
        path,
        report,
        ("Call latency by percentile", "call latency (ms)"),
        "No successful calls to plot.",
        |r| &r.call_distribution,
    )
}

/// A percentile chart of the distribution `pick` takes from each run of the largest batch:
/// latency.png, and ttft.png / itl.png with the streaming distributions.
pub(super) fn plot(
    path: &Path,
    report: &SweepReport,
    (what, y_desc): (&str, &str),
    empty: &str,
    pick: fn(&RunSummary) -> &[DistributionRow],
) -> DrawResult {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let size = table::sizes(report).last().copied().unwrap_or(0);
    let title = format!("{what}, {size} chains");
    let curves = curves(report, size, pick);
    if curves.is_empty() {
        return super::draw_empty(&root, &title, empty);
    }
    let points = || curves.iter().flat_map(|(_, _, c)| c.iter());
    let max_x = points().map(|p| p.0).fold(0.0, f64::max);
    // End just past the data: with a few hundred calls the curve stops short of 99.9 %.
    let x_right = (max_x * 1.04).clamp(1.2, 6.0);
    // Never an empty range, even if every value rounds to 0 ms.
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
    for curve in curves {
        draw_curve(&mut chart, &limits, curve)?;
    }
    super::finish(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// One run's curve in its limit's colour: pooled solid, unpooled dashed.
fn draw_curve<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    limits: &[usize],
    (j, pooling, pts): Curve,
) -> DrawResult {
    let limit = limits.get(j).copied().unwrap_or(0);
    let color = super::color(j);
    let label = format!(
        "{}, {}",
        format::limit_header(limit),
        format::pooling_word(pooling)
    );
    match pooling {
        Pooling::On => {
            let style = color.stroke_width(3);
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(label)
                .legend(move |xy| super::solid_legend(xy, style));
        }
        Pooling::Off => {
            let style = color.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(pts, 9, 6, style))?
                .label(label)
                .legend(move |xy| super::dashed_legend(xy, style));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels_read_as_percentages() {
        assert_eq!(percentile_label(0.0), "0 %");
        assert_eq!(percentile_label(2f64.log10()), "50 %");
        assert_eq!(percentile_label(1.0), "90 %");
        assert_eq!(percentile_label(2.0), "99 %");
        assert_eq!(percentile_label(3.0), "99.9 %");
        assert_eq!(percentile_label(4.0), "99.99 %");
    }
}
