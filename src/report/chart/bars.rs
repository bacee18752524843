//! Grouped bars, shared by wall_time.png (a group per batch size, a bar per limit) and a run's
//! latency.png (a group per step, a bar per percentile): the group axis, and one series of
//! bars with its legend entry and optional value labels.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Axes, DrawResult, KeyedAxis, KeyedChart};
use crate::report::format;

/// One bar: left edge, right edge (in group units) and its value in ms.
pub(super) type Bar = (f64, f64, f64);

/// Builds the frame of a grouped bar chart and draws its axes: `groups` name the groups
/// left to right (at x = 0.5, 1.5, …), `y_top` is the axis' end in the chart's time unit.
pub(super) fn chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    groups: &[String],
    y_top: f64,
    x_desc: &str,
    y_desc: String,
) -> Result<KeyedChart<'a, 'b>, Box<dyn std::error::Error>> {
    let centers: Vec<f64> = (0..groups.len()).map(|i| i as f64 + 0.5).collect();
    let mut chart = super::frame(root, title)?.build_cartesian_2d(
        KeyedAxis::new(0f64..groups.len() as f64, centers),
        0f64..y_top,
    )?;
    let group_name = |x: &f64| {
        let i = x.floor().max(0.0) as usize;
        groups.get(i).cloned().unwrap_or_default()
    };
    let axes = Axes {
        x_desc: x_desc.to_string(),
        y_desc,
        x_tick: &group_name,
        y_tick: &|y| super::tick(*y),
        x_grid: false,
    };
    super::draw_axes(&mut chart, &axes)?;
    Ok(chart)
}

/// How the series of one grouped bar chart are drawn.
pub(super) struct Series {
    /// Width of one bar, in group units.
    pub width: f64,
    /// Divisor from ms to the chart's time unit.
    pub div: f64,
    /// The largest value in ms; value labels float a fixed share of it above their bar.
    pub max_ms: f64,
    /// Style of the value printed on each bar; None leaves the values out.
    pub values: Option<TextStyle<'static>>,
}

impl Series {
    /// Draws one series of bars in `color` with its legend entry `label`.
    pub fn draw<'a, 'b: 'a>(
        &self,
        chart: &mut KeyedChart<'a, 'b>,
        bars: &[Bar],
        color: RGBColor,
        label: String,
    ) -> DrawResult {
        let (w, div) = (self.width, self.div);
        chart
            .draw_series(bars.iter().map(|&(x0, x1, ms)| {
                // A hair of white between neighbouring bars keeps them apart.
                Rectangle::new(
                    [(x0 + w * 0.04, 0.0), (x1 - w * 0.04, ms / div)],
                    color.filled(),
                )
            }))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 22, y + 8)], color.filled()));
        if let Some(style) = &self.values {
            chart.draw_series(bars.iter().map(|&(x0, x1, ms)| {
                Text::new(
                    format::duration_ms(ms),
                    ((x0 + x1) / 2.0, ms / div + self.max_ms / div * 0.008),
                    style.clone(),
                )
            }))?;
        }
        Ok(())
    }
}
