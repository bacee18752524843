//! The tables every human-readable report shows, built once as plain cells and rendered either
//! as Markdown (summary.md) or with comfy-table (terminal), so the two never disagree.
//!
//! This module decides what a table contains; [`super::format`] decides how a number reads.
//! Here: the [`Table`] type and the axes of a sweep (sizes, limits, pooling modes measured);
//! `results` builds the result tables, `issues` the issue sentences, `settings` the settings
//! rows.

mod cost;
mod issues;
mod llm;
mod quality;
mod results;
mod settings;

use std::collections::BTreeSet;

use comfy_table::{CellAlignment, ContentArrangement, presets};

use crate::record::Pooling;
use crate::sweep::SweepReport;

pub(crate) use self::cost::{cost_note, cost_table};
pub(crate) use self::issues::{NO_ISSUES, error_words, issues, saved_words, stale_words};
pub(crate) use self::llm::{
    attainment as attainment_cell, goodput as goodput_cell, llm_note, llm_table,
};
pub(crate) use self::quality::{QUALITY_NOTE, quality_run_table, quality_table};
pub(crate) use self::results::{
    course_table, detail_table, pooling_table, step_table, streaming_table,
};
pub(crate) use self::settings::{pacing_rows, settings_rows};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table as plain text cells, independent of where it is shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first column is left-aligned and whose other columns hold numbers.
    pub(crate) fn numeric(header: Vec<String>) -> Table {
        let align = (0..header.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Table {
            header,
            align,
            rows: Vec::new(),
        }
    }

    /// GitHub-flavoured Markdown, with `|` in cells escaped.
    pub fn to_markdown(&self) -> String {
        let row = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = row(&self.header);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => ":---",
                Align::Right => "---:",
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out
    }

    /// A boxed terminal table. Width is fixed by the content (not the terminal), so output
    /// piped to a file or compared in a test is the same everywhere.
    pub fn to_terminal(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty()
            .set_header(self.header.clone());
        for r in &self.rows {
            t.add_row(r.clone());
        }
        for (i, a) in self.align.iter().enumerate() {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(match a {
                    Align::Left => CellAlignment::Left,
                    Align::Right => CellAlignment::Right,
                });
            }
        }
        t.to_string()
    }
}

/// Batch sizes measured, ascending.
pub(crate) fn sizes(report: &SweepReport) -> Vec<usize> {
    let set: BTreeSet<usize> = report.runs.iter().map(|r| r.key.size).collect();
    set.into_iter().collect()
}

/// Limits measured, ascending.
pub(crate) fn limits(report: &SweepReport) -> Vec<usize> {
    let set: BTreeSet<usize> = report.runs.iter().map(|r| r.key.limit).collect();
    set.into_iter().collect()
}

/// Pooling modes measured, `on` first.
pub(crate) fn poolings(report: &SweepReport) -> Vec<Pooling> {
    let set: BTreeSet<Pooling> = report.runs.iter().map(|r| r.key.pooling).collect();
    set.into_iter().collect()
}

/// The mode single-mode charts show: pooled when measured, else the only one.
pub(crate) fn main_pooling(report: &SweepReport) -> Pooling {
    poolings(report).first().copied().unwrap_or(Pooling::On)
}
