//! `batch::run` in-process: resume, the stop signal (what Ctrl-C raises), `--fail-on` and the
//! folder lock, against a mock started by each test, without spawning the binary (the binary's
//! own behaviour is covered in tests/run.rs).

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadchain::batch::{self, BatchUi, RunConfig, RunOutcome, RunPlan};
use loadchain::chain::Row;
use loadchain::manifest::{Manifest, ResultLine, ResultStatus, ResultsLog, RunSummaryFile};
use loadchain::record::{CallRecord, ChainRecord};
use loadchain::runner::{RetryPolicy, StopSignal};
use loadchain::sweep::Quiet;
use loadchain::threshold::{Threshold, Verdict};
use loadchain_mock::{MockConfig, MockServer};
use tokio::sync::{Notify, watch};

use crate::common::{fixed, spawn_mock};

/// Writes a manifest of `rows` rows (`row-1`, …, with a `topic` column) and loads it.
fn manifest(dir: &Path, rows: usize) -> Manifest {
    let path = dir.join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=rows {
        text.push_str(&format!("row-{i},subject {i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    Manifest::load(&path, "id").unwrap()
}

/// A run of `manifest` against `mock` into `dir/out`: the default chain of `steps` steps,
/// one retry pass with a short backoff, no `--fail-on`.
fn config(
    mock: &Arc<MockServer>,
    manifest: &Manifest,
    dir: &Path,
    limit: usize,
    steps: usize,
) -> RunConfig {
    RunConfig {
        manifest: manifest.clone(),
        limit,
        auto: false,
        out: dir.join("out"),
        resume: false,
        workload: crate::common::workload(mock, steps),
        fail_on: Vec::new(),
        calls_csv: true,
    }
}

/// Every test's run ends within this, or the test fails instead of hanging.
async fn bounded<T>(run: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run finished within 30 s")
}

/// Runs `cfg` to the end, bounded in time; the run must succeed.
async fn run_ok(cfg: &RunConfig, ui: Arc<dyn BatchUi>, stop: Option<StopSignal>) -> RunOutcome {
    bounded(batch::run(cfg, ui, stop)).await.unwrap()
}

/// When the UI raises the stop signal, as Ctrl-C would.
enum Trigger {
    /// Once this many rows reached results.jsonl.
    RowsSaved(usize),
    /// At the first call of a chain's first step once this many calls finished: that row is
    /// then certainly mid-chain.
    FirstStepCall(usize),
}

/// A [`BatchUi`] that records what it is told and can raise the stop signal.
#[derive(Default)]
struct Recorder {
    saved: Mutex<Vec<String>>,
    calls: AtomicUsize,
    called_rows: Mutex<HashSet<u32>>,
    mid_chain: Mutex<Option<u32>>,
    stop: Option<(Trigger, watch::Sender<bool>)>,
    started: Notify,
}

impl Recorder {
    /// A recorder holding the sender of the returned stop signal.
    fn stopping(trigger: Option<Trigger>) -> (Arc<Recorder>, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        let rec = Recorder {
            stop: Some((trigger.unwrap_or(Trigger::RowsSaved(usize::MAX)), tx)),
            ..Recorder::default()
        };
        (Arc::new(rec), rx)
    }
}

impl BatchUi for Recorder {
    fn started(&self, _plan: &RunPlan<'_>) {
        self.started.notify_one();
    }

    fn call_done(&self, call: &CallRecord) {
        self.called_rows.lock().unwrap().insert(call.row);
        let calls = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((Trigger::FirstStepCall(n), tx)) = &self.stop {
            let mut mid = self.mid_chain.lock().unwrap();
            if calls >= *n && call.step == 0 && mid.is_none() {
                *mid = Some(call.row);
                tx.send_replace(true);
            }
        }
    }

    fn row_saved(&self, row: &Row, _chain: &ChainRecord) {
        let mut saved = self.saved.lock().unwrap();
        saved.push(row.id.clone());
        if let Some((Trigger::RowsSaved(n), tx)) = &self.stop
            && saved.len() >= *n
        {
            tx.send_replace(true);
        }
    }
}

/// summary.json as written, which must equal the outcome's summary.
fn summary_on_disk(out: &RunOutcome) -> RunSummaryFile {
    let text = std::fs::read_to_string(out.out.join("summary.json")).unwrap();
    let on_disk: RunSummaryFile = serde_json::from_str(&text).unwrap();
    assert_eq!(on_disk, out.summary);
    on_disk
}

/// Asserts every manifest row is accounted for exactly once.
fn assert_accounted(s: &RunSummaryFile) {
    let total = s.succeeded + s.failed + s.skipped + s.not_run;
    assert_eq!(total, s.rows_in_manifest, "{s:?}");
}

/// Asserts `lines` are exactly the manifest's rows, once each, every one ok with every step.
fn assert_every_row_ok_once(lines: &[ResultLine], manifest: &Manifest, steps: usize) {
    let ids: HashSet<String> = lines.iter().map(|l| l.id.clone()).collect();
    let expected: HashSet<String> = manifest.ids().collect();
    assert_eq!(lines.len(), manifest.len(), "every row exactly once");
    assert_eq!(ids, expected);
    assert!(lines.iter().all(|l| whole_and_ok(l, steps)), "{lines:?}");
}

/// Whether a row succeeded with every one of the chain's `steps` steps.
fn whole_and_ok(line: &ResultLine, steps: usize) -> bool {
    line.status == ResultStatus::Ok && line.steps.len() == steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_writes_every_row_and_resume_skips_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let mock = spawn_mock(fixed(3)).await;
    let rows = manifest(dir.path(), 12);
    let mut cfg = config(&mock, &rows, dir.path(), 4, 2);
    let ui = Arc::new(Recorder::default());

    let first = run_ok(&cfg, ui.clone(), None).await;
    assert!(!first.interrupted);
    let s = summary_on_disk(&first);
    assert_eq!((s.succeeded, s.failed, s.skipped, s.not_run), (12, 0, 0, 0));
    assert_eq!(s.calls, 24, "two steps per row, no retries");
    // calls.csv holds every call: a header and one line each.
    let calls_csv = std::fs::read_to_string(first.out.join("calls.csv")).unwrap();
    assert_eq!(calls_csv.lines().count(), 1 + 24);
    assert_every_row_ok_once(&ResultsLog::read_all(&first.out).unwrap(), &rows, 2);
    assert_eq!(
        ui.saved.lock().unwrap().len(),
        12,
        "the UI heard of every saved row"
    );
    assert_eq!(first.verdict(&[]), Verdict::default());

    cfg.resume = true;
    let ui = Arc::new(Recorder::default());
    let second = run_ok(&cfg, ui.clone(), None).await;
    let s = summary_on_disk(&second);
    assert_eq!((s.succeeded, s.failed, s.skipped, s.not_run), (0, 0, 12, 0));
    assert_eq!(s.calls, 0);
    let calls_csv = std::fs::read_to_string(second.out.join("calls.csv")).unwrap();
    assert_eq!(
        calls_csv.lines().count(),
        1,
        "no row ran again: a header only"
    );
    assert!(ui.saved.lock().unwrap().is_empty());
    assert_every_row_ok_once(&ResultsLog::read_all(&second.out).unwrap(), &rows, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_with_every_row_ok_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mock = spawn_mock(fixed(5)).await;
    let rows = manifest(dir.path(), 40);
    let mut cfg = config(&mock, &rows, dir.path(), 4, 1);

    let (ui, stop) = Recorder::stopping(Some(Trigger::RowsSaved(8)));
    let first = run_ok(&cfg, ui.clone(), Some(stop)).await;
    assert!(first.interrupted);
    let s = summary_on_disk(&first);
    assert_accounted(&s);
    assert!(s.not_run > 0, "{s:?}");
    assert!(s.succeeded >= 8, "{s:?}");
    assert_eq!((s.failed, s.skipped), (0, 0));
    let logged = ResultsLog::read_all(&first.out).unwrap();
    assert_eq!(
        logged.len(),
        s.succeeded,
        "every finished row is in the log"
    );
    assert_eq!(ui.saved.lock().unwrap().len(), s.succeeded);

    cfg.resume = true;
    let ui = Arc::new(Recorder::default());
    let second = run_ok(&cfg, ui.clone(), None).await;
    assert!(!second.interrupted);
    let s2 = summary_on_disk(&second);
    assert_accounted(&s2);
    assert_eq!(s2.skipped, s.succeeded);
    assert_eq!(s2.succeeded, s.not_run);
    assert_eq!((s2.failed, s2.not_run), (0, 0));
    // The resumed session ran exactly the rows the first one left.
    let before: HashSet<String> = logged.into_iter().map(|l| l.id).collect();
    let now: HashSet<String> = ui.saved.lock().unwrap().iter().cloned().collect();
    assert_eq!(now.len(), s.not_run);
    assert!(before.is_disjoint(&now));
    assert_every_row_ok_once(&ResultsLog::read_all(&second.out).unwrap(), &rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_chain_lets_every_started_row_finish_and_says_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mock = spawn_mock(fixed(5)).await;
    let rows = manifest(dir.path(), 30);
    let cfg = config(&mock, &rows, dir.path(), 4, 3);

    let (ui, stop) = Recorder::stopping(Some(Trigger::FirstStepCall(6)));
    let out = run_ok(&cfg, ui.clone(), Some(stop)).await;
    assert!(out.interrupted, "a stopped run says so");
    let s = summary_on_disk(&out);
    assert_accounted(&s);
    assert!(s.not_run > 0, "{s:?}");

    // The row whose first step triggered the stop had two steps to go: it finished them.
    let mid = ui.mid_chain.lock().unwrap().expect("the stop was raised");
    let mid_id = &rows.id(mid as usize);
    // read_all refuses a torn line: no row is half-written.
    let logged = ResultsLog::read_all(&out.out).unwrap();
    let line = logged.iter().find(|l| &l.id == mid_id).expect("logged");
    assert!(whole_and_ok(line, 3), "{line:?}");

    // Every row that made a call is logged once, whole; no other row is.
    let id = |r: &u32| rows.id(*r as usize);
    let started: HashSet<String> = ui.called_rows.lock().unwrap().iter().map(id).collect();
    let ids: HashSet<String> = logged.iter().map(|l| l.id.clone()).collect();
    assert_eq!(logged.len(), ids.len(), "no row twice");
    assert_eq!(ids, started);
    assert!(logged.iter().all(|l| whole_and_ok(l, 3)), "{logged:?}");
    assert_eq!(s.succeeded, logged.len());
    assert_eq!(s.not_run, rows.len() - started.len());
}

/// A mock failing `rate` of calls with a plain 500 (no backoff retries, which 503 would get).
fn failing(rate: f64) -> MockConfig {
    MockConfig {
        failure_rate: rate,
        failure_statuses: vec![500],
        seed: 7,
        ..fixed(2)
    }
}

/// No retry pass and no backoff retry: a failed call fails its row.
fn no_retries() -> RetryPolicy {
    RetryPolicy {
        retry_passes: 0,
        max_retries: 0,
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_names_the_broken_check_and_a_clean_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 20);
    let checks: Vec<Threshold> = vec!["errors>1%".parse().unwrap(), "failed>0".parse().unwrap()];

    let mock = spawn_mock(failing(0.5)).await;
    let mut cfg = config(&mock, &rows, dir.path(), 4, 1);
    cfg.workload.retry = no_retries();
    cfg.fail_on = vec![checks[0]];
    let out = run_ok(&cfg, Arc::new(Quiet), None).await;
    let s = summary_on_disk(&out);
    assert_accounted(&s);
    assert!(s.failed > 0 && s.succeeded > 0, "{s:?}");
    assert_eq!(s.calls, 20);
    let failed_csv = std::fs::read_to_string(out.out.join("failed.csv")).unwrap();
    assert_eq!(failed_csv.lines().count(), s.failed + 1, "{failed_csv}");

    let verdict = out.verdict(&cfg.fail_on);
    assert!(verdict.all_failed.is_empty(), "{verdict:?}");
    assert_eq!(verdict.broken.len(), 1, "{verdict:?}");
    assert!(
        verdict.broken[0].starts_with("errors>1.00% broken: measured"),
        "{verdict:?}"
    );
    let err = verdict.into_result().unwrap_err().to_string();
    assert!(err.contains("--fail-on check(s) broken"), "{err}");
    assert!(err.contains("errors>1.00%"), "{err}");
    // Both checks break on this run; only the ones asked for are reported.
    assert_eq!(out.verdict(&checks).broken.len(), 2);

    let clean = spawn_mock(failing(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&clean, &rows, dir.path(), 4, 1);
    cfg.workload.retry = no_retries();
    cfg.fail_on = checks;
    let out = run_ok(&cfg, Arc::new(Quiet), None).await;
    let verdict = out.verdict(&cfg.fail_on);
    assert_eq!(verdict, Verdict::default());
    assert!(verdict.into_result().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_where_every_chain_fails_is_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 6);
    let mock = spawn_mock(failing(1.0)).await;
    let mut cfg = config(&mock, &rows, dir.path(), 3, 2);
    cfg.workload.retry = no_retries();
    // Failed rows are data, not an error.
    let out = run_ok(&cfg, Arc::new(Quiet), None).await;
    let s = summary_on_disk(&out);
    assert_eq!((s.succeeded, s.failed, s.not_run), (0, 6, 0));
    let logged = ResultsLog::read_all(&out.out).unwrap();
    assert_eq!(logged.len(), 6);
    for l in &logged {
        assert_eq!(l.status, ResultStatus::Failed, "{l:?}");
        let error = l.error.as_ref().expect("a failed row says why");
        assert_eq!(error.status, Some(500), "{l:?}");
    }

    let verdict = out.verdict(&[]);
    assert!(verdict.broken.is_empty());
    assert_eq!(verdict.all_failed.len(), 1, "{verdict:?}");
    assert!(verdict.all_failed[0].contains("failed.csv"), "{verdict:?}");
    let err = verdict.into_result().unwrap_err().to_string();
    assert!(
        err.starts_with("every chain failed in this run (6 rows"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_folder_in_use_is_refused_as_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let mock = spawn_mock(fixed(50)).await;
    let rows = manifest(dir.path(), 100);
    let cfg = config(&mock, &rows, dir.path(), 1, 1);

    // The first run (5 s unless stopped) holds the folder from before `started` until it
    // returns.
    let (ui, stop) = Recorder::stopping(None);
    let first = tokio::spawn({
        let (cfg, ui) = (cfg.clone(), ui.clone());
        async move { batch::run(&cfg, ui, Some(stop)).await }
    });
    bounded(ui.started.notified()).await;

    let mut second = cfg.clone();
    (second.resume, second.limit) = (true, 25);
    let err = bounded(batch::run(&second, Arc::new(Quiet), None))
        .await
        .unwrap_err();
    assert!(err.is_input_error(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("in use by another loadchain run"), "{text}");

    // Stop the first (as Ctrl-C would); it still writes its summary.
    ui.stop.as_ref().unwrap().1.send_replace(true);
    let first = bounded(first).await.unwrap().unwrap();
    assert_accounted(&summary_on_disk(&first));

    // Once the first run is done the folder is free: resuming completes it.
    let resumed = run_ok(&second, Arc::new(Quiet), None).await;
    assert_eq!(resumed.summary.skipped, first.summary.succeeded);
    assert_every_row_ok_once(&ResultsLog::read_all(&resumed.out).unwrap(), &rows, 1);
}
