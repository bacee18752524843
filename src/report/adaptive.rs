//! The recommended limit of an `auto` run, as the terminal and summary.md say it, and its
//! chart, written beside the others only when there is one.

use std::path::Path;

use super::{ReportError, chart};
use crate::runner::{AdaptiveOutcome, Basis, MIN_SATURATED};

/// `recommended limit: 10 (settled after 4.2 s)`, the line the terminal and summary.md show,
/// saying when the figure is only a lower bound.
pub fn line(a: &AdaptiveOutcome) -> String {
    let how = match (a.recommendation_basis, a.limit_settled_ms) {
        (Basis::Measured, Some(ms)) => format!(
            "settled after {:.1} s; 95 % of the goodput measured at the quota's ceiling",
            ms / 1000.0
        ),
        (Basis::Measured, None) => "95 % of the goodput measured at the quota's ceiling; \
             the run ended before the limit settled"
            .to_string(),
        (Basis::LowerBound, _) => {
            "nothing pushed back, neither 429s nor queuing: a lower bound".to_string()
        }
        (Basis::TooShort, _) => format!(
            "the run was too short to tell: fewer than {MIN_SATURATED} windows reached the \
             quota's ceiling; the highest limit that ran below it, a lower bound"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_the_recommendation_rests_on() {
        let mut a = AdaptiveOutcome {
            recommended_limit: 10,
            limit_trace: Vec::new(),
            limit_settled_ms: Some(4200.0),
            recommendation_basis: Basis::Measured,
        };
        assert!(line(&a).starts_with("recommended limit: 10 (settled after 4.2 s; 95 % "));
        a.recommendation_basis = Basis::LowerBound;
        assert!(line(&a).ends_with("a lower bound)"), "{}", line(&a));
        a.recommendation_basis = Basis::TooShort;
        assert!(line(&a).contains("too short to tell"), "{}", line(&a));
    }
}
