//! `loadchain run` writes through report/: its folder gets summary.md, calls.csv, latency.png
//! and timeline.png beside summary.json, and `loadchain report <run folder>` rebuilds them.

use std::fs;
use std::path::Path;

use loadchain::report::CallRow;

use crate::common::loadchain;
use crate::run::{manifest, run};

/// Every file a finished run folder holds (the lock file aside).
const FILES: [&str; 7] = [
    "results.jsonl",
    "summary.json",
    "failed.csv",
    "calls.csv",
    "summary.md",
    "latency.png",
    "timeline.png",
];

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn calls(out: &Path) -> Vec<CallRow> {
    csv::Reader::from_path(out.join("calls.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

/// Each chart decodes at the charts' size and is a drawing, not a blank canvas.
fn assert_charts(out: &Path) {
    for name in ["latency.png", "timeline.png"] {
        let img = image::open(out.join(name)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (1200, 700), "{name}");
        let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(
            inked * 50 > img.pixels().len(),
            "{name}: {inked} non-white pixels"
        );
    }
}

#[test]
fn a_run_folder_holds_every_report_file_and_report_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 12);
    let out = dir.path().join("out");
    run(
        &rows,
        &out,
        &[
            "--limit",
            "3",
            "--steps",
            "2",
            "--stream",
            "--mock-failure-rate",
            "0",
            "--mock-latency",
            "fixed:3ms",
            "-q",
        ],
    )
    .assert()
    .success();
    for f in FILES {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let s = summary(&out);
    assert_eq!(s["schema_version"], 1);
    assert!(!s["timeline"].as_array().unwrap().is_empty(), "{s}");
    assert_eq!(
        s["settings"]["steps"],
        serde_json::json!(["research", "write"])
    );
    assert_eq!(s["settings"]["stream"], true);

    // calls.csv: sweep's columns, one row per call, the run as one cell of size 12.
    let header = fs::read_to_string(out.join("calls.csv")).unwrap();
    assert!(
        header.starts_with("size,limit,pooling,row,step,pass,try,start_offset_ms,latency_ms,"),
        "{header}"
    );
    let rows_csv = calls(&out);
    assert_eq!(rows_csv.len() as u64, s["calls"].as_u64().unwrap());
    assert!(
        rows_csv
            .iter()
            .all(|c| c.size == 12 && c.limit == 3 && c.pooling == "on" && c.ttft_ms.is_some()),
        "{rows_csv:?}"
    );

    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    for needle in [
        "# loadchain run, ",
        "| in the manifest | 12 |",
        "| succeeded | 12 |",
        "at limit 3 in 1 pass",
        "No call failed.",
        "| call (every step) | 24 |",
        "| step `research` | 12 |",
        "| step `write` | 12 |",
        "| time to first token | 24 |",
        "![latency](latency.png)",
        "![timeline](timeline.png)",
        "| streaming | yes |",
        "Embedded mock server settings:",
    ] {
        assert!(md.contains(needle), "summary.md lacks {needle:?}:\n{md}");
    }
    assert_charts(&out);

    // Re-render: summary.md byte for byte, deleted charts come back, calls.csv untouched.
    let calls_before = fs::read(out.join("calls.csv")).unwrap();
    for f in ["summary.md", "latency.png", "timeline.png"] {
        fs::remove_file(out.join(f)).unwrap();
    }
    let report = loadchain().arg("report").arg(&out).assert().success();
    let stdout = String::from_utf8(report.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("rows: 12 in manifest = 12 succeeded") && stdout.contains("Re-rendered"),
        "{stdout}"
    );
    assert_eq!(fs::read_to_string(out.join("summary.md")).unwrap(), md);
    assert_eq!(fs::read(out.join("calls.csv")).unwrap(), calls_before);
    assert_charts(&out);
    let stray: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".loadchain.lock")
        .collect();
    assert!(stray.is_empty(), "temp files left: {stray:?}");
    // The summary.json path itself works too.
    loadchain()
        .arg("report")
        .arg(out.join("summary.json"))
        .assert()
        .success();
}

#[test]
fn a_resumed_session_reports_the_rows_it_ran_and_its_failures() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 10);
    let out = dir.path().join("out");
    // Some rows fail for good (no retries), so the resumed session has rows to run.
    let first = run(
        &rows,
        &out,
        &[
            "--limit",
            "2",
            "--retry-passes",
            "0",
            "--max-retries",
            "0",
            "--mock-failure-rate",
            "0.4",
            "--mock-seed",
            "7",
            "--mock-latency",
            "fixed:2ms",
            "-q",
        ],
    )
    .output()
    .unwrap();
    let failed = summary(&out)["failed"].as_u64().unwrap() as usize;
    assert!(failed > 0, "{first:?}");
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains(" × 5xx"), "{md}");
    assert!(
        md.contains(&format!("| failed (see failed.csv) | {failed} |")),
        "{md}"
    );

    run(
        &rows,
        &out,
        &["--resume", "--limit", "2", "--mock-failure-rate", "0", "-q"],
    )
    .assert()
    .success();
    let s = summary(&out);
    assert_eq!(s["skipped"].as_u64().unwrap() as usize, 10 - failed);
    // calls.csv is this session's: size = the rows it ran.
    let rows_csv = calls(&out);
    assert!(!rows_csv.is_empty());
    assert!(rows_csv.iter().all(|c| c.size == failed), "{rows_csv:?}");
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains(&format!(
            "| skipped (done in an earlier session) | {} |",
            10 - failed
        )),
        "{md}"
    );
    assert_charts(&out);
}

#[test]
fn report_compare_refuses_a_run_folder_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest(dir.path(), 3);
    let out = dir.path().join("out");
    run(&rows, &out, &["--mock-failure-rate", "0", "-q"])
        .assert()
        .success();
    let compare = loadchain()
        .arg("report")
        .arg(&out)
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8(compare.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("is a `loadchain run` folder")
            && stderr.contains("comparing runs is not supported"),
        "{stderr}"
    );
    // A folder that is neither says what it looked for.
    let neither = loadchain().arg("report").arg(dir.path()).assert().code(2);
    let stderr = String::from_utf8(neither.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("no report.json or summary.json found"),
        "{stderr}"
    );
}
