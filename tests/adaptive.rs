//! `--limits auto` and `--limit auto` end to end against the embedded mock with an RPM quota:
//! the recommendation lands near the analytic limit, and the report carries it (top level,
//! trace, chart, summary.md, terminal line), matching the schemas.

use serde_json::Value;

use crate::common::loadchain;
use crate::schema::{assert_valid, validator};

/// Mock quota 6000 RPM (100 calls/s) with a small burst, 50 ms per call: the analytic best
/// limit is 100/s × 0.05 s = 5 (a little more in a debug build, whose calls take longer).
const QUOTA: [&str; 8] = [
    "--mock-rpm",
    "6000",
    "--mock-rpm-burst",
    "20",
    "--mock-latency",
    "fixed:50ms",
    "--mock-failure-rate",
    "0",
];

#[test]
fn a_sweep_with_limits_auto_recommends_a_limit_near_the_quota_and_reports_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let run = loadchain()
        .args(["sweep", "--n", "500", "--limits", "4,auto", "--steps", "1"])
        .args(["--pooling", "on", "--json", "-q", "--out"])
        .arg(&out)
        .args(QUOTA)
        .assert()
        .success();
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let v = validator("report.schema.json");
    assert_valid(&v, &stdout, "sweep --json with auto");
    let file: Value = crate::common::read_json(&out.join("report.json"));
    assert_valid(&v, &file, "report.json with auto");
    let limit = stdout["recommended_limit"].as_u64().unwrap();
    assert!((3..=10).contains(&limit), "recommended {limit}");
    let trace = stdout["limit_trace"].as_array().unwrap();
    assert!(trace.len() > 5, "{trace:?}");
    let peak = trace.iter().map(|p| p["limit"].as_u64().unwrap()).max();
    assert!(
        peak > Some(limit),
        "it probed past the quota and came back: {trace:?}"
    );
    let runs = stdout["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "limit 4, then the auto run");
    assert_eq!(runs[1]["auto"], true);
    assert_eq!(runs[1]["limit"], limit);
    assert!(runs[0].get("auto").is_none());
    assert!(out.join("limit_trace.png").metadata().unwrap().len() > 1000);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(&format!("recommended limit: {limit} (")),
        "{md}"
    );
}

#[test]
fn run_with_limit_auto_writes_the_recommendation_to_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=400 {
        text.push_str(&format!("r{i},subject {i}\n"));
    }
    std::fs::write(&rows, text).unwrap();
    let out = dir.path().join("out");
    let run = loadchain()
        .args(["run", "--manifest"])
        .arg(&rows)
        .arg("--out")
        .arg(&out)
        .args(["--limit", "auto", "--steps", "1"])
        .args(QUOTA)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    let summary: Value = crate::common::read_json(&out.join("summary.json"));
    assert_valid(
        &validator("summary.schema.json"),
        &summary,
        "summary.json with auto",
    );
    let limit = summary["recommended_limit"].as_u64().unwrap();
    assert!((2..=12).contains(&limit), "recommended {limit}");
    assert_eq!(summary["limit"], limit);
    assert_eq!(summary["succeeded"], 400);
    assert!(
        stdout.contains(&format!("recommended limit: {limit} (")),
        "{stdout}"
    );
    assert!(out.join("limit_trace.png").exists());
}

#[test]
fn limits_must_be_counts_or_auto() {
    let out = loadchain()
        .args(["sweep", "--limits", "5,fast"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("auto"), "{err}");
}

/// `sweep --limits auto` against 12,000 RPM (200 calls/s) and 50 ms calls: the analytic best
/// limit is 200/s × 0.05 s = 10. Returns the recommendation, its basis and summary.md.
fn recommended_at_burst(burst: &str, n: &str) -> (u64, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let run = loadchain()
        .args(["sweep", "--n", n, "--limits", "auto", "--steps", "1"])
        .args(["--pooling", "on", "--json", "-q", "--out"])
        .arg(&out)
        .args(["--mock-rpm", "12000", "--mock-rpm-burst", burst])
        .args(["--mock-latency", "fixed:50ms", "--mock-failure-rate", "0"])
        .assert()
        .success();
    assert_valid(
        &validator("report.schema.json"),
        &crate::common::read_json(&out.join("report.json")),
        "report.json",
    );
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    (
        stdout["recommended_limit"].as_u64().unwrap(),
        stdout["recommendation_basis"].as_str().unwrap().to_string(),
        md,
    )
}

#[test]
fn the_recommendation_stays_within_10_percent_of_the_quota_times_the_latency() {
    // Burst 1 is left out (issue 26 item 6, open): the pacer keeps a bucket of one one refill
    // apart, but tokio's 1 ms timer turns 5 ms refills into ~6 ms sends, so the client reaches
    // ~160 of 200 calls/s and recommends 6–8. At 6,000 RPM and 100 ms (10 ms refills) it
    // recommends 9, yet too few windows saturate to call it `measured` every time.
    for burst in ["20", "100"] {
        let (limit, basis, _) = recommended_at_burst(burst, "1200");
        assert_eq!(basis, "measured", "burst {burst}");
        assert!(
            (9..=11).contains(&limit),
            "burst {burst}: recommended {limit}"
        );
    }
}

#[test]
fn a_burst_that_holds_the_whole_run_gives_a_lower_bound() {
    let (limit, basis, md) = recommended_at_burst("100000", "300");
    assert_eq!(basis, "lower_bound");
    assert!(
        md.contains(&format!("recommended limit: {limit} (")) && md.contains("a lower bound"),
        "{md}"
    );
}
