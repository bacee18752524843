//! Error bars of repeated sweeps: the 95 % interval of a wall time or a speedup, drawn as a
//! vertical whisker over the bar or point it belongs to. Runs without repeats draw none.

use plotters::prelude::*;

use super::{DrawResult, KeyedChart};

/// Whisker cap width in pixels.
const CAP_PX: u32 = 8;

/// Draws one whisker per `(x, lo, mid, hi)` in `color`.
pub(super) fn draw<'a, 'b: 'a>(
    chart: &mut KeyedChart<'a, 'b>,
    whiskers: &[(f64, f64, f64, f64)],
    color: RGBColor,
) -> DrawResult {
    if whiskers.is_empty() {
        return Ok(());
    }
    let style = color.mix(0.9).stroke_width(2);
    chart.draw_series(
        whiskers
            .iter()
            .map(|&(x, lo, mid, hi)| ErrorBar::new_vertical(x, lo, mid, hi, style, CAP_PX)),
    )?;
    Ok(())
}
