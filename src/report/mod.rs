//! Reports: every output format, computed from a [`crate::sweep::SweepReport`] alone.
//! (Placeholder API until the report module lands.)

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::record::{CallRecord, Pooling};
use crate::sweep::SweepReport;

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("report error")]
pub struct ReportError;

impl ReportError {
    /// Placeholder.
    pub fn is_input_error(&self) -> bool {
        true
    }
}

/// Placeholder.
pub struct RunCalls<'a> {
    /// Size.
    pub size: usize,
    /// Limit.
    pub limit: usize,
    /// Pooling.
    pub pooling: Pooling,
    /// Calls.
    pub calls: &'a [CallRecord],
}

/// Placeholder.
pub fn write_report(
    _out: &Path,
    _report: &SweepReport,
    _calls: &[RunCalls<'_>],
) -> Result<(), ReportError> {
    Ok(())
}

/// Placeholder.
pub fn default_report_dir(base: &Path, _now: SystemTime, kind: &str) -> PathBuf {
    base.join(kind)
}

/// Placeholder.
pub fn rerender(_dir: &Path) -> Result<(), ReportError> {
    Ok(())
}

/// Placeholder.
pub fn read_report(_dir: &Path) -> Result<SweepReport, ReportError> {
    Err(ReportError)
}

/// Placeholder.
pub fn compare(_a: &SweepReport, _b: &SweepReport) -> String {
    String::new()
}

/// Placeholder.
pub fn render_terminal(report: &SweepReport) -> String {
    format!(
        "{:#?}",
        report
            .runs
            .iter()
            .map(|r| (r.size, r.limit, r.pooling, r.wall_ms, r.speedup))
            .collect::<Vec<_>>()
    )
}
