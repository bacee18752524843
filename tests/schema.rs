//! report.json, `sweep --json` and summary.json checked against the JSON Schemas in
//! docs/schema/ (as oha checks its JSON output): real documents from real runs must pass, and
//! documents the format does not allow must fail, or the schema would say nothing.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::loadchain;
use crate::common::read_json;

/// A schema file of docs/schema/, itself checked against the draft 2020-12 meta-schema.
pub(crate) fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema")
        .join(name);
    let schema: Value = crate::common::read_json(&path);
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid 2020-12 schema: {e}"));
    jsonschema::validator_for(&schema).unwrap()
}

/// Panics with every violation (path and message), so a new field names itself.
pub(crate) fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}

#[test]
fn a_real_sweep_report_and_its_json_output_match_the_report_schema() {
    let v = validator("report.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    // Streaming (ttft present), failures (error counts above 0), both pooling modes.
    let run = loadchain()
        .args([
            "sweep",
            "--n",
            "4",
            "--limits",
            "1,2",
            "--steps",
            "2",
            "--stream",
            "--slo",
            "ttft<1s,itl<1s,e2e<10s",
            "--mock-latency",
            "fixed:2ms",
            "--mock-failure-rate",
            "0.2",
            "--mock-seed",
            "3",
            "--price",
            "in=0.15,out=0.60",
            "--json",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let file = read_json(&out.join("report.json"));
    assert_valid(&v, &file, "report.json");
    assert_valid(&v, &stdout, "sweep --json");
    let runs = file["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "2 limits × 2 pooling modes");
    assert!(runs.iter().all(|r| r["ttft"].is_object()), "streaming runs");
    assert!(
        runs.iter()
            .all(|r| r["cost"]["total"].as_f64().unwrap() > 0.0),
        "priced runs"
    );
    for field in ["itl", "tpot", "slo_attainment", "goodput", "tokens_from"] {
        assert!(
            runs.iter().all(|r| !r[field].is_null()),
            "{field} in every run"
        );
    }
    // The committed example (no streaming) is a report users will read too.
    let example =
        read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/example/report.json"));
    assert_valid(&v, &example, "docs/example/report.json");
}

#[test]
fn a_real_run_summary_matches_the_summary_schema() {
    let v = validator("summary.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=6 {
        text.push_str(&format!("r{i},subject {i}\n"));
    }
    std::fs::write(&rows, text).unwrap();
    let out = dir.path().join("out");
    // Some rows fail for good (no retry pass), so errors and failed are above 0.
    let status = loadchain()
        .args(["run", "--manifest"])
        .arg(&rows)
        .arg("--out")
        .arg(&out)
        .args([
            "--limit",
            "2",
            "--steps",
            "2",
            "--retry-passes",
            "0",
            "--max-retries",
            "0",
            "--mock-latency",
            "fixed:2ms",
            "--mock-failure-rate",
            "0.3",
            "--mock-seed",
            "5",
            "--price",
            "in=0.15,out=0.60",
            "--stream",
            "--slo",
            "e2e<10s",
            "-q",
        ])
        .output()
        .unwrap();
    let summary = read_json(&out.join("summary.json"));
    assert_valid(&v, &summary, "summary.json");
    assert_eq!(summary["rows_in_manifest"], 6, "{status:?}");
    assert!(summary["failed"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        summary["cost"]["total"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    // Failed calls miss the SLO: attainment is below 1 and says so.
    let attained = summary["slo_attainment"].as_f64().unwrap();
    assert!(attained > 0.0 && attained < 1.0, "{summary}");
    assert!(
        summary["itl"].is_object() && summary["goodput"].is_number(),
        "{summary}"
    );
    // A resumed session skips the rows that succeeded; its summary has the same shape.
    loadchain()
        .args(["run", "--resume", "--manifest"])
        .arg(&rows)
        .arg("--out")
        .arg(&out)
        .args(["--steps", "2", "--mock-latency", "fixed:2ms", "-q"])
        .assert()
        .success();
    let resumed = read_json(&out.join("summary.json"));
    assert_valid(&v, &resumed, "summary.json after --resume");
    assert!(resumed["skipped"].as_u64().unwrap() > 0, "{resumed}");
}

/// Applies `change` to a copy of `doc` and expects the validator to refuse the result.
fn refused(v: &jsonschema::Validator, doc: &Value, what: &str, change: impl FnOnce(&mut Value)) {
    let mut bad = doc.clone();
    change(&mut bad);
    assert!(!v.is_valid(&bad), "the schema accepted {what}");
}

#[test]
fn the_schemas_refuse_unknown_fields_missing_fields_and_wrong_types() {
    let report = validator("report.schema.json");
    let doc = read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/example/report.json"));
    assert_valid(&report, &doc, "docs/example/report.json");
    refused(&report, &doc, "an unknown top-level field", |d| {
        d["surprise"] = json!(1);
    });
    refused(&report, &doc, "a run without wall_ms", |d| {
        d["runs"][0].as_object_mut().unwrap().remove("wall_ms");
    });
    refused(&report, &doc, "an unknown error kind", |d| {
        d["runs"][0]["errors"]["gremlins"] = json!(1);
    });
    refused(&report, &doc, "a negative count", |d| {
        d["runs"][0]["errors"]["timeout"] = json!(-1);
    });
    refused(&report, &doc, "a pooling mode that does not exist", |d| {
        d["runs"][0]["pooling"] = json!("sometimes");
    });
    refused(&report, &doc, "a latency in the wrong type", |d| {
        d["runs"][0]["call_latency"]["p99_us"] = json!("97 ms");
    });
    refused(&report, &doc, "a newer schema_version", |d| {
        d["schema_version"] = json!(2);
    });
    refused(&report, &doc, "a timeline point with three values", |d| {
        d["runs"][0]["timeline"][0] = json!([0.0, 1.0, 2.0]);
    });

    let summary = validator("summary.schema.json");
    let doc = json!({
        "schema_version": 1, "rows_in_manifest": 3, "succeeded": 2, "failed": 1,
        "skipped": 0, "not_run": 0, "wall_ms": 12.5, "sum_chain_ms": 30.0, "speedup": 2.4,
        "limit": 2, "passes": 1, "calls": 5,
        "errors": {"rate_limited": 0, "server_error": 1, "client_error": 0, "timeout": 0,
                   "connect": 0, "body": 0, "decode": 0},
        "call_latency": {"count": 4, "min_us": 900, "mean_us": 1200.5, "p50_us": 1100,
                         "p90_us": 1500, "p99_us": 1600, "max_us": 1600},
        "chain_latency": {"count": 2, "min_us": 2000, "mean_us": 2500.0, "p50_us": 2400,
                          "p90_us": 3000, "p99_us": 3000, "max_us": 3000},
        "step_latency": [], "torn_line_ignored": null, "timeline": [[0.0, 1.0], [4.5, 0.0]]
    });
    assert_valid(&summary, &doc, "hand-made summary");
    refused(&summary, &doc, "an unknown field", |d| {
        d["extra"] = json!(true)
    });
    refused(&summary, &doc, "a missing not_run", |d| {
        d.as_object_mut().unwrap().remove("not_run");
    });
    refused(&summary, &doc, "a string speedup", |d| {
        d["speedup"] = json!("2x")
    });
    refused(&summary, &doc, "a limit of 0", |d| d["limit"] = json!(0));
    refused(&summary, &doc, "a missing timeline", |d| {
        d.as_object_mut().unwrap().remove("timeline");
    });
}

#[test]
fn an_open_loop_sweep_report_matches_the_report_schema() {
    let v = validator("report.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("open");
    let run = loadchain()
        .args([
            "sweep",
            "--rates",
            "50,100",
            "--n",
            "10",
            "--steps",
            "1",
            "--pooling",
            "on",
            "--mock-latency",
            "fixed:2ms",
            "--json",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    assert_valid(&v, &stdout, "sweep --rates --json");
    assert_valid(
        &v,
        &read_json(&out.join("report.json")),
        "open-loop report.json",
    );
    assert!(stdout["runs"][0]["queue_wait"].is_object());
    // An open-loop field without the others is not a report this format allows.
    let mut broken = stdout.clone();
    broken["runs"][0].as_object_mut().unwrap().remove("latency");
    assert!(!v.is_valid(&broken));
}

/// Panics unless the report.json at `path` matches docs/schema/report.schema.json: every
/// test that makes a report checks it (NOTE: a test that writes one should call this).
pub(crate) fn assert_report_valid(path: &Path) {
    assert_valid(
        &validator("report.schema.json"),
        &read_json(path),
        &path.display().to_string(),
    );
}

#[test]
fn an_auto_limits_only_sweep_report_matches_the_report_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto");
    loadchain()
        .args(["sweep", "--limits", "auto", "--n", "12", "--steps", "1"])
        .args([
            "--pooling",
            "on",
            "--mock-latency",
            "fixed:2ms",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["settings"]["limits"], json!([]), "no fixed limit");
    assert_eq!(report["runs"][0]["auto"], true);
    assert_report_valid(&out.join("report.json"));
}
