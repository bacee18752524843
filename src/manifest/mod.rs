//! The durable files of `loadchain run`: the CSV manifest in; `results.jsonl`, `failed.csv` and
//! `summary.json` out; and resuming an interrupted batch from what `results.jsonl` already holds.
//!
//! Owns: parsing and checking the manifest ([`Manifest`]), the append-only results log and its
//! crash repair ([`ResultsLog`], [`Resume`]), choosing which rows still need to run
//! ([`select_rows`]), and the end-of-run files ([`RunSummaryFile`], [`write_failed_csv`]).
//! Does not own: running chains (runner), flags (cli/config), or rendering reports.
//!
//! Nothing here carries request headers or API keys, so nothing written from here can leak one.
//! NOTE: keep it that way; add no field that could hold a header, URL with credentials or key.

mod input;
mod results;
mod summary;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use input::{Manifest, Picked};
pub use results::{
    RESULTS_FILE, ResultError, ResultLine, ResultStatus, ResultsLog, Resume, StepResult,
    select_rows,
};
pub use summary::{
    FAILED_FILE, FailedRow, RunSettings, RunSummaryFile, SCHEMA_VERSION, SUMMARY_FILE, Tally,
    speedup, write_failed_csv,
};

/// A place in a file, 1-based, as a user's editor shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// File line; the header is line 1.
    pub line: usize,
    /// Column, when it narrows the problem down (a field number, or a byte or char column).
    pub column: Option<usize>,
}

impl Position {
    fn line(line: usize) -> Position {
        Position { line, column: None }
    }

    fn at(line: usize, column: usize) -> Position {
        Position {
            line,
            column: Some(column),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {c}", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

/// Why the manifest or the output folder cannot be used. Every message is one line naming the
/// file (and line) so `main` can print it as is.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The manifest is missing or unreadable.
    #[error("cannot read manifest {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// The manifest as a whole is unusable (empty file).
    #[error("manifest {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A specific place in the manifest is wrong.
    #[error("manifest {path}: {at}: {message}")]
    InvalidAt {
        path: PathBuf,
        at: Position,
        message: String,
    },
    /// The output folder holds another run's results and `--resume` was not given.
    #[error(
        "{dir} holds results of another run; pass --resume to continue it or choose another --out"
    )]
    OtherRun { dir: PathBuf },
    /// `--out` names something that is not a folder.
    #[error("--out {dir} exists and is not a folder")]
    NotAFolder { dir: PathBuf },
    /// A line of results.jsonl other than the last does not parse: not a crash artefact,
    /// so it is not repaired silently.
    #[error(
        "results log {path}: {at}: not a result line ({message}); only a torn last line is \
         repaired automatically, so fix or delete this line, or choose another --out"
    )]
    CorruptLog {
        path: PathBuf,
        at: Position,
        message: String,
    },
    /// `--out` is another process's, or its lock file cannot be made.
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// Reading or writing an output file failed (disk full, permissions).
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl ManifestError {
    /// Whether the user's input is at fault (exit code 2) rather than the machine (exit code 1).
    /// Only failing output I/O is a runtime error.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            ManifestError::Io { .. } | ManifestError::Lock(crate::lock::LockError::Io { .. })
        )
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ManifestError {
        let path = path.to_path_buf();
        move |source| ManifestError::Io { op, path, source }
    }
}

/// Writes `path` atomically and durably through the one writer every output file uses
/// ([`crate::files::write_atomically`]), naming the file in the error.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), ManifestError> {
    crate::files::write_atomically(path, write).map_err(ManifestError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_names_the_file() {
        let err = write_atomically(Path::new("/nonexistent-dir/x.json"), |w| w.write_all(b"x"))
            .unwrap_err();
        assert!(!err.is_input_error());
        assert!(
            err.to_string()
                .contains("cannot write /nonexistent-dir/x.json"),
            "{err}"
        );
    }

    #[test]
    fn only_io_failures_are_runtime_errors() {
        let io = ManifestError::Io {
            op: "write",
            path: "x".into(),
            source: io::Error::other("disk full"),
        };
        assert!(!io.is_input_error());
        assert!(ManifestError::OtherRun { dir: "d".into() }.is_input_error());
    }
}
