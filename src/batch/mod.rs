//! `loadchain run`: a manifest of rows through the chain at one limit, with every finished
//! row appended to results.jsonl before it is reported done, so a crash loses nothing that
//! was reported and `--resume` picks up exactly where it stopped.
//!
//! [`run`] is the library entry point: it takes a checked [`RunConfig`], a [`BatchUi`] and
//! the caller's stop signal (the command layer owns Ctrl-C), and returns a [`RunOutcome`]
//! that says what happened; it prints nothing and decides no exit code.
//!
//! Stopping: one watch channel stops the runner; the caller's signal (Ctrl-C) and the results
//! writer (when an append fails) can both raise it.

mod collect;
mod resume;
mod settings;

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::chain::{Row, Rows};
use crate::endpoint::{ClientError, Session, SessionError, Target};
use crate::manifest::{
    FAILED_FILE, Manifest, ManifestError, ResultsLog, Resume, RunSummaryFile, select_rows, speedup,
    write_failed_csv,
};
use crate::metrics::RunRecorder;
use crate::record::{CallRecord, ChainRecord, Pooling, RunKey, ms};
use crate::report::{CALLS_FILE, CallsCsv};
use crate::runner::{
    AdaptiveLimit, AdaptiveOutcome, BatchResult, Observer, StopSignal, Tee, Workload,
};
use crate::threshold::{Measured, Threshold, Verdict};

/// A checked `loadchain run` configuration, built from the flags by
/// [`crate::config::run_config`]: every cross-flag rule and input check is done.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The rows, in manifest order (ids checked unique).
    pub manifest: Manifest,
    /// Maximum chains in flight (with `auto`, the ceiling of the adaptive limit).
    pub limit: usize,
    /// `--limit auto`: the limit adapts to the endpoint's quota (see
    /// [`crate::runner::AdaptiveLimit`]).
    pub auto: bool,
    /// The results folder (given, or a fresh one under reports/).
    pub out: PathBuf,
    /// Continue the run in `out`: skip rows that already succeeded.
    pub resume: bool,
    /// The chain (its templates checked against the manifest's columns), where calls go,
    /// the client, retries and rate caps.
    pub workload: Workload,
    /// `--fail-on` checks, applied by [`RunOutcome::verdict`].
    pub fail_on: Vec<Threshold>,
    /// Write calls.csv (one row per call, streamed); off for soaks nobody reads per call.
    pub calls_csv: bool,
}

/// What the UI is told while a run goes; every method has a do-nothing default.
pub trait BatchUi: Send + Sync {
    /// The rows to run are known (after resume); the target is ready.
    fn started(&self, _plan: &RunPlan<'_>) {}
    /// A retry pass over `rows` failed rows began.
    fn retry_pass(&self, _pass: u16, _rows: usize) {}
    /// A call finished.
    fn call_done(&self, _call: &CallRecord) {}
    /// A row's final record reached results.jsonl.
    fn row_saved(&self, _row: &Row, _chain: &ChainRecord) {}
    /// Something the user should read (a repaired torn line, ids not in the manifest, a
    /// failed write).
    fn note(&self, _text: &str) {}
}

/// A [`BatchUi`] that shows nothing.
impl BatchUi for crate::sweep::Quiet {}

/// What is about to run, for the banner.
#[derive(Debug)]
pub struct RunPlan<'a> {
    /// Rows this session runs.
    pub to_run: usize,
    /// Rows skipped because an earlier session succeeded on them.
    pub skipped: usize,
    /// The target calls go to.
    pub target: &'a Target,
    /// The embedded mock's URL, when calls go to it.
    pub mock_url: Option<String>,
    /// The chain's step names.
    pub steps: &'a [String],
}

/// A run that could not complete (failed rows are data, not errors).
#[derive(Debug, Error)]
pub enum BatchError {
    /// The endpoint could not be made ready.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The results folder could not be used (in use, another run's, unwritable).
    #[error(transparent)]
    Output(#[from] ManifestError),
    /// summary.md, calls.csv or a chart could not be written.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// results.jsonl stopped accepting lines mid-run.
    #[error(
        "cannot append to {}: {source}; no new rows were started after that, the rows in \
         flight finished, and {unsaved} finished rows could not be saved even on a second \
         try. Every row in the log is safe: fix the cause and run the same command with \
         --resume",
        path.display()
    )]
    LogWrite {
        /// results.jsonl.
        path: PathBuf,
        /// The write error.
        source: std::io::Error,
        /// Finished rows whose lines are lost.
        unsaved: usize,
    },
    /// A bug: the writer task died, or the rows do not add up.
    #[error("{0} (a bug, please report it)")]
    Internal(String),
}

impl BatchError {
    /// Whether the user's input is at fault (exit 2): a results folder that is in use or
    /// holds another run.
    pub fn is_input_error(&self) -> bool {
        matches!(self, BatchError::Output(e) if e.is_input_error())
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// summary.json's content.
    pub summary: RunSummaryFile,
    /// The results folder.
    pub out: PathBuf,
    /// The stop signal cut it short: rows were left `not_run`.
    pub interrupted: bool,
}

impl RunOutcome {
    /// Exit-1 conditions after the files are written: every chain failed, or a `--fail-on`
    /// check broke.
    pub fn verdict(&self, fail_on: &[Threshold]) -> Verdict {
        let s = &self.summary;
        let measured = Measured {
            call: &s.call_latency,
            errors: &s.errors,
            calls: s.calls,
            failed: s.failed,
            efficiency: None,
            differ: None,
            cost: s.cost.as_ref().map(|c| c.total),
            slo_attainment: s.llm.slo_attainment,
            goodput: s.llm.goodput,
        };
        Verdict {
            all_failed: (s.succeeded == 0 && s.failed > 0)
                .then(|| {
                    format!(
                        "this run ({} rows; see {})",
                        s.failed,
                        self.out.join(FAILED_FILE).display()
                    )
                })
                .into_iter()
                .collect(),
            broken: fail_on.iter().filter_map(|t| t.check(&measured)).collect(),
        }
    }
}

/// Runs a manifest: opens the endpoint, locks and reads the results folder, runs the rows
/// that still need to run, writes results.jsonl as rows finish, then failed.csv and
/// summary.json.
pub async fn run(
    cfg: &RunConfig,
    ui: Arc<dyn BatchUi>,
    stop: Option<StopSignal>,
) -> Result<RunOutcome, BatchError> {
    let session = cfg.workload.open().await?;
    let settings = settings::settings(cfg, session.target());
    let (log, mut resume) = ResultsLog::open(&cfg.out, cfg.resume)?;
    let (todo, skipped) = select_rows(&cfg.manifest, &resume);
    note_resume(cfg, &resume, &log, ui.as_ref());
    let steps = cfg.workload.chain.step_names();
    let from = resume::resume_from(
        &todo,
        std::mem::take(&mut resume.saved_steps),
        &steps,
        cfg.workload.retry.restart_chains,
    );
    if !from.is_empty() {
        ui.note(&format!(
            "note: {} failed {} resume at the step that failed, with their saved outputs \
             (--restart-chains runs them from step 1)",
            from.len(),
            if from.len() == 1 { "row" } else { "rows" }
        ));
    }
    ui.started(&RunPlan {
        to_run: todo.len(),
        skipped,
        target: session.target(),
        mock_url: session.mock_url(),
        steps: &steps,
    });
    let rows = Rows::Source(Arc::new(todo));
    let key = RunKey {
        size: rows.len(),
        limit: cfg.limit,
        pooling: Pooling::On,
    };
    // Calls go to calls.csv and the histograms as they finish; none is kept in memory.
    let calls_csv = match cfg.calls_csv {
        true => Some(CallsCsv::create(&cfg.out.join(CALLS_FILE))?),
        false => None,
    };
    let recorder = Arc::new(
        RunRecorder::new(steps.len(), 0)
            .with_price(cfg.workload.price)
            .with_slo(cfg.workload.slo),
    );
    let mut sinks: Vec<Arc<dyn Observer>> = vec![recorder.clone()];
    sinks.extend(calls_csv.as_ref().map(|c| c.sink(key)));
    let (batch, collected, adaptive) =
        execute(cfg, &session, log, (rows.clone(), from), ui, sinks, stop).await?;
    session.close().await;
    if let Some(calls) = calls_csv {
        calls.finish()?;
    }
    if let Some(source) = collected.write_error {
        return Err(BatchError::LogWrite {
            path: collected.log.path().to_path_buf(),
            source,
            unsaved: collected.unsaved,
        });
    }
    write_failed_csv(&cfg.out, &collected.tally.failed_rows())?;
    let stats = recorder.summary(key, &batch, &steps, None, 0);
    let tally = &collected.tally;
    let wall_ms = ms(batch.wall);
    let summary = RunSummaryFile {
        schema_version: crate::manifest::SCHEMA_VERSION,
        rows_in_manifest: cfg.manifest.len(),
        succeeded: tally.succeeded(),
        failed: tally.failed(),
        skipped,
        not_run: batch.not_run.len(),
        wall_ms,
        sum_chain_ms: tally.sum_chain_ms(),
        speedup: speedup(tally.sum_chain_ms(), wall_ms),
        limit: adaptive.as_ref().map_or(cfg.limit, |a| a.recommended_limit),
        passes: batch.passes,
        calls: stats.calls,
        calls_saved: stats.calls_saved,
        stale_retries: stats.stale_retries,
        errors: stats.errors,
        call_latency: stats.call_latency,
        chain_latency: stats.chain_latency,
        step_latency: stats.step_latency,
        ttft: stats.ttft,
        torn_line_ignored: resume.torn_line,
        timeline: stats.timeline,
        settings: Some(crate::manifest::RunSettings {
            announced_quota: cfg.workload.client.announced.get(),
            ..settings
        }),
        cost: stats.cost,
        quality: stats.quality,
        adaptive,
        llm: stats.llm,
    };
    summary
        .check_accounting()
        .map_err(|m| BatchError::Internal(format!("row accounting failed: {m}")))?;
    summary.write(&cfg.out)?;
    crate::report::write_run(&cfg.out, &summary)?;
    // The folder stays locked until everything in it is written.
    drop(collected.log);
    Ok(RunOutcome {
        summary,
        out: cfg.out.clone(),
        interrupted: batch.interrupted,
    })
}

/// Tells the user what resuming found: a repaired torn line, ids the manifest lacks.
fn note_resume(cfg: &RunConfig, resume: &Resume, log: &ResultsLog, ui: &dyn BatchUi) {
    if let Some(line) = resume.torn_line {
        ui.note(&format!(
            "note: {} line {line} was cut short by a crash; it was ignored and removed",
            log.path().display()
        ));
    }
    let strangers = resume.ids_not_in(&cfg.manifest);
    if let Some(first) = strangers.first() {
        ui.note(&format!(
            "note: {} ids in {} are not in {} (first: {first})",
            strangers.len(),
            log.path().display(),
            cfg.manifest.path.display(),
        ));
    }
}

/// Runs `rows` (those in `from` resumed at the step that failed) with one writer task
/// appending each finished row to the log. The runner's stop is raised by the caller's
/// signal (Ctrl-C) or by the writer when an append fails.
async fn execute(
    cfg: &RunConfig,
    session: &Session,
    log: ResultsLog,
    (rows, from): (Rows, crate::runner::ResumeFrom),
    ui: Arc<dyn BatchUi>,
    sinks: Vec<Arc<dyn Observer>>,
    stop: Option<StopSignal>,
) -> Result<(BatchResult, collect::Collected, Option<AdaptiveOutcome>), BatchError> {
    let (stop_tx, runner_stop) = watch::channel(false);
    if let Some(mut caller) = stop {
        let tx = stop_tx.clone();
        tokio::spawn(async move {
            if caller.wait_for(|s| *s).await.is_ok() {
                tx.send_replace(true);
            }
        });
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let steps = cfg.workload.chain.step_names();
    let writer = tokio::spawn(collect::collect(
        log,
        rx,
        rows.clone(),
        steps,
        Arc::clone(&ui),
        stop_tx,
    ));
    let factory = cfg.workload.factory(session, Some(runner_stop));
    let mut runner = factory.runner(cfg.limit, Pooling::On)?;
    runner.adaptive = cfg.auto.then(|| Arc::new(AdaptiveLimit::new(cfg.limit)));
    let mut observers: Vec<Arc<dyn Observer>> = vec![Arc::new(collect::Forward { tx, ui })];
    observers.extend(sinks);
    let observer: Arc<dyn Observer> = Arc::new(Tee(observers));
    let batch = runner.run_batch_from(rows, observer, None, from).await;
    let found = runner.adaptive.as_ref().map(|a| a.outcome());
    // Dropping the runner drops the last sender: the writer drains and ends.
    drop(runner);
    let collected = writer
        .await
        .map_err(|e| BatchError::Internal(format!("the results writer stopped: {e}")))?;
    Ok((batch, collected, found))
}
