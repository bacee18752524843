//! `loadchain sweep --exec`: a speedup table of the user's own program, with the same
//! retry passes and reports as an HTTP sweep.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::loadchain;
use crate::schema::{assert_valid, validator};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exec")
        .join(name)
        .display()
        .to_string()
}

/// `loadchain sweep --exec COMMAND --out OUT -q` plus `args`.
fn sweep(exec: &str, out: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = loadchain();
    cmd.args(["sweep", "--exec", exec, "--out"])
        .arg(out)
        .arg("-q")
        .args(args);
    cmd
}

fn report(out: &Path) -> Value {
    crate::common::read_json(&out.join("report.json"))
}

fn run_at(report: &Value, limit: u64) -> &Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["limit"] == limit)
        .unwrap_or_else(|| panic!("no run at limit {limit}"))
}

#[test]
fn limit_5_runs_the_program_over_3x_faster_than_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let exec = format!("sh {} {{{{topic}}}}", fixture("slow_echo.sh"));
    sweep(&exec, &out, &["--limits", "1,5", "--n", "10"])
        .assert()
        .success();
    let r = report(&out);
    assert_valid(
        &validator("report.schema.json"),
        &r,
        "sweep --exec report.json",
    );
    // Pooling is measured on only, and the program is the one step.
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    assert_eq!(r["settings"]["pooling"], serde_json::json!(["on"]));
    assert_eq!(
        r["settings"]["api"], "exec",
        "a program speaks no API format"
    );
    assert_eq!(r["settings"]["steps"], serde_json::json!(["exec"]));
    assert_eq!(r["settings"]["model"], "");
    let (one, five) = (run_at(&r, 1), run_at(&r, 5));
    for run in [one, five] {
        assert_eq!(run["chains_ok"], 10);
        assert_eq!(run["calls"], 10);
    }
    // 10 runs of a 0.3 s script one at a time cannot take under 3 s.
    assert!(
        one["wall_ms"].as_f64().unwrap() >= 3000.0,
        "{}",
        one["wall_ms"]
    );
    let speedup = five["speedup"].as_f64().unwrap();
    eprintln!("sweep --exec: limit 5 ×{speedup:.2} against sequential");
    assert!(speedup > 3.0, "speedup {speedup}");
    // Every report file is written, and says why there is no unpooled column.
    for file in [
        "summary.md",
        "summary.csv",
        "calls.csv",
        "speedup.png",
        "timeline.png",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("With --exec only pooling on is measured"),
        "{md}"
    );
    assert!(
        !md.contains("Pooled connections"),
        "a program has no connections to head a table with: {md}"
    );
}

#[test]
fn shell_mode_gets_row_ids_columns_and_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let log: PathBuf = dir.path().join("seen");
    let exec = format!(
        "echo \"$LOADCHAIN_ROW_ID|$LOADCHAIN_COL_TOPIC|{{{{topic}}}}|{{{{id}}}}\" >> '{}'",
        log.display()
    );
    sweep(&exec, &out, &["--shell", "--limits", "2", "--n", "3"])
        .assert()
        .success();
    let mut seen: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "1|topic 1|topic 1|1",
            "2|topic 2|topic 2|2",
            "3|topic 3|topic 3|3"
        ]
    );
}

#[test]
fn failed_programs_are_counted_and_the_retry_pass_reruns_them() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let exec = format!("sh {} {}", fixture("fail_once.sh"), count.display());
    // No retry pass: every row's first run exits 3, and the report counts each failure.
    let out = dir.path().join("once");
    sweep(
        &exec,
        &out,
        &["--limits", "1", "--n", "3", "--retry-passes", "0"],
    )
    .assert()
    .code(1);
    let run = run_at(&report(&out), 1).clone();
    assert_eq!(run["chains_failed"], 3);
    assert_eq!(run["chains_ok"], 0);
    assert_eq!(run["calls_failed"], 3);
    assert_eq!(run["errors"]["server_error"], 3);
    // One retry pass on a fresh count: each row runs twice and ends ok.
    std::fs::remove_file(&count).unwrap();
    let out = dir.path().join("retried");
    sweep(
        &exec,
        &out,
        &["--limits", "2", "--n", "3", "--retry-passes", "1"],
    )
    .assert()
    .success();
    let run = run_at(&report(&out), 2).clone();
    assert_eq!(run["chains_ok"], 3);
    assert_eq!(run["chains_retried"], 3);
    assert_eq!(run["calls"], 6);
    assert_eq!(run["calls_failed"], 3);
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 6);
}

#[test]
fn flags_of_http_calls_and_the_mock_are_usage_errors_with_exec() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    for (extra, says) in [
        (&["--target", "http://127.0.0.1:9"][..], "--target"),
        (&["--model", "gpt-4o"][..], "--model"),
        (&["--api", "raw"][..], "--api"),
        (&["--stream"][..], "--stream"),
        (&["--steps", "2"][..], "--steps"),
        (&["--warmup"][..], "--warmup"),
        (&["--pooling", "off"][..], "--pooling"),
        (&["--mock-latency", "fixed:1ms"][..], "--mock-*"),
    ] {
        sweep("true", &out, extra)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
    // --shell means nothing without --exec.
    loadchain()
        .args(["sweep", "--shell", "--no-report"])
        .assert()
        .code(2);
    assert!(!out.join("report.json").exists());
}

#[test]
fn a_hanging_program_is_killed_at_the_timeout_and_counted_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let pid_file = dir.path().join("child.pid");
    let exec = format!("sh {} {}", fixture("hang.sh"), pid_file.display());
    let started = std::time::Instant::now();
    sweep(
        &exec,
        &out,
        &[
            "--limits",
            "1",
            "--n",
            "1",
            "--timeout",
            "1s",
            "--retry-passes",
            "0",
        ],
    )
    .assert()
    .code(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the script's 60 s sleep was waited for"
    );
    let run = run_at(&report(&out), 1).clone();
    assert_eq!(run["chains_failed"], 1);
    assert_eq!(run["errors"]["timeout"], 1);
}
