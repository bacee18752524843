//! The cost table: what each run cost at `--price`, per chain, on retries, and per step.
//! Left out of every report when no price was given.

use super::{Align, Table};
use crate::cost::money;
use crate::sweep::SweepReport;

/// One row per run: total, per chain, on retries, tokens, then each step's cost.
pub(crate) fn cost_table(report: &SweepReport) -> Option<Table> {
    let first = report.runs.iter().find_map(|r| r.cost.as_ref())?;
    let mut header: Vec<String> = [
        "Size",
        "Limit",
        "Pooling",
        "Total",
        "Per chain",
        "Retries",
        "Paid twice",
        "Input tokens",
        "Output tokens",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    header.extend(first.per_step.iter().map(|s| format!("Step {}", s.step)));
    let mut t = Table::numeric(header);
    t.align[2] = Align::Left;
    for r in &report.runs {
        let Some(c) = &r.cost else { continue };
        let mut row = vec![
            r.key.size.to_string(),
            r.key.limit.to_string(),
            r.key.pooling.to_string(),
            money(c.total),
            c.per_chain.map_or("–".to_string(), money),
            money(c.retries),
            money(c.redone),
            c.input_tokens.to_string(),
            c.output_tokens.to_string(),
        ];
        row.extend(c.per_step.iter().map(|s| money(s.cost)));
        row.resize(t.header.len(), "–".to_string());
        t.rows.push(row);
    }
    Some(t)
}

/// The sentence under the table: the price, and a warning when usage was missing.
pub(crate) fn cost_note(report: &SweepReport) -> Option<String> {
    let first = report.runs.iter().find_map(|r| r.cost.as_ref())?;
    let missing: u64 = report
        .runs
        .iter()
        .filter_map(|r| r.cost.as_ref())
        .map(|c| c.calls_without_usage)
        .sum();
    let mut s = format!(
        "Priced at in={} / out={} per 1M tokens, from the tokens the API reported; \
         retries = backoff retries and retry passes; paid twice = successful calls whose step \
         a retry pass ran again.",
        first.price_in, first.price_out
    );
    if missing > 0 {
        s.push_str(&format!(
            " {missing} successful calls reported no usage and cost 0 here: totals are a lower bound."
        ));
    }
    Some(s)
}
