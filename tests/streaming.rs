//! Records leave memory as they finish: calls.csv grows while the run goes, and a run's peak
//! memory does not grow with its calls.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::{manifest, spawn_run, summary};

/// Peak RSS (VmHWM) of a child, polled until it exits; kB. Linux only.
fn peak_rss_kb(mut child: std::process::Child) -> (u64, std::process::ExitStatus) {
    let status_file = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (peak, status);
        }
        peak = peak.max(crate::hostile::harness::memory_kb(&status_file).0);
        assert!(Instant::now() < deadline, "the run took over 240 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn calls_csv_rows_arrive_while_the_run_is_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 300);
    let out = dir.path().join("out");
    let args = [
        "--limit",
        "2",
        "-q",
        "--steps",
        "1",
        "--mock-failure-rate",
        "0",
        "--mock-latency",
        "fixed:10ms",
    ];
    // 300 calls, two at a time, 10 ms each: 1.5 s at least.
    let mut child = spawn_run(&rows, &out, &args, Stdio::null());
    let calls = out.join("calls.csv");
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen_early = loop {
        let lines = std::fs::read_to_string(&calls).map_or(0, |t| t.lines().count());
        if lines > 20 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "calls.csv stayed at {lines} lines"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run was still going when {seen_early} lines were there"
    );
    assert!(child.wait().unwrap().success());
    let s = summary(&out);
    let lines = std::fs::read_to_string(&calls).unwrap().lines().count() as u64;
    assert_eq!(
        lines,
        1 + s["calls"].as_u64().unwrap(),
        "a header and one row per call"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_sweep_of_200k_calls_stays_within_the_memory_of_a_small_one() {
    let sweep = |n: &str| {
        Command::new(env!("CARGO_BIN_EXE_loadchain"))
            .args(["sweep", "--limits", "50", "--n", n, "--steps", "1"])
            .args(["--pooling", "on", "--no-report", "-q"])
            .args(["--mock-latency", "fixed:0ms", "--mock-failure-rate", "0"])
            .args(["--mock-conn-cost", "0ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (small, status) = peak_rss_kb(sweep("2k"));
    assert!(status.success());
    let (large, status) = peak_rss_kb(sweep("200k"));
    assert!(status.success());
    // Keeping every call (≈1.3 kB each, as before) would add about 260 MB; what a run
    // keeps per row is an 8-byte output hash (1.6 MB here).
    assert!(small > 0 && large > 0, "VmHWM read: {small} / {large} kB");
    assert!(
        large < small + 24 * 1024,
        "peak RSS {large} kB at 200k calls vs {small} kB at 2k"
    );
}
