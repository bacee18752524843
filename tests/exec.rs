//! `loadchain run --exec`: a local program per row under the same limit, retries and results.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::run::{manifest, run};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exec")
        .join(name)
}

fn summary(out: &Path) -> serde_json::Value {
    crate::common::read_json(&out.join("summary.json"))
}

fn results(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs 10 rows of the 0.3 s script at `limit`; its wall time from summary.json.
fn wall_at(dir: &Path, rows: &Path, limit: &str) -> f64 {
    let out = dir.join(format!("out-{limit}"));
    let exec = format!("{} {{{{topic}}}}", fixture("slow_echo.sh").display());
    run(rows, &out, &["--exec", &exec, "--limit", limit, "-q"])
        .assert()
        .success();
    let s = summary(&out);
    assert_eq!(s["succeeded"], 10);
    s["wall_ms"].as_f64().unwrap()
}

#[test]
fn limit_runs_programs_concurrently_with_row_env_and_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 10);
    let one = wall_at(dir.path(), &rows, "1");
    let five = wall_at(dir.path(), &rows, "5");
    eprintln!(
        "--exec wall: limit 1 {one:.0} ms, limit 5 {five:.0} ms, ×{:.2}",
        one / five
    );
    assert!(one / five > 3.0, "limit 1 {one} ms vs limit 5 {five} ms");
    // The env var and the {{topic}} argument both carry the row's topic; the id arrives.
    let all = results(&dir.path().join("out-5"));
    let row3 = all.iter().find(|r| r["id"] == "row-3").unwrap();
    assert_eq!(row3["steps"][0]["name"], "exec");
    assert_eq!(row3["steps"][0]["output"], "subject 3|row-3|subject 3\n");
}

/// Whether `pid` is gone (or a zombie left for init to reap).
fn dead(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(')')
            .next()
            .is_some_and(|t| t.trim_start().starts_with('Z'))
    })
}

#[test]
fn timeout_kills_the_program_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 1);
    let out = dir.path().join("out");
    let pid_file = dir.path().join("child.pid");
    let exec = format!("{} {}", fixture("hang.sh").display(), pid_file.display());
    let started = Instant::now();
    run(
        &rows,
        &out,
        &[
            "--exec",
            &exec,
            "--timeout",
            "1s",
            "--retry-passes",
            "0",
            "-q",
        ],
    )
    .assert()
    .failure();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s sleep was waited for"
    );
    let r = &results(&out)[0];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["kind"], "timeout");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead(&pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dead(&pid), "the script's child {pid} outlived the timeout");
}

#[test]
fn non_zero_exit_fails_the_row_and_a_retry_pass_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 2);
    let count = dir.path().join("count");
    let exec = format!("{} {}", fixture("fail_once.sh").display(), count.display());
    // No retry pass: exit 3 fails each row, with the code and stderr in the message.
    let out = dir.path().join("once");
    run(&rows, &out, &["--exec", &exec, "--retry-passes", "0", "-q"])
        .assert()
        .failure();
    for r in results(&out) {
        assert_eq!(r["status"], "failed");
        assert_eq!(r["error"]["kind"], "server_error");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("code 3") && message.contains("first try fails"),
            "{message}"
        );
    }
    // With a retry pass on a fresh count, each row runs twice and succeeds.
    std::fs::remove_file(&count).unwrap();
    let out = dir.path().join("retried");
    run(&rows, &out, &["--exec", &exec, "--retry-passes", "1", "-q"])
        .assert()
        .success();
    assert!(
        results(&out)
            .iter()
            .all(|r| r["status"] == "ok" && r["attempts"] == 2)
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 4);
}

#[test]
fn unknown_placeholder_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 1);
    run(
        &rows,
        &dir.path().join("o"),
        &["--exec", "echo {{nope}}", "-q"],
    )
    .assert()
    .code(2)
    .stderr(predicates::str::contains("--exec"));
}
