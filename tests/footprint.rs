//! RSS flat in N: a sweep holds nothing per row (no pass count, and output hashes only for a
//! size that a second run compares), so 20× the calls may not cost 1.2× the memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak RSS (VmHWM, kB) of a child, polled every 10 ms until it exits (at most 240 s).
fn peak_rss_kb(mut child: std::process::Child) -> u64 {
    let status_file = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the sweep failed: {status}");
            return peak;
        }
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        let hwm = text
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        peak = peak.max(hwm);
        assert!(Instant::now() < deadline, "the sweep took over 240 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sweep(n: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_loadchain"))
        .args(["sweep", "--limits", "50", "--n", n, "--steps", "1"])
        .args(["--pooling", "on", "--no-report", "-q"])
        .args(["--mock-latency", "fixed:0ms", "--mock-failure-rate", "0"])
        .args(["--mock-conn-cost", "0ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_single_run_of_200k_calls_peaks_within_1_2x_of_10k() {
    let small = peak_rss_kb(sweep("10k"));
    let large = peak_rss_kb(sweep("200k"));
    eprintln!("peak RSS: {small} kB at 10k calls, {large} kB at 200k");
    assert!(small > 0, "VmHWM was read");
    // Before: 2 bytes a row of pass counts and 4 of output hashes, +1.2 MB here.
    assert!(
        large * 5 <= small * 6,
        "peak RSS {large} kB at 200k calls vs {small} kB at 10k"
    );
}
