//! calls.csv written while the run goes, so no call is kept in memory until the end: each
//! call goes from the worker that made it over a bounded channel to one writer thread, which
//! appends it through a buffered writer and flushes at least every second (a `tail -f` or a
//! test sees rows arrive during the run).
//!
//! A plain thread, not a tokio task: CSV encoding and file writes are blocking work. The
//! channel is bounded, so if the disk falls far behind, workers wait for it rather than
//! memory growing.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ReportError;
use super::csv::CallRow;
use crate::chain::Numbering;
use crate::record::{CallRecord, RunKey, ms};
use crate::runner::Observer;

/// Calls the channel holds before a worker waits for the writer.
const QUEUE: usize = 16 * 1024;

/// Longest a written call waits in the buffer before it reaches the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// An open calls.csv and its writer thread; [`CallsCsv::finish`] closes it.
#[derive(Debug)]
pub struct CallsCsv {
    path: PathBuf,
    tx: Option<SyncSender<(RunKey, CallRecord)>>,
    writer: Option<JoinHandle<Result<u64, ReportError>>>,
}

impl CallsCsv {
    /// Creates `path` with its header row and starts the writer.
    pub fn create(path: &Path) -> Result<CallsCsv, ReportError> {
        let io = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = ::csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::with_capacity(64 * 1024, file));
        let csv_err = |source| ReportError::Csv {
            path: path.to_path_buf(),
            source,
        };
        out.write_record(&super::csv::header::<CallRow>().map_err(csv_err)?)
            .map_err(csv_err)?;
        out.flush().map_err(io)?;
        let (tx, rx) = sync_channel::<(RunKey, CallRecord)>(QUEUE);
        let file_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("calls.csv".into())
            .spawn(move || {
                let csv_err = |source| ReportError::Csv {
                    path: file_path.clone(),
                    source,
                };
                let mut rows = 0u64;
                loop {
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok((key, call)) => {
                            out.serialize(row(key, &call)).map_err(csv_err)?;
                            rows += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            out.flush().map_err(|source| ReportError::Io {
                                path: file_path.clone(),
                                source,
                            })?
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                let file = out.into_inner().map_err(|e| ReportError::Io {
                    path: file_path.clone(),
                    source: e.into_error(),
                })?;
                let file = file.into_inner().map_err(|e| ReportError::Io {
                    path: file_path.clone(),
                    source: e.into_error(),
                })?;
                file.sync_all().map_err(|source| ReportError::Io {
                    path: file_path.clone(),
                    source,
                })?;
                Ok(rows)
            })
            .map_err(io)?;
        Ok(CallsCsv {
            path: path.to_path_buf(),
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// An observer that appends every call it sees, as a call of run `key`.
    pub fn sink(&self, key: RunKey) -> Arc<dyn Observer> {
        self.sink_numbered(key, Numbering::WHOLE)
    }

    /// [`CallsCsv::sink`] for a batch of synthetic rows numbered by `rows`: the `row` column
    /// carries the whole run's row number, so a `--segment`'s calls pair with the whole run's
    /// (and with the other segments' in a merged calls.csv).
    pub fn sink_numbered(&self, key: RunKey, rows: Numbering) -> Arc<dyn Observer> {
        Arc::new(CallSink {
            tx: self.tx.clone(),
            key,
            rows,
        })
    }

    /// Waits for every call sent so far to be written, closes and syncs the file; the rows
    /// written. Every sink must be dropped first, or this waits for them.
    pub fn finish(mut self) -> Result<u64, ReportError> {
        self.close()
    }

    fn close(&mut self) -> Result<u64, ReportError> {
        drop(self.tx.take());
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ReportError::Io {
                path: self.path.clone(),
                source: std::io::Error::other("the calls.csv writer panicked"),
            }),
            None => Ok(0),
        }
    }
}

impl Drop for CallsCsv {
    fn drop(&mut self) {
        // An unfinished writer still ends cleanly; its error, if any, was not asked for.
        let _ = self.close();
    }
}

/// Forwards a run's calls to the writer.
struct CallSink {
    tx: Option<SyncSender<(RunKey, CallRecord)>>,
    key: RunKey,
    rows: Numbering,
}

impl Observer for CallSink {
    fn call_done(&self, call: &CallRecord) {
        if let Some(tx) = &self.tx {
            let mut call = *call;
            let global = self.rows.global(call.row as usize);
            call.row = u32::try_from(global).unwrap_or(u32::MAX);
            // Fails only once the writer stopped on an error, which finish() reports.
            let _ = tx.send((self.key, call));
        }
    }
}

/// One row of calls.csv.
pub(super) fn row(key: RunKey, c: &CallRecord) -> CallRow {
    CallRow {
        size: key.size,
        limit: key.limit,
        pooling: key.pooling.to_string(),
        row: c.row,
        step: c.step,
        pass: c.pass,
        try_no: c.try_no,
        start_offset_ms: ms(c.start),
        latency_ms: ms(c.latency),
        status: c.status,
        error_kind: c.error.map(|k| k.to_string()),
        bytes: c.bytes,
        tokens: c.tokens,
        ttft_ms: c.ttft.map(ms),
        input_tokens: c.input_tokens,
        finish: c.error.is_none().then(|| c.finish.as_str().to_string()),
    }
}
