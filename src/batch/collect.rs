//! The single writer of results.jsonl: the runner's observer forwards each row's final
//! record over a channel; one task appends it, tallies it, and only then tells the UI the row
//! is done. The channel closes when the runner (and with it every clone of the observer) is
//! dropped, which ends the collector.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::BatchUi;
use crate::chain::{Row, Rows};
use crate::manifest::{ResultLine, ResultsLog, Tally};
use crate::record::{CallRecord, ChainRecord};
use crate::runner::Observer;

/// Forwards each row's final record to the collector, and retry passes to the UI.
pub(super) struct Forward {
    pub(super) tx: mpsc::UnboundedSender<ChainRecord>,
    pub(super) ui: Arc<dyn BatchUi>,
}

impl Observer for Forward {
    fn pass_started(&self, pass: u16, rows: usize) {
        if pass > 0 {
            self.ui.retry_pass(pass, rows);
        }
    }

    fn call_done(&self, call: &CallRecord) {
        self.ui.call_done(call);
    }

    fn chain_done(&self, _row: &Row, chain: &ChainRecord, is_final: bool) {
        if is_final {
            // The collector outlives the runner; a send can only fail after it stopped on
            // a write error, which it reports itself.
            let _ = self.tx.send(chain.clone());
        }
    }
}

/// What the collector hands back: the tally of saved rows, the log (whose lock on the
/// folder is held until the run's files are written), and a write failure if one happened.
pub(super) struct Collected {
    pub(super) tally: Tally,
    pub(super) log: ResultsLog,
    pub(super) write_error: Option<std::io::Error>,
    pub(super) unsaved: usize,
}

/// The single writer of results.jsonl. A row is tallied (and shown as done) only once its
/// line is appended. When an append fails (disk full), it raises the stop signal so no new
/// row starts, keeps the lines of the rows still finishing in memory, and tries once more to
/// append them when the runner is done.
pub(super) async fn collect(
    mut log: ResultsLog,
    mut rx: mpsc::UnboundedReceiver<ChainRecord>,
    rows: Rows,
    names: Vec<String>,
    ui: Arc<dyn BatchUi>,
    stop: watch::Sender<bool>,
) -> Collected {
    let mut tally = Tally::new();
    let mut write_error = None;
    let mut held = Vec::new();
    while let Some(mut record) = rx.recv().await {
        let row = &rows.get(record.row as usize);
        // The outputs move into the line; nothing after needs them in the record.
        let line = ResultLine::take_chain(&row.id, &names, &mut record);
        if write_error.is_none() {
            match log.append(&line) {
                Ok(()) => {
                    tally.record(record.row as usize, &line);
                    ui.row_saved(row, &record);
                    continue;
                }
                Err(e) => {
                    ui.note(&format!(
                        "error: cannot append to {}: {e}; starting no new rows",
                        log.path().display()
                    ));
                    stop.send_replace(true);
                    write_error = Some(e);
                }
            }
        }
        held.push((record.row as usize, line));
    }
    let mut unsaved = 0;
    for (row, line) in &held {
        match log.append(line) {
            Ok(()) => tally.record(*row, line),
            Err(_) => unsaved += 1,
        }
    }
    if let Err(e) = log.sync() {
        write_error.get_or_insert(e);
    }
    Collected {
        tally,
        log,
        write_error,
        unsaved,
    }
}
