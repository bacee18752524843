//! `--price` and the chain file's `price`: cost per run, step and chain and on retries in
//! every report, and `--fail-on cost>X`.

use crate::common::loadchain;

/// A manifest of `n` rows in `dir`.
fn manifest(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let rows = dir.join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=n {
        text.push_str(&format!("r{i},subject {i}\n"));
    }
    std::fs::write(&rows, text).unwrap();
    rows
}

#[test]
fn run_with_a_price_reports_cost_and_fail_on_cost_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 5);
    let run = |out: &str, fail_on: &str| {
        let mut cmd = loadchain();
        cmd.args(["run", "--manifest"]).arg(&rows);
        cmd.arg("--out").arg(dir.path().join(out));
        cmd.args(["--steps", "2", "--limit", "5", "--api", "anthropic"]);
        // Huge prices so that 5 chains of 2 calls cost more than 5 units.
        cmd.args(["--price", "in=100000,out=200000", "--fail-on", fail_on]);
        cmd.output().unwrap()
    };
    let broken = run("a", "cost>5");
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("cost>5"), "{stderr}");
    let summary: serde_json::Value = crate::common::read_json(&dir.path().join("a/summary.json"));
    let cost = &summary["cost"];
    // The mock reports 16 output tokens a call: 10 calls × 16 × 0.2 = 32 units of output.
    assert_eq!(cost["output_tokens"], 160, "{cost}");
    let input = cost["input_tokens"].as_f64().unwrap();
    let total = cost["total"].as_f64().unwrap();
    assert!((total - (input * 0.1 + 32.0)).abs() < 1e-9, "{cost}");
    assert!((cost["per_chain"].as_f64().unwrap() - total / 5.0).abs() < 1e-9);
    assert_eq!(cost["retries"], 0.0);
    assert_eq!(cost["per_step"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(dir.path().join("a/summary.md")).unwrap();
    assert!(md.contains("## Cost"), "{md}");
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("cost: "), "{stdout}");

    let passed = run("b", &format!("cost>{}", total + 1.0));
    assert_eq!(passed.status.code(), Some(0), "{passed:?}");

    // A cost threshold without a price is refused before anything runs.
    let mut cmd = loadchain();
    cmd.args(["run", "--manifest"]).arg(&rows);
    cmd.arg("--out").arg(dir.path().join("c"));
    let out = cmd.args(["--fail-on", "cost>5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a price"));
}

#[test]
fn a_sweep_prices_each_run_in_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.toml");
    std::fs::write(
        &chain,
        "price = \"in=1,out=2\"\n[[steps]]\nname = \"one\"\nprompt = \"Say {{topic}}\"\nmax_tokens = 8\n",
    )
    .unwrap();
    let out = dir.path().join("sweep");
    let assert = loadchain()
        .args(["sweep", "--n", "3", "--limits", "1,3", "--chain"])
        .arg(&chain)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.contains("Cost:"), "{stdout}");
    let report: serde_json::Value = crate::common::read_json(&out.join("report.json"));
    for r in report["runs"].as_array().unwrap() {
        let c = &r["cost"];
        // max_tokens = 8 caps the mock's answer: 3 calls × 8 tokens × 2 per 1M.
        assert_eq!(c["output_tokens"], 24, "{c}");
        assert_eq!(c["price_in"], 1.0);
        assert_eq!(c["per_step"][0]["step"], "one");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Cost") && md.contains("Step one"), "{md}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("cost_total"), "{csv}");
}

#[test]
fn retries_are_priced_apart_and_the_steps_add_up_to_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 12);
    let out = dir.path().join("out");
    let mut cmd = loadchain();
    cmd.args(["run", "--manifest"])
        .arg(&rows)
        .arg("--out")
        .arg(&out);
    // --restart-chains: failed chains run again from step 1, so steps are paid twice (by
    // default they resume at the failed step and nothing is redone; tests/resume.rs).
    cmd.args([
        "--steps",
        "3",
        "--limit",
        "4",
        "--retry-passes",
        "3",
        "--restart-chains",
    ]);
    cmd.args(["--max-retries", "0", "--mock-failure-rate", "0.3"]);
    cmd.args([
        "--mock-seed",
        "7",
        "--price",
        "in=1,out=3",
        "--calls-csv",
        "on",
    ]);
    cmd.assert().success();
    let summary: serde_json::Value = crate::common::read_json(&out.join("summary.json"));
    let c = &summary["cost"];
    let total = c["total"].as_f64().unwrap();
    let retries = c["retries"].as_f64().unwrap();
    assert!(retries > 0.0 && retries < total, "{c}");
    let steps: f64 = c["per_step"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cost"].as_f64().unwrap())
        .sum();
    assert!((steps - total).abs() < 1e-9, "{c}");
    // calls.csv has each call's tokens: pricing them by hand gives the same totals.
    let mut r = csv::Reader::from_path(out.join("calls.csv")).unwrap();
    let (mut sum, mut retried, mut twice) = (0.0, 0.0, 0.0);
    let mut last_ok = std::collections::HashMap::new();
    for row in r.deserialize::<loadchain::report::CallRow>() {
        let row = row.unwrap();
        let cost = (f64::from(row.input_tokens.unwrap_or(0))
            + 3.0 * f64::from(row.tokens.unwrap_or(0)))
            / 1e6;
        sum += cost;
        if row.pass > 0 || row.try_no > 0 {
            retried += cost;
        }
        if row.error_kind.is_none() {
            twice += last_ok.insert((row.row, row.step), cost).unwrap_or(0.0);
        }
    }
    assert!((sum - total).abs() < 1e-9, "{sum} vs {total}");
    assert!((retried - retries).abs() < 1e-9, "{retried} vs {retries}");
    // Chains that failed at step 2 or 3 were re-run from step 1: steps paid twice.
    let redone = c["redone"].as_f64().unwrap();
    assert!(redone > 0.0 && redone < retries, "{c}");
    assert!((twice - redone).abs() < 1e-9, "{twice} vs {redone}");
}
