//! PNG charts drawn with plotters from a [`SweepReport`] (or a run's summary.json) alone, with an embedded DejaVu Sans
//! font so they render the same on a machine without any system fonts.
//!
//! Every chart is 1200×700 px, titled, with axis labels carrying units and a legend. Colours
//! come from the Okabe–Ito palette (distinguishable with colour-blindness); a limit keeps its
//! colour across charts.

mod bars;
mod error_bars;
mod latency;
pub mod limit_trace;
mod rate;
mod speedup;
mod steps;
mod timeline;
mod ttft;
mod wall_time;

use std::error::Error;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::manifest::RunSummaryFile;
use crate::sweep::SweepReport;

/// Pixel size of every chart: wide enough for a legend beside 4–8 lines.
pub const SIZE: (u32, u32) = (1200, 700);

/// What a chart function returns; plotters' errors are boxed and turned into
/// `ReportError::Chart` by the caller, which knows the file.
pub type DrawResult = Result<(), Box<dyn Error>>;

/// A chart: its file name and how to draw it into a PNG path.
pub type Chart = (&'static str, fn(&Path, &SweepReport) -> DrawResult);

/// A chart of a `loadchain run` folder: its file name and how to draw it from summary.json.
pub type RunChart = (&'static str, fn(&Path, &RunSummaryFile) -> DrawResult);

/// Every chart of a `loadchain run` folder: per-step latency and calls in flight.
pub const RUN_CHARTS: [RunChart; 2] = [
    ("latency.png", steps::draw),
    ("timeline.png", timeline::draw_run),
];

/// Drawn besides [`CHARTS`] for an open-loop (`--rates`) sweep.
pub const RATE_CHART: Chart = ("latency_vs_rate.png", rate::draw);

/// Every chart of a report folder.
pub const CHARTS: [Chart; 4] = [
    ("speedup.png", speedup::draw),
    ("wall_time.png", wall_time::draw),
    ("latency.png", latency::draw),
    ("timeline.png", timeline::draw),
];

/// The charts of a report folder whose runs streamed: TTFT and ITL percentile curves.
pub const STREAM_CHARTS: [Chart; 2] = [("ttft.png", ttft::draw_ttft), ("itl.png", ttft::draw_itl)];

/// Whether a report's runs streamed, so [`STREAM_CHARTS`] have something to show.
pub fn streamed(report: &SweepReport) -> bool {
    report.runs.iter().any(|r| r.ttft.is_some())
}

/// Font family name the charts use; registered from the embedded DejaVu Sans.
const FONT: &str = "sans-serif";

/// Registers the embedded fonts once per process; plotters' ab_glyph backend only knows
/// registered fonts, so without this every text draw would fail.
pub fn ensure_fonts() -> Result<(), String> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font could not be loaded".to_string())
    }
}

/// Okabe–Ito colours, without its yellow (unreadable on white).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(60, 60, 60),
];

/// The colour of the `i`-th series (limit or size, ascending).
fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Grey for reference lines (ideal speedup).
const REFERENCE: RGBColor = RGBColor(120, 120, 120);

/// Title text style.
fn title_style() -> TextStyle<'static> {
    (FONT, 30).into_font().style(FontStyle::Bold).into()
}

/// Axis description style (the "limit", "ms" labels).
fn axis_desc_style() -> TextStyle<'static> {
    (FONT, 22).into()
}

/// Tick label style.
fn tick_style() -> TextStyle<'static> {
    (FONT, 18).into()
}

/// Legend text style.
fn legend_style() -> TextStyle<'static> {
    (FONT, 18).into()
}

/// Small text (bar values).
fn small_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into()
}

/// Soft grid lines: visible for reading values, quiet next to the data.
fn grid(bold: bool) -> ShapeStyle {
    if bold {
        RGBColor(210, 210, 210).stroke_width(1)
    } else {
        RGBColor(238, 238, 238).stroke_width(1)
    }
}

/// A legend sample for a dashed series: three short dashes.
fn dashed_legend<'a, DB: DrawingBackend + 'a>(
    (x, y): (i32, i32),
    style: ShapeStyle,
) -> impl IntoDynElement<'a, DB, (i32, i32)> {
    EmptyElement::at((x, y))
        + PathElement::new(vec![(0, 0), (6, 0)], style)
        + PathElement::new(vec![(10, 0), (16, 0)], style)
        + PathElement::new(vec![(20, 0), (26, 0)], style)
}

/// A legend sample for a solid series.
fn solid_legend<'a, DB: DrawingBackend + 'a>(
    (x, y): (i32, i32),
    style: ShapeStyle,
) -> impl IntoDynElement<'a, DB, (i32, i32)> {
    PathElement::new(vec![(x, y), (x + 26, y)], style)
}

/// Clears the canvas and sets the title, margins and axis areas every chart shares.
fn frame<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> Result<ChartBuilder<'a, 'static, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, title_style())
        .margin(24)
        .x_label_area_size(64)
        .y_label_area_size(80);
    Ok(builder)
}

/// A chart over a [`KeyedAxis`] and a linear y axis, as all but the timeline are.
type KeyedChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<KeyedAxis, RangedCoordf64>>;

/// What a chart's axes say: descriptions carrying units, and how a tick value reads.
struct Axes<'f> {
    x_desc: String,
    y_desc: String,
    x_tick: &'f dyn Fn(&f64) -> String,
    y_tick: &'f dyn Fn(&f64) -> String,
    /// Vertical grid lines; grouped bars go without, their groups need no guide.
    x_grid: bool,
}

/// Draws the grid, the axes and their labels in the style every chart shares.
fn draw_axes<X, Y>(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>,
    axes: &Axes<'_>,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut mesh = chart.configure_mesh();
    if !axes.x_grid {
        mesh.disable_x_mesh();
    }
    mesh.bold_line_style(grid(true))
        .light_line_style(grid(false))
        .max_light_lines(1)
        .x_desc(axes.x_desc.as_str())
        .y_desc(axes.y_desc.as_str())
        .axis_desc_style(axis_desc_style())
        .label_style(tick_style())
        .x_label_formatter(axes.x_tick)
        .y_label_formatter(axes.y_tick)
        .draw()?;
    Ok(())
}

/// Draws the legend box every chart shares, at `position`, and writes the PNG.
fn finish<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .margin(16)
        .label_font(legend_style())
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws a titled chart that says there is nothing to show, rather than failing: a sweep
/// with no successful calls still gets a complete report folder.
fn draw_empty(root: &DrawingArea<BitMapBackend<'_>, Shift>, title: &str, why: &str) -> DrawResult {
    root.fill(&WHITE)?;
    let (w, h) = SIZE;
    root.draw(&Text::new(title.to_string(), (40, 30), title_style()))?;
    let style = legend_style().pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        why.to_string(),
        ((w / 2) as i32, (h / 2) as i32),
        style,
    ))?;
    root.present()?;
    Ok(())
}

/// A linear f64 axis with ticks exactly at `keys` (the measured limits, the percentiles
/// 50 %/90 %/99 %…). plotters' own `with_key_points` cannot be combined with a custom label
/// formatter on f64 axes, hence this small axis type.
struct KeyedAxis {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl KeyedAxis {
    /// An axis over `range` with ticks at `keys`.
    fn new(range: Range<f64>, keys: Vec<f64>) -> KeyedAxis {
        KeyedAxis {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Picks a readable time unit for an axis whose largest value is `max_ms`: the divisor and
/// the unit's name.
fn time_unit(max_ms: f64) -> (f64, &'static str) {
    if max_ms < 1_000.0 {
        (1.0, "ms")
    } else if max_ms < 300_000.0 {
        (1_000.0, "s")
    } else {
        (60_000.0, "min")
    }
}

/// Axis tick text for a value: no trailing `.0` noise on round numbers.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_unit_switches_at_readable_points() {
        assert_eq!(time_unit(850.0).1, "ms");
        assert_eq!(time_unit(1_650.0).1, "s");
        assert_eq!(time_unit(42_000.0).1, "s");
        assert_eq!(time_unit(2_500_000.0).1, "min");
    }

    #[test]
    fn ticks_drop_float_noise() {
        assert_eq!(tick(5.0), "5");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(0.25), "0.25");
    }
}
