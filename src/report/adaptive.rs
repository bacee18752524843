//! The recommended limit of an `auto` run, as the terminal and summary.md say it, and its
//! chart, written beside the others only when there is one.

use std::path::Path;

use super::{ReportError, chart};
use crate::runner::AdaptiveOutcome;

/// `recommended limit: 10 (settled after 4.2 s)`, the line the terminal and summary.md show.
pub fn line(a: &AdaptiveOutcome) -> String {
    let how = match a.limit_settled_ms {
        Some(ms) => format!("settled after {:.1} s", ms / 1000.0),
        None => "the run ended before the limit settled: a lower bound".to_string(),
    };
    format!("recommended limit: {} ({how})", a.recommended_limit)
}

/// summary.md's paragraph: the line, and the chart.
pub fn markdown(a: &AdaptiveOutcome) -> String {
    format!(
        "## Adaptive limit\n\n{}. The limit started at 1, rose by one per window while calls \
         succeeded, and was cut on 429s or latency inflation.\n\n![limit_trace]({})\n\n",
        line(a),
        chart::limit_trace::FILE_NAME
    )
}

/// Draws limit_trace.png into `dir` when there is a trace.
pub fn write_chart(dir: &Path, a: Option<&AdaptiveOutcome>) -> Result<(), ReportError> {
    match a {
        Some(a) => super::draw_chart(&dir.join(chart::limit_trace::FILE_NAME), |tmp| {
            chart::limit_trace::draw(tmp, a)
        }),
        None => Ok(()),
    }
}
