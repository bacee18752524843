//! [`ReportError`]: why a report or run folder could not be read, re-rendered or written.

use std::io;
use std::path::{Path, PathBuf};

use crate::lock::LockError;

/// Why a report could not be read or written. The caller branches on
/// [`ReportError::is_input_error`] to pick the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder of the report could not be written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// report.json exists but could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// report.json is not valid JSON, or not the shape of a report.
    #[error(
        "{}: not a valid loadchain report at line {}, column {}",
        path.display(), source.line(), source.column()
    )]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error, with the line and column.
        source: serde_json::Error,
    },
    /// report.json has no `schema_version`: not something loadchain wrote.
    #[error("{}: no schema_version field; not a loadchain report", path.display())]
    MissingSchema {
        /// The file.
        path: PathBuf,
    },
    /// report.json was written by a newer loadchain with a layout this build cannot read.
    #[error(
        "{}: report schema version {found} is newer than this loadchain reads ({supported}); \
         upgrade loadchain to read it",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema_version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// report.json is older than the oldest layout this build still reads.
    #[error(
        "{}: report schema version {found} is older than this loadchain reads (at least \
         {oldest}); re-run the sweep or use an older loadchain",
        path.display()
    )]
    OlderSchema {
        /// The file.
        path: PathBuf,
        /// Its schema_version.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
    },
    /// The path given as a report has no report.json (sweep) or summary.json (run).
    #[error(
        "{}: no report.json or summary.json found; not a loadchain sweep report or run folder",
        path.display()
    )]
    NotAReport {
        /// The folder or file given.
        path: PathBuf,
    },
    /// `loadchain report A B` was given a `run` folder: only sweep reports are compared.
    #[error(
        "{} is a `loadchain run` folder; comparing runs is not supported, `loadchain report \
         A B` compares two sweep reports (give one run folder alone to re-render it)",
        path.display()
    )]
    RunNotComparable {
        /// The run folder given.
        path: PathBuf,
    },
    /// Another live loadchain process is writing this report folder.
    #[error("{message}")]
    InUse {
        /// Which folder and which process.
        message: String,
    },
    /// The output folder already exists; reports are never overwritten.
    #[error("{} already exists; choose another output folder or remove it", path.display())]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// A CSV file could not be written.
    #[error("cannot write {}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The csv crate's error.
        source: ::csv::Error,
    },
    /// report.json could not be serialized.
    #[error("cannot serialize {}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A chart could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Chart {
        /// The PNG file.
        path: PathBuf,
        /// plotters' error, as text (its error type is not `Send`).
        message: String,
    },
}

impl ReportError {
    /// Whether the user gave a bad input (bad, missing or newer-schema report.json, an output
    /// folder that exists): exit code 2. Write failures are runtime failures: exit code 1.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            ReportError::Read { .. }
                | ReportError::Json { .. }
                | ReportError::MissingSchema { .. }
                | ReportError::NewerSchema { .. }
                | ReportError::OlderSchema { .. }
                | ReportError::NotAReport { .. }
                | ReportError::RunNotComparable { .. }
                | ReportError::Exists { .. }
                | ReportError::InUse { .. }
        )
    }
}

/// A lock held by another process, as the user should read it: which folder, which pid.
pub(super) fn in_use(e: LockError, out: &Path) -> ReportError {
    match e {
        LockError::InUse { pid, .. } => ReportError::InUse {
            message: format!(
                "{} is in use by another loadchain run (pid {pid})",
                out.display()
            ),
        },
        LockError::Io { path, source } => ReportError::Io { path, source },
    }
}
