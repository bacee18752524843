//! The quality table: per run, why generation stopped, empty outputs, output tokens, and how
//! the final outputs compare with the baseline run's (exact matches, token-set Jaccard).
//! Shown in every sweep and run report whose runs carry a quality section.

use super::{Align, Table};
use crate::metrics::quality::Quality;
use crate::sweep::SweepReport;

/// What the quality columns mean, printed under the table.
pub(crate) const QUALITY_NOTE: &str = "Finish reasons and output tokens count successful calls \
     (every step, retries included); length = cut by max_tokens (truncated), unknown = the API \
     did not say. Empty = successful rows whose final output is blank. Exact = rows whose final \
     output equals the baseline run's (the first run of the same size), of the rows that \
     succeeded in both. Similarity: token-set Jaccard (lowercased words) of each row's final \
     output against the baseline's, over the first 4,096 rows, as p10 / p50.";

/// The finish, empty and token columns.
const HEAD: [&str; 6] = [
    "Stop",
    "Length",
    "Other",
    "Unknown",
    "Empty",
    "Output tokens p50 / p99",
];

/// The cells of `HEAD` for one run.
pub(crate) fn quality_cells(q: &Quality) -> Vec<String> {
    vec![
        q.finish.stop.to_string(),
        q.finish.length.to_string(),
        q.finish.other.to_string(),
        q.finish.unknown.to_string(),
        q.empty.to_string(),
        q.output_tokens
            .map_or("–".to_string(), |t| format!("{} / {}", t.p50, t.p99)),
    ]
}

/// A one-run table of the `HEAD` columns (`loadchain run`: no baseline to compare with).
pub(crate) fn quality_run_table(q: &Quality) -> Table {
    let mut t = Table::numeric(HEAD.iter().map(|h| h.to_string()).collect());
    t.align[0] = Align::Right;
    t.rows.push(quality_cells(q));
    t
}

/// One row per run: size, limit, pooling, the `HEAD` columns, exact matches and the
/// similarity. None when no run has a quality section (reports written before it).
pub(crate) fn quality_table(report: &SweepReport) -> Option<Table> {
    if report.runs.iter().all(|r| r.quality.is_none()) {
        return None;
    }
    let header: Vec<String> = ["Size", "Limit", "Pooling"]
        .iter()
        .chain(&HEAD)
        .chain(&["Exact", "Similarity p10 / p50"])
        .map(|h| h.to_string())
        .collect();
    let mut t = Table::numeric(header);
    t.align[2] = Align::Left;
    for r in &report.runs {
        let Some(q) = &r.quality else { continue };
        let mut row = vec![
            r.key.size.to_string(),
            r.key.limit.to_string(),
            r.key.pooling.to_string(),
        ];
        row.extend(quality_cells(q));
        row.push(match (q.exact_matches, q.compared) {
            (Some(e), Some(c)) => format!("{e}/{c}"),
            _ => "baseline".to_string(),
        });
        row.push(q.similarity.as_ref().map_or("–".to_string(), |s| {
            format!("{:.3} / {:.3}", s.p10, s.p50)
        }));
        t.rows.push(row);
    }
    Some(t)
}
