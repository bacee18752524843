//! `results.jsonl`: one JSON line per finished row, appended and flushed as rows finish, so a
//! crash loses at most the row being written; and reading it back to resume.
//!
//! Durability model: each line goes out in a single `write_all` on a file opened in append
//! mode, so a crash can only leave a *prefix* of the last line (a torn line). Resume detects it
//! (no trailing newline, or it does not parse), truncates it away before anything is appended,
//! and never counts it. Any other unparsable line is corruption and stops the run.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FAILED_FILE, Manifest, ManifestError, Picked, Position, SUMMARY_FILE};
use crate::files::sync_parent;
use crate::lock::DirLock;
use crate::record::{ChainRecord, ErrorKind, ms};

/// Outputs longer than this (summed over a line's steps) are streamed to the log, not
/// serialized into one buffer first.
const LONG_LINE: usize = 1 << 20;

/// A writer that counts the bytes it took.
struct Counted<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// File name of the results log inside the output folder.
pub const RESULTS_FILE: &str = "results.jsonl";

/// Final state of a row in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Every step succeeded; a resume skips the row.
    Ok,
    /// A step failed after every pass; a resume runs the row again.
    Failed,
}

/// One line of results.jsonl.
/// NOTE: a field change must stay readable by resume of older logs (add with `#[serde(default)]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The row's id from the manifest.
    pub id: String,
    /// `ok` or `failed`.
    pub status: ResultStatus,
    /// Completed steps in order (all of them when `status` is ok).
    pub steps: Vec<StepResult>,
    /// Passes over the batch this row took part in this session (1 = no retry pass needed).
    pub attempts: u16,
    /// Latency of the row's last attempt: first send to last byte of the last step, ms.
    pub chain_latency_ms: f64,
    /// Where and why the chain stopped; null when ok.
    pub error: Option<ResultError>,
}

/// One completed step of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Step name from the chain.
    pub name: String,
    /// The step's output text.
    pub output: String,
    /// The step's call latency, ms.
    pub latency_ms: f64,
}

/// Why a row failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultError {
    /// Name of the step that failed.
    pub step: String,
    /// Error kind (`rate_limited`, `timeout`, …).
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Human-readable detail; never contains credentials (see `ChainFailure::message`).
    pub message: String,
}

impl ResultLine {
    /// The line for a row's final [`ChainRecord`]; `step_names` are the chain's, in order.
    pub fn from_chain(id: &str, step_names: &[String], rec: &ChainRecord) -> ResultLine {
        ResultLine::with_outputs(id, step_names, rec, rec.outputs.clone())
    }

    /// [`ResultLine::from_chain`], moving the outputs out of `rec` instead of copying them:
    /// a 40 MB output is then held once while its line is written, not twice.
    pub fn take_chain(id: &str, step_names: &[String], rec: &mut ChainRecord) -> ResultLine {
        let outputs = std::mem::take(&mut rec.outputs);
        ResultLine::with_outputs(id, step_names, rec, outputs)
    }

    fn with_outputs(
        id: &str,
        step_names: &[String],
        rec: &ChainRecord,
        outputs: Vec<String>,
    ) -> ResultLine {
        let name = |i: usize| {
            step_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("step-{}", i + 1))
        };
        let steps = outputs
            .into_iter()
            .zip(&rec.step_latencies)
            .enumerate()
            .map(|(i, (output, latency))| StepResult {
                name: name(i),
                output,
                latency_ms: ms(*latency),
            })
            .collect();
        ResultLine {
            id: id.to_string(),
            status: if rec.ok() {
                ResultStatus::Ok
            } else {
                ResultStatus::Failed
            },
            steps,
            attempts: rec.passes,
            chain_latency_ms: ms(rec.latency),
            error: rec.failure.as_ref().map(|f| ResultError {
                step: name(usize::from(f.step)),
                kind: f.kind,
                status: f.status,
                message: f.message.clone(),
            }),
        }
    }
}

/// What an earlier session left in results.jsonl (all empty for a fresh run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resume {
    /// Ids whose latest line is ok: skipped this session.
    pub succeeded_ids: HashSet<String>,
    /// Ids whose latest line is failed: run again this session.
    pub failed_ids: HashSet<String>,
    /// The completed steps of each failed id's latest line (ids with none are absent): a
    /// resumed row starts at the step that failed with these outputs. Only failed rows'
    /// steps are held, so memory follows the failures, not the log.
    pub saved_steps: HashMap<String, Vec<StepResult>>,
    /// File line number of a torn last line that was cut off, to report to the user.
    pub torn_line: Option<usize>,
    /// Number of good lines read (a row run in several sessions has several lines).
    pub lines: usize,
}

impl Resume {
    /// Ids in the log that the manifest does not have, sorted: a sign the user resumed with a
    /// different manifest. They do not count towards the manifest's accounting.
    pub fn ids_not_in(&self, manifest: &Manifest) -> Vec<&str> {
        // Only the log's ids are held; the manifest's are parsed one at a time.
        let mut unknown: HashSet<&str> = self
            .succeeded_ids
            .iter()
            .chain(&self.failed_ids)
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Vec::new();
        }
        for id in manifest.ids() {
            unknown.remove(id.as_str());
        }
        let mut unknown: Vec<&str> = unknown.into_iter().collect();
        unknown.sort_unstable();
        unknown
    }
}

/// The rows this session must run, in manifest order, and how many were skipped because an
/// earlier session already succeeded on them. Failed rows run again.
pub fn select_rows(manifest: &Manifest, resume: &Resume) -> (Picked, usize) {
    let todo: Vec<u32> = match resume.succeeded_ids.is_empty() {
        true => (0..manifest.len()).map(index).collect(),
        false => (0..manifest.len())
            .filter(|&i| !resume.succeeded_ids.contains(&manifest.id(i)))
            .map(index)
            .collect(),
    };
    let skipped = manifest.len() - todo.len();
    (manifest.pick(todo), skipped)
}

/// A row index as the 4 bytes a selection keeps (a manifest has far fewer than 4e9 rows).
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The open results log. One owner appends to it (it needs `&mut`); share it through the task
/// that receives finished rows rather than a lock around the runner's hot path.
#[derive(Debug)]
pub struct ResultsLog {
    path: PathBuf,
    // No BufWriter: every line must reach the OS before the row is reported done.
    file: File,
    // Reused between appends so serializing a line does not allocate once warm.
    buf: Vec<u8>,
    // Bytes of whole lines in the file: a failed append is cut back to it.
    len: u64,
    // The folder is this process's for as long as the log is open.
    _lock: DirLock,
}

impl ResultsLog {
    /// Opens `dir/results.jsonl` for appending, creating `dir` if needed.
    ///
    /// Without `resume`, refuses a folder that holds another run's results (nothing is
    /// written then). With `resume`, reads the log, repairs a torn last line by truncating it,
    /// and returns what it held. Call it after every other input check: it creates files.
    pub fn open(dir: &Path, resume: bool) -> Result<(ResultsLog, Resume), ManifestError> {
        if dir.exists() && !dir.is_dir() {
            return Err(ManifestError::NotAFolder {
                dir: dir.to_path_buf(),
            });
        }
        let path = dir.join(RESULTS_FILE);
        fs::create_dir_all(dir).map_err(ManifestError::io("create folder", dir))?;
        // Before anything is read or checked: a second process must not even look.
        let lock_existed = dir.join(crate::lock::LOCK_FILE).exists();
        let lock = DirLock::acquire(dir)?;
        let checked = if resume {
            read_and_repair(&path)
        } else {
            refuse_other_run(dir).map(|()| Resume::default())
        };
        let state = match checked {
            Ok(state) => state,
            Err(e) => {
                if !lock_existed {
                    lock.remove();
                }
                return Err(e);
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(ManifestError::io("open", &path))?;
        sync_parent(&path);
        let len = file
            .metadata()
            .map_err(ManifestError::io("read", &path))?
            .len();
        let log = ResultsLog {
            path,
            file,
            buf: Vec::with_capacity(4096),
            len,
            _lock: lock,
        };
        Ok((log, state))
    }

    /// Appends one line and hands it to the OS before returning: one `write_all` of the whole
    /// line (a long one in pieces), so a crash leaves at most a torn last line. Not fsynced; see [`ResultsLog::sync`].
    /// A failed write (disk full) is cut back off, so the log stays whole lines and a later
    /// append or `--resume` finds no fragment in the middle.
    pub fn append(&mut self, line: &ResultLine) -> io::Result<()> {
        let text: usize = line.steps.iter().map(|s| s.output.len()).sum();
        let written = if text > LONG_LINE {
            self.stream(line)
        } else {
            self.buf.clear();
            serde_json::to_writer(&mut self.buf, line)?;
            self.buf.push(b'\n');
            self.file
                .write_all(&self.buf)
                .and_then(|()| self.file.flush())
                .map(|()| self.buf.len() as u64)
        };
        match written {
            Ok(n) => {
                self.len += n;
                Ok(())
            }
            Err(e) => {
                // Best effort: on a full disk, shrinking a file still works.
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// A line with outputs over [`LONG_LINE`], written in pieces as it is serialized instead
    /// of copied whole into a buffer first (a 40 MB output would be held twice). A crash
    /// mid-line still leaves one torn last line, which `--resume` cuts off. Returns the
    /// bytes written.
    fn stream(&mut self, line: &ResultLine) -> io::Result<u64> {
        let mut w = Counted {
            inner: io::BufWriter::with_capacity(64 * 1024, &mut self.file),
            n: 0,
        };
        serde_json::to_writer(&mut w, line)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(w.n)
    }

    /// Forces appended lines to disk, surviving a power cut and not only a process crash.
    /// Costly (milliseconds), so call it at the end of the run, not per line.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Path of the log, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every line of `dir/results.jsonl`, strictly: any line that does not parse, a torn last
    /// line included, is an error. Read-only, for reports and tests; holds the whole log in
    /// memory, so the run itself resumes with [`ResultsLog::open`] instead.
    pub fn read_all(dir: &Path) -> Result<Vec<ResultLine>, ManifestError> {
        let path = dir.join(RESULTS_FILE);
        let text = fs::read(&path).map_err(ManifestError::io("read", &path))?;
        let mut lines = Vec::new();
        for (i, raw) in text.split_inclusive(|&b| b == b'\n').enumerate() {
            let body = raw.trim_ascii();
            if !raw.ends_with(b"\n") {
                return Err(ManifestError::CorruptLog {
                    path,
                    at: Position::line(i + 1),
                    message: "torn last line (no newline); --resume repairs it".into(),
                });
            }
            if !body.is_empty() {
                let line = serde_json::from_slice(body).map_err(|e| corrupt(&path, i + 1, &e))?;
                lines.push(line);
            }
        }
        Ok(lines)
    }
}

/// Results of an earlier run must not be mixed with a new one by accident.
fn refuse_other_run(dir: &Path) -> Result<(), ManifestError> {
    let has_results = fs::metadata(dir.join(RESULTS_FILE)).is_ok_and(|m| m.len() > 0);
    if has_results || dir.join(SUMMARY_FILE).exists() || dir.join(FAILED_FILE).exists() {
        return Err(ManifestError::OtherRun {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Reads the log line by line (memory bounded by one line) and cuts off a torn last line.
fn read_and_repair(path: &Path) -> Result<Resume, ManifestError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Resume::default()),
        Err(e) => return Err(ManifestError::io("open", path)(e)),
    };
    let read_err = ManifestError::io("read", path);
    let mut reader = BufReader::with_capacity(64 * 1024, &file);
    let mut latest: HashMap<String, (ResultStatus, Vec<StepResult>)> = HashMap::new();
    let (mut buf, mut line_no, mut good_end, mut lines) = (Vec::new(), 0usize, 0u64, 0usize);
    let mut torn_line = None;
    let scanned: io::Result<()> = (|| {
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            line_no += 1;
            let complete = buf.ends_with(b"\n");
            let last = !complete || reader.fill_buf()?.is_empty();
            let body = buf.trim_ascii_end();
            if complete && body.trim_ascii().is_empty() {
                good_end += n as u64;
                continue;
            }
            match serde_json::from_slice::<ResultLine>(body) {
                Ok(line) if complete => {
                    let steps = match line.status {
                        ResultStatus::Failed => line.steps,
                        ResultStatus::Ok => Vec::new(),
                    };
                    latest.insert(line.id, (line.status, steps));
                    lines += 1;
                    good_end += n as u64;
                }
                Err(e) if !last => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                // Incomplete (hence last) or unparsable last: a write cut short by a crash.
                _ => {
                    torn_line = Some(line_no);
                    return Ok(());
                }
            }
        }
    })();
    if let Err(e) = scanned {
        return Err(
            match e
                .get_ref()
                .and_then(|e| e.downcast_ref::<serde_json::Error>())
            {
                Some(json) => corrupt(path, line_no, json),
                None => read_err(e),
            },
        );
    }
    if torn_line.is_some() {
        // Cut back to the end of the last good line so new lines never glue onto the torn one.
        (file.set_len(good_end).and_then(|()| file.sync_data()))
            .map_err(ManifestError::io("truncate torn last line of", path))?;
    }
    let mut resume = Resume {
        torn_line,
        lines,
        ..Resume::default()
    };
    for (id, (status, steps)) in latest {
        match status {
            ResultStatus::Ok => resume.succeeded_ids.insert(id),
            ResultStatus::Failed => {
                if !steps.is_empty() {
                    resume.saved_steps.insert(id.clone(), steps);
                }
                resume.failed_ids.insert(id)
            }
        };
    }
    Ok(resume)
}

fn corrupt(path: &Path, line: usize, err: &serde_json::Error) -> ManifestError {
    // serde_json positions are within the line; keep its column, drop its "line 1".
    let text = err.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    ManifestError::CorruptLog {
        path: path.to_path_buf(),
        at: Position::at(line, err.column()),
        message: message.to_string(),
    }
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
