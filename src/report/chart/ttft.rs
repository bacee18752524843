//! ttft.png and itl.png, for runs that streamed: time to first token and inter-token latency
//! by percentile for the largest batch, one colour per limit, pooled solid against unpooled
//! dashed, on latency.png's log percentile axis.

use std::path::Path;

use super::DrawResult;
use super::latency::plot;
use crate::sweep::SweepReport;

/// The empty chart's note: the run streamed nothing with content.
const EMPTY: &str = "No streamed content to plot.";

/// ttft.png: time to first token by percentile.
pub fn draw_ttft(path: &Path, report: &SweepReport) -> DrawResult {
    plot(
        path,
        report,
        (
            "Time to first token by percentile",
            "time to first token (ms)",
        ),
        EMPTY,
        |r| &r.llm.ttft_distribution,
    )
}

/// itl.png: inter-token latency (every gap between content chunks) by percentile.
pub fn draw_itl(path: &Path, report: &SweepReport) -> DrawResult {
    plot(
        path,
        report,
        (
            "Inter-token latency by percentile",
            "gap between content chunks (ms)",
        ),
        EMPTY,
        |r| &r.llm.itl_distribution,
    )
}
