//! The pooling verdict of the main job: the embedded mock charges ~1.5 ms on a connection's
//! first request, which unpooled calls pay every time; calls of the pooled and unpooled runs
//! pair up by (row, step), and the paired test sees the cost through the 30–150 ms spread
//! that hides it from an unpaired one.

use serde_json::Value;

use crate::common::{loadchain, read_json};
use crate::schema::{assert_valid, validator};

/// The sweep's paired pooling tests, as `(limit, unpooled cost ms, [lo, hi])`, checked
/// against the schema and for being paired.
fn paired_costs(args: &[&str]) -> (Vec<(u64, f64, [f64; 2])>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    loadchain()
        .args(["sweep", "--n", "50", "-q", "--out"])
        .arg(&out)
        .args(args)
        .assert()
        .success();
    let report: Value = read_json(&out.join("report.json"));
    assert_valid(&validator("report.schema.json"), &report, "report.json");
    let tests = report["pooling"].as_array().unwrap();
    let costs = tests
        .iter()
        .map(|t| {
            assert_eq!(t["test"], "wilcoxon_signed_rank", "{t}");
            // 50 chains × 3 steps, less those the mock's 2 % failures make retry in either run.
            let pairs = t["pairs"].as_u64().unwrap();
            assert!((100..=150).contains(&pairs), "{t}");
            let interval = [0, 1].map(|i| t["interval_ms"][i].as_f64().unwrap());
            let cost = t["unpooled_cost_ms"].as_f64().unwrap();
            assert!(interval[0] <= cost && cost <= interval[1], "{t}");
            (t["limit"].as_u64().unwrap(), cost, interval)
        })
        .collect();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    (costs, md)
}

#[test]
fn the_main_job_detects_the_unpooled_connection_cost_with_a_paired_test() {
    let (costs, md) = paired_costs(&["--limits", "1,5"]);
    assert_eq!(costs.len(), 2, "one per limit: {costs:?}");
    // The same sweep with no injected cost measures what a loopback connect itself costs
    // this build; the injected 1.5 ms comes on top of it.
    let (control, _) = paired_costs(&["--limits", "5", "--mock-conn-cost", "0ms"]);
    let connect = control[0].1;
    assert!((-0.2..1.0).contains(&connect), "{control:?}");
    for (limit, cost, [lo, hi]) in costs {
        assert!(
            lo > 0.5,
            "limit {limit}: the interval excludes 0: [{lo}, {hi}]"
        );
        assert!(
            (cost - connect - 1.5).abs() < 0.4,
            "limit {limit}: {cost} ms = {connect} ms of connect + the injected 1.5 ms"
        );
        assert!(hi - lo < 1.0, "limit {limit}: [{lo}, {hi}]");
    }
    for limit in ["sequential", "5 concurrent"] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("- {limit}: unpooled costs +")))
            .unwrap_or_else(|| panic!("no verdict for {limit}:\n{md}"));
        assert!(line.contains("Wilcoxon signed-rank on "), "{line}");
    }
}

#[test]
fn a_report_without_paired_tests_falls_back_to_the_unpaired_test_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    loadchain()
        .args([
            "sweep", "--n", "20", "--limits", "2", "--steps", "1", "-q", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let path = out.join("report.json");
    let mut report: Value = read_json(&path);
    report.as_object_mut().unwrap().remove("pooling");
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    let run = loadchain().arg("report").arg(&out).assert().success();
    let text = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    assert!(
        text.contains("2 concurrent: ") && text.contains("Mann–Whitney U, unpaired"),
        "{text}"
    );
}
