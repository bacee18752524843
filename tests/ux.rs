//! What a new user tripped over: one banner on stderr, TTFT and `--json` for `run`, a loud
//! warning for a missing API key, exit 1 when every chain failed, and a sweep stopped in its
//! first run keeping what finished.

use std::path::Path;
use std::sync::Arc;

use loadchain::chain::Row;
use loadchain::record::{ChainRecord, Pooling};
use loadchain::runner::{NoObserver, Observer};
use loadchain::sweep::{self, SweepUi};
use predicates::prelude::*;

use crate::common::{Collect, fixed, loadchain, spawn_mock, sweep_config, sweep_to};

const SMALL_SWEEP: [&str; 9] = [
    "sweep",
    "--n",
    "4",
    "--limits",
    "1,2",
    "--steps",
    "1",
    "--mock-latency",
    "fixed:2ms",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn sweep_quiet_prints_only_results_and_no_banner() {
    let out = loadchain()
        .args(SMALL_SWEEP)
        .args(["--no-report", "-q"])
        .assert()
        .success();
    let (stdout, stderr) = (
        text(&out.get_output().stdout),
        text(&out.get_output().stderr),
    );
    assert!(
        stdout.starts_with("Wall time, pooled connections"),
        "{stdout}"
    );
    assert!(stdout.contains("Issues:"), "{stdout}");
    for settings in [
        "retry passes",
        "machine",
        "command",
        "wall time excludes",
        " sweep",
    ] {
        assert!(
            !stdout.contains(settings),
            "{settings:?} on stdout:\n{stdout}"
        );
    }
    assert!(stderr.is_empty(), "-q: nothing on stderr, got:\n{stderr}");
}

#[test]
fn sweep_shows_one_banner_on_stderr_and_keeps_it_off_stdout() {
    let out = loadchain()
        .args(SMALL_SWEEP)
        .arg("--no-report")
        .assert()
        .success();
    let (stdout, stderr) = (
        text(&out.get_output().stdout),
        text(&out.get_output().stderr),
    );
    assert_eq!(stderr.matches(" sweep\n").count(), 1, "{stderr}");
    assert!(stderr.contains("retry passes: 1"), "{stderr}");
    assert!(!stdout.contains("retry passes"), "{stdout}");
    assert!(stdout.contains("Wall time"), "{stdout}");
}

/// A manifest of `rows` rows with an `id` and a `topic` column.
fn manifest(dir: &Path, rows: usize) -> String {
    let path = dir.join("rows.csv");
    let mut body = String::from("id,topic\n");
    for i in 1..=rows {
        body.push_str(&format!("r{i},subject {i}\n"));
    }
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn run_stream_records_ttft_and_json_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 4);
    let stream = ["--steps", "1", "--stream", "--mock-failure-rate", "0"];
    let out_dir = dir.path().join("text");
    let out = loadchain()
        .args(["run", "--manifest", &rows, "--out"])
        .arg(&out_dir)
        .args(stream)
        .args(["--mock-latency", "fixed:20ms", "--mock-token-time", "2ms"])
        .assert()
        .success();
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("time to first token: p50 "), "{stdout}");
    assert!(
        stdout.contains(" ms, p90 ") && stdout.contains(" ms, p99 "),
        "{stdout}"
    );
    // The banner went to stderr, once; the summary to stdout.
    let stderr = text(&out.get_output().stderr);
    assert_eq!(stderr.matches(" run\n").count(), 1, "{stderr}");
    assert!(stderr.contains("4 rows to run"), "{stderr}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    let ttft = &file["ttft"];
    assert_eq!(ttft["count"], 4, "{file}");
    let p50 = ttft["p50_us"].as_u64().unwrap();
    assert!(
        p50 >= 20_000 && p50 <= ttft["p99_us"].as_u64().unwrap(),
        "{ttft}"
    );

    let json_dir = dir.path().join("json");
    let out = loadchain()
        .args(["run", "--manifest", &rows, "--json", "-q", "--out"])
        .arg(&json_dir)
        .args(stream)
        .assert()
        .success();
    let printed: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(printed["succeeded"], 4);
    assert!(printed["ttft"]["p90_us"].as_u64().unwrap() > 0);
    assert!(out.get_output().stderr.is_empty(), "-q: no banner");

    // Without --stream there is no TTFT to report.
    let plain = dir.path().join("plain");
    loadchain()
        .args([
            "run",
            "--manifest",
            &rows,
            "--json",
            "-q",
            "--steps",
            "1",
            "--out",
        ])
        .arg(&plain)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"ttft\"").not());
}

#[test]
fn a_target_without_its_api_key_gets_one_loud_warning_naming_the_variable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let warnings = |cmd: &mut assert_cmd::Command| {
        let out = cmd.assert().code(1); // nothing listens: the preflight fails after the warning
        let stderr = text(&out.get_output().stderr);
        let lines: Vec<String> = stderr
            .lines()
            .filter(|l| l.starts_with("WARNING"))
            .map(String::from)
            .collect();
        (lines, stderr)
    };
    let (lines, _) = warnings(&mut sweep_to(&url));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("$OPENAI_API_KEY is not set"), "{lines:?}");
    let (lines, _) = warnings(
        sweep_to(&url)
            .args(["--api-key-env", "LC_UX_KEY"])
            .env("LC_UX_KEY", " "),
    );
    assert!(lines[0].contains("$LC_UX_KEY is empty"), "{lines:?}");
    let canary = "sk-ux-canary-4711";
    let (lines, stderr) = warnings(
        sweep_to(&url)
            .args(["--api-key-env", "LC_UX_KEY"])
            .env("LC_UX_KEY", canary),
    );
    assert!(lines.is_empty(), "{stderr}");
    assert!(!stderr.contains(canary));
    // A key in an -H header is a key: no warning. No --target: the mock needs none.
    let (lines, _) = warnings(sweep_to(&url).args(["-H", "x-api-key: abc"]));
    assert!(lines.is_empty(), "{lines:?}");
    loadchain()
        .args(SMALL_SWEEP)
        .args(["--no-report", "-q"])
        .assert()
        .success()
        .stderr(predicate::str::contains("WARNING").not());
}

#[test]
fn every_chain_failing_exits_1_after_writing_reports() {
    let dir = tempfile::tempdir().unwrap();
    let all_fail = ["--mock-failure-rate", "1", "--mock-failure-statuses", "500"];
    let out = dir.path().join("sweep");
    loadchain()
        .args([
            "sweep",
            "--n",
            "2",
            "--limits",
            "1",
            "--pooling",
            "on",
            "--steps",
            "1",
            "-q",
        ])
        .args(["--retry-passes", "0", "--max-retries", "0"])
        .args(all_fail)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "every chain failed in n=2 c=1 pool=on (2 chains)",
        ));
    assert!(out.join("report.json").exists(), "reports come first");

    let rows = manifest(dir.path(), 3);
    let run_out = dir.path().join("run");
    loadchain()
        .args([
            "run",
            "--manifest",
            &rows,
            "--steps",
            "1",
            "-q",
            "--retry-passes",
            "0",
        ])
        .args(["--max-retries", "0"])
        .args(all_fail)
        .arg("--out")
        .arg(&run_out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "every chain failed in this run (3 rows; see ",
        ));
    assert!(run_out.join("summary.json").exists());

    // Some failures but not all: still a success without --fail-on.
    loadchain()
        .args([
            "sweep",
            "--n",
            "20",
            "--limits",
            "4",
            "--pooling",
            "on",
            "--steps",
            "1",
        ])
        .args([
            "-q",
            "--retry-passes",
            "0",
            "--max-retries",
            "0",
            "--no-report",
        ])
        .args(["--mock-failure-rate", "0.3", "--mock-latency", "fixed:1ms"])
        .assert()
        .success();
}

/// Presses "Ctrl-C" when the first run's second chain finishes.
struct StopInFirstRun(tokio::sync::watch::Sender<bool>, Arc<Collect>);

struct StopAfterTwo {
    stop: tokio::sync::watch::Sender<bool>,
    done: std::sync::atomic::AtomicUsize,
}

impl Observer for StopAfterTwo {
    fn chain_done(&self, _: &Row, _: &ChainRecord, _: bool) {
        if self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.stop.send_replace(true);
        }
    }
}

impl SweepUi for StopInFirstRun {
    fn run_started(&self, _: usize, limit: usize, _: Pooling) -> Arc<dyn Observer> {
        if limit == 1 {
            let stop = Arc::new(StopAfterTwo {
                stop: self.0.clone(),
                done: Default::default(),
            });
            Arc::new(loadchain::runner::Tee(vec![stop, self.1.clone()]))
        } else {
            Arc::new(NoObserver)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stopped_in_its_first_run_keeps_the_finished_chains_as_partial() {
    let mock = spawn_mock(fixed(10)).await;
    let cfg = sweep_config(&mock, 20, &[1, 4], 1);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let seen = Arc::new(Collect::default());
    let out = sweep::run(&cfg, &StopInFirstRun(stop, seen.clone()), Some(stop_rx))
        .await
        .unwrap();
    assert!(out.report.interrupted);
    assert_eq!(out.report.runs.len(), 1, "the second run never started");
    let run = &out.report.runs[0];
    assert!(run.partial);
    assert!(run.chains_ok >= 2, "{run:?}");
    assert_eq!(run.chains_ok + run.chains_failed + run.chains_not_run, 20);
    assert!(run.chains_not_run > 0);
    assert_eq!(
        run.speedup, None,
        "a partial run has no comparable wall time"
    );
    assert_eq!(seen.calls().len() as u64, run.calls);
    assert_eq!(
        run.calls,
        mock.stats().requests_total - 1,
        "every call but the preflight"
    );

    // The report folder holds them and says the run was partial.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("r");
    let calls = [loadchain::record::RunCalls {
        key: run.key,
        calls: seen.calls(),
    }];
    loadchain::report::write_report(&folder, &out.report, &calls).unwrap();
    let back = loadchain::report::read_report(&folder).unwrap();
    assert_eq!(back, out.report);
    let terminal = loadchain::report::render_terminal_results(&out.report);
    assert!(terminal.contains("partial"), "{terminal}");
    let csv = std::fs::read_to_string(folder.join("calls.csv")).unwrap();
    assert_eq!(
        csv.lines().count() as u64,
        1 + run.calls,
        "calls.csv keeps them"
    );
}
