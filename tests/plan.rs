//! `loadchain plan` as the binary runs it: the course example, JSON, `--from` a real sweep
//! folder, and bad input exiting 2 naming the flag.

use serde_json::Value;

use crate::common::loadchain;

fn plan(args: &[&str]) -> String {
    let out = loadchain().arg("plan").args(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn plan_fails(args: &[&str], needle: &str) {
    let out = loadchain().arg("plan").args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} not in {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        if needle.starts_with("invalid") { 3 } else { 1 },
        "{stderr}"
    );
}

#[test]
fn the_course_example_prints_72_rpm_and_8() {
    let text = plan(&[
        "--rpm",
        "60",
        "--steps",
        "3",
        "--chain-time",
        "25s",
        "--limit",
        "10",
    ]);
    assert!(text.contains("Limit 10 demands 72 RPM"), "{text}");
    assert!(text.contains("over the quota"), "{text}");
    assert!(text.contains("Largest safe limit: 8"), "{text}");
    let json: Value = serde_json::from_str(&plan(&[
        "--rpm",
        "60",
        "--steps",
        "3",
        "--chain-time",
        "25s",
        "--limit",
        "10",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["max_limit"], 8);
    assert_eq!(json["demand_rpm"], 72.0);
    assert_eq!(json["exceeds"], true);
    assert_eq!(json["expected_wall_ms"], 325_000);
    assert!(json["demand_tpm"].is_null());
}

#[test]
fn tpm_binds_through_the_binary() {
    let json: Value = serde_json::from_str(&plan(&[
        "--rpm",
        "600",
        "--tpm",
        "30000",
        "--tokens-per-call",
        "1000",
        "--chain-time",
        "25s",
        "--limit",
        "5",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["max_limit"], 4);
    assert_eq!(json["demand_tpm"], 36_000.0);
    assert_eq!(json["exceeds"], true);
}

#[test]
fn bad_plan_input_exits_2_naming_the_flag() {
    plan_fails(&["--rpm", "60"], "--chain-time");
    plan_fails(&["--chain-time", "25s"], "--rpm");
    plan_fails(
        &["--tpm", "1000", "--chain-time", "25s"],
        "--tokens-per-call",
    );
    plan_fails(
        &["--rpm", "0", "--chain-time", "25s"],
        "invalid value '0' for '--rpm",
    );
    plan_fails(
        &["--rpm", "60", "--chain-time", "0s"],
        "invalid value '0s' for '--chain-time",
    );
    plan_fails(
        &["--rpm", "60", "--from", "/nonexistent/loadchain-plan"],
        "--from",
    );
}

#[test]
fn from_a_real_sweep_folder_uses_its_measured_chain_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    loadchain()
        .args([
            "sweep",
            "--n",
            "4",
            "--limits",
            "1,2",
            "--pooling",
            "on",
            "--steps",
            "2",
            "-q",
        ])
        .args([
            "--mock-latency",
            "fixed:20ms",
            "--mock-failure-rate",
            "0",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let json: Value = serde_json::from_str(&plan(&[
        "--rpm",
        "600",
        "--n",
        "4",
        "--json",
        "--from",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    // Chains of 2 calls of ~20 ms (~40 ms): 600 RPM × 0.04 s / (60 × 2) = 0.2, so not even
    // one chain in flight stays within 600 RPM, and the quota sets the pace: 4 chains × 2
    // calls at 600 a minute = 800 ms. Both only follow from the measured chain time and calls.
    assert_eq!(json["max_limit"], 0, "{json}");
    assert_eq!(json["expected_wall_ms"], 800, "{json}");
    // One chain at a time demands 60 / 0.04 × 2 ≈ 2,800 RPM.
    assert!(json["demand_rpm"].as_f64().unwrap() > 1000.0, "{json}");
    assert_eq!(json["exceeds"], true, "{json}");
    crate::schema::assert_report_valid(&out.join("report.json"));
    // The TPM demand counts what a quota charges: input and output tokens per call.
    let run = &crate::common::read_json(&out.join("report.json"))["runs"][0];
    let f = |k: &str| run[k].as_f64().unwrap();
    let input = f("input_tokens_per_s");
    assert!(input > 0.0, "the mock reports prompt tokens");
    let per_call = (input + f("output_tokens_per_s")) * f("wall_ms") / 1000.0 / f("calls");
    let json: Value = serde_json::from_str(&plan(&[
        "--tpm",
        "100000",
        "--n",
        "4",
        "--json",
        "--from",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    let ratio = json["demand_tpm"].as_f64().unwrap() / json["demand_rpm"].as_f64().unwrap();
    assert!(
        (ratio - per_call).abs() < 0.01 * per_call,
        "{ratio} vs {per_call}: {json}"
    );
}
