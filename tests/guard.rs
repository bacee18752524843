//! What keeps a run's output safe: one process per output folder, a results log that stops
//! the run when it cannot be written, an output folder checked before the first call, and
//! limits that fit the open-file limit.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use loadchain::manifest::{ResultStatus, ResultsLog};

use crate::common::loadchain;
use crate::run::{manifest, run, spawn_run, wait_for_results};

const FAST_ONE_STEP: [&str; 6] = [
    "--steps",
    "1",
    "--mock-failure-rate",
    "0",
    "--mock-latency",
    "fixed:20ms",
];

#[test]
fn a_second_run_on_the_same_out_is_refused_and_no_row_is_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 60);
    let out = dir.path().join("out");
    let mut args = vec!["--limit", "2", "-q"];
    args.extend(FAST_ONE_STEP);
    let first = spawn_run(&rows, &out, &args, Stdio::null());
    wait_for_results(&out, 1);
    // Both a fresh start and a --resume are refused while the first one runs.
    for extra in [&[][..], &["--resume"][..]] {
        let mut second = args.clone();
        second.extend(extra);
        let a = run(&rows, &out, &second).assert().code(2);
        let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert!(
            stderr.contains(&format!(
                "is in use by another loadchain run (pid {})",
                first.id()
            )),
            "{stderr}"
        );
    }
    let status = first.wait_with_output().unwrap().status;
    assert!(status.success(), "{status}");
    let mut oks: HashMap<String, usize> = HashMap::new();
    for line in ResultsLog::read_all(&out).unwrap() {
        if line.status == ResultStatus::Ok {
            *oks.entry(line.id).or_default() += 1;
        }
    }
    assert_eq!(oks.len(), 60);
    assert!(oks.values().all(|&n| n == 1), "doubled rows: {oks:?}");
    // Once the first process is gone (the kernel released its lock), --resume works.
    run(&rows, &out, &["--resume", "-q"]).assert().success();
}

#[test]
fn two_runs_started_together_never_both_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 30);
    let out = dir.path().join("out");
    let mut args = vec!["--limit", "3", "-q"];
    args.extend(FAST_ONE_STEP);
    let a = spawn_run(&rows, &out, &args, Stdio::null());
    let b = spawn_run(&rows, &out, &args, Stdio::null());
    let codes: Vec<i32> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    // One runs; the other is refused as in use (2), or, if it starts after the first
    // finished, as a folder that holds another run's results (also 2).
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 2], "{codes:?}");
    assert_eq!(ResultsLog::read_all(&out).unwrap().len(), 30);
}

#[cfg(target_os = "linux")] // /dev/full
#[test]
fn a_results_log_that_cannot_be_written_stops_the_run_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 200);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Every write fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", out.join("results.jsonl")).unwrap();
    let started = Instant::now();
    let mut args = vec!["--limit", "4"];
    args.extend(FAST_ONE_STEP);
    let a = run(&rows, &out, &args).assert().code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("could not be saved"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // It stopped starting rows after the first failed write: the failed row, the 4 in
    // flight and the few that started while the collector caught up went unsaved, not all
    // 200 (the stop is asynchronous, so the exact count varies).
    let unsaved: usize = stderr
        .split(" finished rows could not be saved")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    assert!((1..=20).contains(&unsaved), "{unsaved} unsaved: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.join("summary.json").exists());
}

#[test]
fn sweep_refuses_an_unwritable_out_before_the_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let started = Instant::now();
    // A parent that is a file: nothing can be created under it.
    let a = loadchain()
        .args([
            "sweep",
            "--n",
            "200",
            "--limits",
            "1",
            "--mock-latency",
            "fixed:50ms",
        ])
        .arg("--out")
        .arg(file.join("report"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(stderr.contains("--out"), "{stderr}");
    // 200 sequential 3-step chains at 50 ms would take 30 s: it failed before any of them.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_second_sweep_on_the_same_out_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let args = [
        "sweep",
        "--n",
        "20",
        "--limits",
        "1",
        "--pooling",
        "on",
        "--steps",
        "1",
        "--mock-latency",
        "fixed:50ms",
        "--mock-failure-rate",
        "0",
        "-q",
    ];
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_loadchain"))
        .args(args)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tmp = dir.path().join(".report.tmp");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tmp.join(".loadchain.lock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let a = loadchain()
        .args(args)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!(
            "is in use by another loadchain run (pid {})",
            first.id()
        )),
        "{stderr}"
    );
    assert!(first.wait().unwrap().success());
    assert!(out.join("report.json").exists());
    assert!(!tmp.exists(), "the temporary folder was renamed into place");
    assert!(
        !out.join(".loadchain.lock").exists(),
        "no lock file is left in the report"
    );
    // And now the folder exists: a third sweep is refused for that reason.
    loadchain()
        .args(args)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("already exists"));
}

#[cfg(target_os = "linux")]
#[test]
fn a_limit_over_the_open_file_limit_is_refused_with_the_ulimit_to_use() {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loadchain"));
    cmd.args(["sweep", "--limits", "5000", "--n", "5000", "--no-report"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, 1024, 1024));
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--limits: 5000 concurrent"), "{stderr}");
    assert!(stderr.contains("ulimit -n 10064"), "{stderr}");
}
