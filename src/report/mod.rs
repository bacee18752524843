//! Reports: every output format, computed from a [`SweepReport`] (a sweep) or a
//! [`RunSummaryFile`] (a `loadchain run`) alone.
//!
//! A sweep's report folder holds report.json (the source of truth), summary.csv, calls.csv,
//! summary.md, one `.hgrm` per run and four PNG charts. It is written into a hidden temporary
//! folder and renamed into place at the end, so a crash never leaves half a report.
//! Everything except calls.csv can be rebuilt from report.json ([`rerender`]).
//! A run folder gets calls.csv, summary.md, latency.png and timeline.png next to its
//! summary.json ([`write_run`]); all but calls.csv are rebuilt from summary.json.
//! Every file goes through [`crate::files`]' atomic, fsynced writer.
//!
//! This module owns formats and files; it never touches the network and knows nothing of how
//! the runs were measured.

mod adaptive;
mod calls;
pub(crate) mod chart;
pub(crate) mod csv;
mod error;
pub(crate) mod format;
pub(crate) mod hgrm;
mod json;
mod llm_text;
mod markdown;
mod openloop;
mod run;
mod run_md;
pub(crate) mod significance;
pub(crate) mod table;
#[cfg(test)]
pub(crate) mod tests;
mod text;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::files::temp_sibling;
use crate::lock::DirLock;
use crate::manifest::RunSummaryFile;
use crate::record::RunCalls;
use crate::sweep::SweepReport;

pub use self::calls::CallsCsv;
pub use self::csv::{CallRow, SummaryRow};
pub use self::error::ReportError;
use self::error::in_use;
pub use self::json::MIN_SCHEMA_VERSION;
pub use self::run::{read_run, run_text, write_run};
pub use self::significance::{
    CellChange, Comparison, comparison, parse_regressed, regressed_verdict,
};

/// File name of the per-call log in sweep and run folders.
pub const CALLS_FILE: &str = "calls.csv";

/// A report folder made ready before a sweep starts, as hyperfine creates its export files
/// before running: a hidden temporary folder beside `out` (`.NAME.tmp`), locked by this
/// process for the whole sweep, so a bad or unwritable `--out`, or a second loadchain on the
/// same `--out`, fails before the first call rather than after a long sweep. [`Self::write`]
/// fills it and renames it to `out`; dropped unwritten (an error, a panic, Ctrl-C before any
/// run finished), it removes itself, so no half-written report ever exists.
#[derive(Debug)]
pub struct ReportDir {
    out: PathBuf,
    tmp: PathBuf,
    lock: Option<DirLock>,
    armed: bool,
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error that got us here matters more than a failed cleanup.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

impl ReportDir {
    /// Checks that `out` does not exist yet and that nobody else is writing it, creates its
    /// parent folders and the locked temporary folder.
    pub fn create(out: &Path) -> Result<ReportDir, ReportError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        let Some(name) = out.file_name() else {
            return Err(ReportError::Io {
                path: out.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a folder name"),
            });
        };
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = parent.join(format!(".{}.tmp", name.to_string_lossy()));
        if tmp.is_dir() {
            // Another live sweep on the same --out holds it; or a crashed one left it.
            let stale = DirLock::acquire(&tmp).map_err(|e| in_use(e, out))?;
            drop(stale);
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        if fs::symlink_metadata(out).is_ok() {
            return Err(ReportError::Exists {
                path: out.to_path_buf(),
            });
        }
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        fs::create_dir(&tmp).map_err(|source| match source.kind() {
            // Another sweep created it between our check and now.
            io::ErrorKind::AlreadyExists => ReportError::InUse {
                message: format!(
                    "{} is in use by another loadchain run (pid unknown)",
                    out.display()
                ),
            },
            _ => ReportError::Io {
                path: tmp.clone(),
                source,
            },
        })?;
        let mut dir = ReportDir {
            out: out.to_path_buf(),
            tmp: tmp.clone(),
            lock: None,
            armed: true,
        };
        dir.lock = Some(DirLock::acquire(&tmp).map_err(|e| in_use(e, out))?);
        Ok(dir)
    }

    /// [`ReportDir::create`] of the first free default name (`base/<stamp>-<kind>`, then
    /// `-2`, `-3`, …): a name another run took or is writing, even one that took it an
    /// instant ago, moves on to the next instead of refusing.
    pub fn create_free(base: &Path, now: SystemTime, kind: &str) -> Result<ReportDir, ReportError> {
        let first = default_report_dir(base, now, kind);
        let mut last = None;
        for n in 1..=MAX_SUFFIX {
            let dir = numbered(&first, n);
            if taken(&dir) {
                continue;
            }
            match ReportDir::create(&dir) {
                Ok(made) => return Ok(made),
                Err(e @ (ReportError::InUse { .. } | ReportError::Exists { .. })) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ReportError::Exists { path: first }))
    }

    /// The folder the report will have once written.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Writes the whole report into the temporary folder and renames it to `out`.
    /// calls.csv in the report, written while the sweep runs (see [`CallsCsv`]).
    pub fn calls_csv(&self) -> Result<CallsCsv, ReportError> {
        CallsCsv::create(&self.tmp.join(CALLS_FILE))
    }

    /// Writes report.json and every file derived from it into the temporary folder (beside
    /// the calls.csv streamed there, if any) and renames the folder to `out`.
    pub fn write(mut self, report: &SweepReport) -> Result<(), ReportError> {
        let tmp = self.tmp.clone();
        let json = json::to_string(report).map_err(|source| ReportError::Encode {
            path: self.out.join(json::FILE_NAME),
            source,
        })?;
        write_file(&tmp.join(json::FILE_NAME), json.as_bytes())?;
        write_derived(&tmp, report)?;

        // Checked again: rename(2) would silently replace an empty folder.
        if fs::symlink_metadata(&self.out).is_ok() {
            return Err(ReportError::Exists {
                path: self.out.clone(),
            });
        }
        fs::rename(&tmp, &self.out).map_err(|source| ReportError::Io {
            path: self.out.clone(),
            source,
        })?;
        self.armed = false;
        // The lock file moved with the folder and is still held; it goes last, so no moment
        // exists in which the temporary folder is there but unlocked.
        if let Some(lock) = self.lock.take() {
            let moved = self.out.join(crate::lock::LOCK_FILE);
            drop(lock);
            let _ = fs::remove_file(moved);
        }
        Ok(())
    }
}

/// Writes a complete report folder atomically (see [`ReportDir`]) from calls already in
/// memory (tests, re-creating a report). Fails if `out` already exists.
pub fn write_report(
    out: &Path,
    report: &SweepReport,
    calls: &[RunCalls],
) -> Result<(), ReportError> {
    let dir = ReportDir::create(out)?;
    let path = dir.tmp.join(CALLS_FILE);
    let mut buf = Vec::new();
    csv::write_calls(calls, &mut buf).map_err(|source| ReportError::Csv {
        path: path.clone(),
        source,
    })?;
    write_file(&path, &buf)?;
    dir.write(report)
}

/// Writes every file that is a pure function of report.json: summary.csv, summary.md, the
/// `.hgrm` files and the charts.
fn write_derived(dir: &Path, report: &SweepReport) -> Result<(), ReportError> {
    let summary_path = dir.join("summary.csv");
    let mut buf = Vec::new();
    csv::write_summary(&report.runs, &mut buf).map_err(|source| ReportError::Csv {
        path: summary_path.clone(),
        source,
    })?;
    write_file(&summary_path, &buf)?;
    write_file(&dir.join("summary.md"), markdown::render(report).as_bytes())?;
    let hgrm_dir = dir.join("hgrm");
    fs::create_dir_all(&hgrm_dir).map_err(|source| ReportError::Io {
        path: hgrm_dir.clone(),
        source,
    })?;
    for run in &report.runs {
        write_file(
            &hgrm_dir.join(hgrm::file_name(run)),
            hgrm::render(run).as_bytes(),
        )?;
    }
    for (name, draw) in chart::CHARTS {
        draw_chart(&dir.join(name), |tmp| draw(tmp, report))?;
    }
    if chart::streamed(report) {
        for (name, draw) in chart::STREAM_CHARTS {
            draw_chart(&dir.join(name), |tmp| draw(tmp, report))?;
        }
    }
    if openloop::is_open_loop(report) {
        let (name, draw) = chart::RATE_CHART;
        draw_chart(&dir.join(name), |tmp| draw(tmp, report))?;
    }
    adaptive::write_chart(dir, report.adaptive.as_ref())
}

/// Draws one chart into a temp file beside `path` and commits it there (fsync + rename), so
/// a failed draw never leaves a half PNG under the real name.
fn draw_chart(
    path: &Path,
    draw: impl FnOnce(&Path) -> chart::DrawResult,
) -> Result<(), ReportError> {
    chart::ensure_fonts().map_err(|message| ReportError::Chart {
        path: path.to_path_buf(),
        message,
    })?;
    let tmp = temp_sibling(path);
    if let Err(e) = draw(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::Chart {
            path: path.to_path_buf(),
            message: e.to_string(),
        });
    }
    crate::files::commit(&tmp, path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
thread_local! {
    /// Test hook: writing a file with this name fails, to prove failures leave nothing behind.
    pub(crate) static FAIL_WRITE: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// Writes a file through the one atomic, fsynced writer ([`crate::files::write_bytes`]).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    #[cfg(test)]
    if FAIL_WRITE
        .get()
        .is_some_and(|n| path.file_name() == Some(n.as_ref()))
    {
        return Err(ReportError::Io {
            path: path.to_path_buf(),
            source: io::Error::other("injected failure"),
        });
    }
    crate::files::write_bytes(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `base/<UTC timestamp>-<kind>` (e.g. `reports/20261127T211344Z-sweep`): sorts by time and
/// has no characters that need quoting in a shell or on Windows.
pub fn default_report_dir(base: &Path, now: SystemTime, kind: &str) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    base.join(format!("{stamp}-{kind}"))
}

/// [`default_report_dir`], or with `-2`, `-3`, … appended when a run in the same second
/// already took that name, so two runs started back to back never collide. Only a guess:
/// a name is taken for good by [`ReportDir::create_free`] or [`claim_free_dir`].
pub fn free_report_dir(base: &Path, now: SystemTime, kind: &str) -> PathBuf {
    let first = default_report_dir(base, now, kind);
    (1..)
        .map(|n| numbered(&first, n))
        .find(|dir| !taken(dir))
        .expect("an unbounded range yields a free name")
}

/// Names tried before giving up (a folder of that many same-second runs is a bug elsewhere).
const MAX_SUFFIX: u32 = 10_000;

/// `first` for n = 1, else `first-n`.
fn numbered(first: &Path, n: u32) -> PathBuf {
    if n == 1 {
        return first.to_path_buf();
    }
    let name = first
        .file_name()
        .map_or_else(Default::default, |f| f.to_string_lossy());
    first.with_file_name(format!("{name}-{n}"))
}

/// True if `dir` exists, or a sweep is writing it (its `.NAME.tmp` folder exists).
fn taken(dir: &Path) -> bool {
    let tmp = dir
        .file_name()
        .map(|name| dir.with_file_name(format!(".{}.tmp", name.to_string_lossy())));
    fs::symlink_metadata(dir).is_ok() || tmp.is_some_and(|t| t.exists())
}

/// Creates the first free `base/<stamp>-<kind>[-n]` as `run`'s folder, atomically
/// (`create_dir` fails on a name another process took between our look and our claim), so
/// two runs started in the same second get two folders instead of one refusing.
pub fn claim_free_dir(base: &Path, now: SystemTime, kind: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(base)?;
    let first = default_report_dir(base, now, kind);
    for n in 1..=MAX_SUFFIX {
        let dir = numbered(&first, n);
        if taken(&dir) {
            continue;
        }
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} and {MAX_SUFFIX} numbered names after it are all taken",
        first.display()
    )))
}

/// What [`rerender`] found in the folder and rebuilt its files from.
#[derive(Debug, Clone, PartialEq)]
pub enum Rerendered {
    /// A sweep report folder, from its report.json.
    Sweep(Box<SweepReport>),
    /// A `loadchain run` folder, from its summary.json.
    Run(Box<RunSummaryFile>),
}

/// Re-renders the derived files of a sweep report folder (summary.csv, summary.md, the
/// `.hgrm` files and the charts, from report.json) or of a `loadchain run` folder (summary.md
/// and the charts, from summary.json), overwriting them file by file, so results can be
/// re-plotted after an upgrade. calls.csv and the JSON source are left alone.
pub fn rerender(dir: &Path) -> Result<Rerendered, ReportError> {
    let (path, found) = match json::locate_any(dir)? {
        json::Located::Sweep(path) => {
            let report = json::read_versioned(&path)?;
            (path, Rerendered::Sweep(Box::new(report)))
        }
        json::Located::Run(path) => {
            let summary = json::read_versioned(&path)?;
            (path, Rerendered::Run(Box::new(summary)))
        }
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match &found {
        Rerendered::Sweep(report) => write_derived(folder, report)?,
        Rerendered::Run(summary) => run::write_derived(folder, summary)?,
    }
    Ok(found)
}

/// Reads and checks report.json from a report folder or the file itself: `schema_version`
/// must be present and no newer than [`crate::files::SCHEMA_VERSION`]. A `loadchain run`
/// folder is refused with [`ReportError::RunNotComparable`].
pub fn read_report(dir_or_file: &Path) -> Result<SweepReport, ReportError> {
    if let Ok(json::Located::Run(_)) = json::locate_any(dir_or_file) {
        return Err(ReportError::RunNotComparable {
            path: dir_or_file.to_path_buf(),
        });
    }
    json::read(dir_or_file)
}

/// Side-by-side comparison of two reports for the terminal: per cell (size × limit ×
/// pooling) wall time A, B and change %, call p99 A, B and change %.
pub fn compare(a: &SweepReport, b: &SweepReport) -> String {
    text::compare(a, b)
}

/// What the terminal shows after a sweep: settings, the course table per pooling mode, the
/// pooled-vs-unpooled latency table and the issues.
pub fn render_terminal(report: &SweepReport) -> String {
    text::render(report)
}

/// What `sweep` prints on stdout: [`render_terminal`] without the settings block, which the
/// banner on stderr already showed; `-q` then leaves only results on stdout.
pub fn render_terminal_results(report: &SweepReport) -> String {
    text::results(report)
}

/// summary.md's text, for callers that want it without writing a folder.
pub fn render_markdown(report: &SweepReport) -> String {
    markdown::render(report)
}
