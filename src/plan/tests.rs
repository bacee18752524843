use std::time::Duration;

use super::*;

fn course(limit: Option<usize>) -> PlanInput {
    PlanInput {
        rpm: Some(60),
        tpm: None,
        calls_per_chain: 3.0,
        chain_time: Duration::from_secs(25),
        tokens_per_call: None,
        n: 100,
        limit,
    }
}

#[test]
fn the_course_example_demands_72_rpm_and_8_is_the_largest_safe_limit() {
    let input = course(Some(10));
    input.validate().unwrap();
    let plan = input.plan();
    assert_eq!(plan.max_limit, 8);
    assert_eq!(plan.demand_rpm, 72.0);
    assert!(plan.exceeds);
    assert_eq!(plan.demand_tpm, None);
    // 100 chains at 8: 13 waves of 25 s = 325 s; the quota's own pace is 100 × 3 calls at
    // 60 a minute = 300 s, so the waves bind.
    assert_eq!(plan.expected_wall_ms, 325_000);
    let text = render(&input, &plan);
    assert!(text.contains("Largest safe limit: 8"), "{text}");
    assert!(text.contains("Limit 10 demands 72 RPM"), "{text}");
    assert!(text.contains("over the quota"), "{text}");
}

#[test]
fn the_largest_safe_limit_is_itself_within_the_quota() {
    let plan = course(Some(8)).plan();
    assert_eq!(plan.demand_rpm, 57.6);
    assert!(!plan.exceeds);
    // Without --limit the demand shown is the one at max_limit.
    assert_eq!(course(None).plan(), plan);
}

#[test]
fn tpm_binds_when_tokens_run_out_before_requests() {
    let input = PlanInput {
        rpm: Some(600),
        tpm: Some(30_000),
        tokens_per_call: Some(1000.0),
        limit: Some(10),
        ..course(None)
    };
    input.validate().unwrap();
    // RPM: 600 × 25 / 180 = 83; TPM: 30,000 × 25 / (60 × 3 × 1000) = 4.17.
    assert_eq!(input.rpm_bound().map(f64::floor), Some(83.0));
    let plan = input.plan();
    assert_eq!(plan.max_limit, 4);
    assert_eq!(plan.demand_rpm, 72.0);
    assert_eq!(plan.demand_tpm, Some(72_000.0));
    assert!(
        plan.exceeds,
        "72k TPM is over 30k although 72 RPM is under 600"
    );
    // 25 waves of 4 chains (625 s), just slower than the tokens' own pace: 100 × 3 × 1000
    // tokens at 30k a minute = 600 s.
    assert_eq!(plan.expected_wall_ms, 625_000);
    assert!(render(&input, &plan).contains("TPM binds"));
}

#[test]
fn a_quota_too_small_for_one_chain_gives_zero_and_the_quota_pace() {
    let input = PlanInput {
        rpm: Some(3),
        limit: None,
        n: 10,
        ..course(None)
    };
    let plan = input.plan();
    assert_eq!(plan.max_limit, 0);
    // 10 chains × 3 calls at 3 a minute.
    assert_eq!(plan.expected_wall_ms, 600_000);
    // One chain at a time demands 3 calls per 25 s = 7.2 RPM, over 3.
    assert_eq!(plan.demand_rpm, 7.2);
    assert!(plan.exceeds);
    assert!(render(&input, &plan).contains("none"));
}

#[test]
fn missing_inputs_name_the_flag() {
    let no_quota = PlanInput {
        rpm: None,
        ..course(None)
    };
    assert!(
        no_quota
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--rpm")
    );
    let tpm_without_tokens = PlanInput {
        tpm: Some(1000),
        ..course(None)
    };
    let e = tpm_without_tokens.validate().unwrap_err().to_string();
    assert!(e.contains("--tokens-per-call"), "{e}");
}

#[test]
fn json_has_exactly_the_five_fields() {
    let v = serde_json::to_value(course(Some(10)).plan()).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "demand_rpm",
            "demand_tpm",
            "exceeds",
            "expected_wall_ms",
            "max_limit"
        ]
    );
}

#[test]
fn from_reads_the_smallest_limit_of_a_sweep_and_the_chains_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = serde_json::json!({"runs": [
        {"limit": 10, "pooling": "on", "chains_ok": 10, "chains_failed": 0, "calls": 30,
         "wall_ms": 1000.0, "chain_latency": {"mean_us": 900_000.0}},
        {"limit": 1, "pooling": "off", "chains_ok": 10, "chains_failed": 0, "calls": 30,
         "wall_ms": 1000.0, "chain_latency": {"mean_us": 800_000.0}},
        {"limit": 1, "pooling": "on", "chains_ok": 9, "chains_failed": 1, "calls": 33,
         "wall_ms": 5000.0, "output_tokens_per_s": 66.0, "input_tokens_per_s": 132.0,
         "chain_latency": {"mean_us": 500_000.0}}
    ]});
    std::fs::write(dir.path().join("report.json"), sweep.to_string()).unwrap();
    let m = read_measured(dir.path()).unwrap();
    assert_eq!(m.chain_time, Duration::from_millis(500));
    assert!((m.calls_per_chain - 3.3).abs() < 1e-9);
    // 10 output + 20 input tokens a call: a TPM quota charges both.
    assert_eq!(m.tokens_per_call, Some(30.0));

    let run = tempfile::tempdir().unwrap();
    let summary = serde_json::json!({"succeeded": 4, "failed": 0, "calls": 12,
        "chain_latency": {"mean_us": 2_000_000.0}});
    std::fs::write(run.path().join("summary.json"), summary.to_string()).unwrap();
    let m = read_measured(run.path()).unwrap();
    assert_eq!(m.chain_time, Duration::from_secs(2));
    assert_eq!(m.calls_per_chain, 3.0);
    assert_eq!(m.tokens_per_call, None);
    // A priced run's cost block counts both kinds of token.
    let priced = serde_json::json!({"succeeded": 4, "failed": 0, "calls": 12,
        "chain_latency": {"mean_us": 2_000_000.0},
        "cost": {"input_tokens": 1200, "output_tokens": 240}});
    std::fs::write(run.path().join("summary.json"), priced.to_string()).unwrap();
    assert_eq!(
        read_measured(run.path()).unwrap().tokens_per_call,
        Some(120.0)
    );

    let empty = tempfile::tempdir().unwrap();
    let e = read_measured(empty.path()).unwrap_err().to_string();
    assert!(e.starts_with("--from"), "{e}");
}
