//! Two processes on one `--out`: the second is refused while the first holds the folder, and
//! no row ends with two `ok` lines.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::manifest;

/// `loadchain run` on the embedded mock: 40 rows, one 100 ms step each, limit 2 (about 2 s).
fn run_cmd(rows: &Path, out: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadchain"));
    cmd.env_remove("OPENAI_API_KEY")
        .arg("run")
        .arg("--manifest")
        .arg(rows)
        .arg("--out")
        .arg(out)
        .args(["--steps", "1", "--limit", "2", "-q"])
        .args(["--mock-latency", "fixed:100ms", "--mock-failure-rate", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

#[test]
fn a_second_run_on_a_folder_in_use_is_refused_and_nothing_is_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 40);
    let out = dir.path().join("out");
    let mut first = run_cmd(&rows, &out, false)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first run has logged a row: it is past every start-up check.
    let results = out.join("results.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&results).map_or(0, |t| t.lines().count()) < 1
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let mut second = run_cmd(&rows, &out, true);
    let second = second.stderr(Stdio::piped()).output().unwrap();
    let second_took = started.elapsed();
    let first_status = first.wait().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    let mut ok: HashMap<String, usize> = HashMap::new();
    for line in std::fs::read_to_string(&results).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["status"] == "ok" {
            *ok.entry(v["id"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let doubled = ok.values().filter(|&&n| n > 1).count();
    eprintln!(
        "HOSTILE | concurrent-resume | second exit {:?} after {:.1} s | {doubled} rows with two ok \
         lines | {}",
        second.status.code(),
        second_took.as_secs_f64(),
        stderr.lines().last().unwrap_or("")
    );
    assert!(first_status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    let expected = format!("in use by another loadchain run (pid {})", first.id());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        second_took < Duration::from_secs(5),
        "refused after {second_took:?}"
    );
    assert_eq!(doubled, 0, "rows with two ok lines");
    assert_eq!(ok.len(), 40, "every row once");
}
