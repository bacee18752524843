//! `loadchain run`: durable results, resume after SIGKILL and Ctrl-C, retries, rate limits.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use loadchain::manifest::{ResultStatus, ResultsLog};

use crate::common::loadchain;

/// A manifest of `rows` rows (`row-1`, …) with an `id` and a `topic` column.
pub fn manifest(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=rows {
        text.push_str(&format!("row-{i},subject {i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `loadchain run --manifest ROWS --out OUT ARGS…`.
pub fn run(rows: &Path, out: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = loadchain();
    cmd.arg("run")
        .arg("--manifest")
        .arg(rows)
        .arg("--out")
        .arg(out)
        .args(args);
    cmd
}

/// The same command as a child process, for tests that interrupt it.
pub fn spawn_run(rows: &Path, out: &Path, args: &[&str], stderr: Stdio) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadchain"))
        .arg("run")
        .arg("--manifest")
        .arg(rows)
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits (at most 30 s) until results.jsonl in `out` holds at least `n` lines.
pub fn wait_for_results(out: &Path, n: usize) {
    let results = out.join("results.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&results).map_or(0, |t| t.lines().count()) < n
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn summary(out: &Path) -> serde_json::Value {
    crate::common::read_json(&out.join("summary.json"))
}

fn outputs_by_id(out: &Path) -> HashMap<String, String> {
    ResultsLog::read_all(out)
        .unwrap()
        .into_iter()
        .map(|l| {
            let last = l.steps.last().map(|s| s.output.clone()).unwrap_or_default();
            (l.id, last)
        })
        .collect()
}

/// One step against a mock that never fails, at the given latency.
const ONE_STEP_NO_FAILURES: [&str; 4] = ["--steps", "1", "--mock-failure-rate", "0"];

#[cfg(unix)] // SIGKILL
#[test]
fn killed_run_resumes_with_every_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 120);
    let out = dir.path().join("out");
    let mut args = vec!["--limit", "4", "--mock-latency", "fixed:40ms"];
    args.extend(ONE_STEP_NO_FAILURES);
    let mut child = spawn_run(&rows, &out, &args, Stdio::null());
    // Some rows are durable: kill without warning.
    wait_for_results(&out, 10);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Complete lines only: the kill itself may have torn the last one.
    let results = out.join("results.jsonl");
    let before = std::fs::read_to_string(&results)
        .unwrap()
        .matches('\n')
        .count();
    assert!(
        (10..120).contains(&before),
        "killed too late or too early: {before} lines"
    );
    // Simulate the worst moment: a crash in the middle of writing a line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"id":"row-999","status":"o"#).unwrap();
    drop(f);

    let mut args = vec!["--limit", "8", "--mock-latency", "fixed:5ms", "--resume"];
    args.extend(ONE_STEP_NO_FAILURES);
    let assert = run(&rows, &out, &args).assert().success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("cut short"), "{stderr}");
    let lines = ResultsLog::read_all(&out).unwrap();
    let ids: Vec<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 120, "every row exactly once");
    assert_eq!(unique.len(), 120);
    assert!(!unique.contains("row-999"));
    let s = summary(&out);
    assert_eq!(s["skipped"], before);
    assert_eq!(s["succeeded"].as_u64().unwrap() as usize, 120 - before);
    assert_eq!(s["torn_line_ignored"], before + 1);
}

#[cfg(unix)] // SIGINT through kill(1)
#[test]
fn ctrl_c_finishes_in_flight_rows_writes_the_summary_and_resume_completes() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 80);
    let out = dir.path().join("out");
    let mut args = vec!["--limit", "4", "--mock-latency", "fixed:50ms", "-q"];
    args.extend(ONE_STEP_NO_FAILURES);
    let child = spawn_run(&rows, &out, &args, Stdio::piped());
    wait_for_results(&out, 8);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let s = summary(&out);
    let not_run = s["not_run"].as_u64().unwrap();
    assert!(not_run > 0, "{s}");
    assert_eq!(s["succeeded"].as_u64().unwrap() + not_run, 80);
    // Every row that started was finished and logged, none twice.
    let logged = ResultsLog::read_all(&out).unwrap();
    assert_eq!(logged.len() as u64, s["succeeded"].as_u64().unwrap());

    let mut args = vec!["--limit", "8", "--mock-latency", "fixed:1ms", "--resume"];
    args.extend(ONE_STEP_NO_FAILURES);
    run(&rows, &out, &args).assert().success();
    let lines = ResultsLog::read_all(&out).unwrap();
    let ids: HashSet<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids.len(), 80);
    assert_eq!(lines.len(), 80);
}

#[test]
fn thirty_percent_failures_end_with_every_row_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 50);
    let out = dir.path().join("out");
    run(
        &rows,
        &out,
        &["--limit", "10", "--steps", "1", "--retry-passes", "10"],
    )
    .args(["--mock-latency", "fixed:1ms", "--mock-failure-rate", "0.3"])
    .args(["--mock-seed", "11"])
    .assert()
    .success();
    let lines = ResultsLog::read_all(&out).unwrap();
    assert_eq!(lines.len(), 50);
    assert!(lines.iter().all(|l| l.status == ResultStatus::Ok));
    assert!(
        lines.iter().any(|l| l.attempts > 1),
        "some rows needed a retry pass"
    );
    let failed = std::fs::read_to_string(out.join("failed.csv")).unwrap();
    assert_eq!(failed.lines().count(), 1, "header only: {failed}");
}

#[test]
fn outputs_are_identical_at_limit_1_and_limit_10() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 25);
    let mut outputs = Vec::new();
    for limit in ["1", "10"] {
        let out = dir.path().join(format!("out-{limit}"));
        run(
            &rows,
            &out,
            &["--limit", limit, "--mock-latency", "fixed:1ms"],
        )
        .args(["--mock-failure-rate", "0"])
        .assert()
        .success();
        outputs.push(outputs_by_id(&out));
    }
    assert_eq!(outputs[0].len(), 25);
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn client_rpm_matching_the_mock_limit_sees_no_429_storm() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 30);
    let out = dir.path().join("out");
    let started = Instant::now();
    let mut args = vec![
        "--limit",
        "10",
        "--rpm",
        "600",
        "--mock-latency",
        "fixed:1ms",
    ];
    args.extend(["--mock-rpm", "600", "--mock-rpm-burst", "3"]);
    args.extend(ONE_STEP_NO_FAILURES);
    run(&rows, &out, &args).assert().success();
    let elapsed = started.elapsed();
    let s = summary(&out);
    assert_eq!(s["succeeded"], 30);
    assert_eq!(s["errors"]["rate_limited"], 0, "{s}");
    assert_eq!(s["calls"], 30);
    // 600/min is one call per 100 ms: 30 calls cannot take less than 29 intervals.
    let wall_ms = s["wall_ms"].as_f64().unwrap();
    assert!(
        wall_ms >= 2_850.0,
        "sent faster than --rpm allows: {wall_ms} ms"
    );
    assert!(elapsed < Duration::from_secs(60));
}

#[test]
fn too_high_rpm_gets_429s_that_are_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 20);
    let out = dir.path().join("out");
    let mut args = vec!["--limit", "10", "--rpm", "100000", "--max-retries", "12"];
    args.extend(["--mock-rpm", "600", "--mock-rpm-burst", "2"]);
    args.extend(["--mock-latency", "fixed:1ms"]);
    args.extend(ONE_STEP_NO_FAILURES);
    run(&rows, &out, &args).assert().success();
    let s = summary(&out);
    assert_eq!(s["succeeded"], 20, "{s}");
    assert_eq!(s["failed"], 0);
    let limited = s["errors"]["rate_limited"].as_u64().unwrap();
    assert!(
        limited > 0,
        "the burst of 2 must refuse some of 10 concurrent calls"
    );
    assert_eq!(s["calls"].as_u64().unwrap(), 20 + limited);
    // Every refused call waited at least the mock's Retry-After of 1 s.
    assert!(s["wall_ms"].as_f64().unwrap() >= 1_000.0);
}
