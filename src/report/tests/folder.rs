//! Tests of whole report folders: every file, their formats, atomicity and re-rendering.

use std::fs;

use super::*;
use crate::report::{self, ReportError, table};

/// Every file a report folder must hold, hgrm files aside.
const FILES: [&str; 8] = [
    "report.json",
    "summary.csv",
    "calls.csv",
    "summary.md",
    "speedup.png",
    "wall_time.png",
    "latency.png",
    "timeline.png",
];

#[test]
fn write_report_produces_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = write_fixture(dir.path(), "run");
    for f in FILES {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for run in &report.runs {
        assert!(
            out.join("hgrm")
                .join(report::hgrm::file_name(run))
                .is_file()
        );
    }
    // Nothing but the report itself is left beside it.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("run")]);
}

#[test]
fn summary_csv_has_the_expected_header_and_one_row_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = write_fixture(dir.path(), "run");
    let mut r = ::csv::Reader::from_path(out.join("summary.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &header[..5],
        ["size", "limit", "pooling", "wall_ms", "retry_wall_ms"]
    );
    for col in [
        "speedup",
        "efficiency",
        "call_p50_ms",
        "call_p99_ms",
        "call_max_ms",
        "chain_p50_ms",
        "errors_rate_limited",
        "errors_timeout",
        "connections",
        "outputs_differ",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "{col} missing from {header:?}"
        );
    }
    let rows: Vec<report::SummaryRow> = r.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), report.runs.len());
    let issue_row = rows
        .iter()
        .find(|r| (r.size, r.limit, r.pooling.as_str()) == (25, 5, "off"))
        .unwrap();
    assert_eq!(
        (
            issue_row.errors_rate_limited,
            issue_row.errors_timeout,
            issue_row.chains_failed
        ),
        (1, 1, 1)
    );
    assert_eq!(rows[0].speedup, Some(1.0));
}

#[test]
fn calls_csv_has_one_row_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let (report, sims) = fixture_with(&[10, 25], &[1, 5]);
    let out = dir.path().join("run");
    report::write_report(&out, &report, &run_calls(&sims)).unwrap();
    let mut r = ::csv::Reader::from_path(out.join("calls.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "size",
            "limit",
            "pooling",
            "row",
            "step",
            "pass",
            "try",
            "start_offset_ms",
            "latency_ms",
            "status",
            "error_kind",
            "bytes",
            "tokens",
            "ttft_ms",
            "input_tokens",
            "finish"
        ]
    );
    let rows: Vec<report::CallRow> = r.deserialize().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        sims.iter().map(|s| s.calls.len()).sum::<usize>()
    );
    assert!(
        rows.iter()
            .any(|c| c.error_kind.as_deref() == Some("rate_limited") && c.status == Some(429))
    );
    assert!(rows.iter().any(|c| c.try_no == 1 && c.pass == 0));
    // A failed call has no finish reason; a successful one always says one.
    assert!(
        rows.iter()
            .all(|c| c.finish.is_some() == c.error_kind.is_none())
    );
}

#[test]
fn empty_csvs_still_carry_their_header() {
    let mut buf = Vec::new();
    report::csv::write_calls(&[], &mut buf).unwrap();
    assert!(
        String::from_utf8(buf)
            .unwrap()
            .starts_with("size,limit,pooling,row,step,pass,try,")
    );
}

#[test]
fn report_json_in_the_folder_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = write_fixture(dir.path(), "run");
    assert_eq!(report::read_report(&out).unwrap(), report);
    assert_eq!(
        report::read_report(&out.join("report.json")).unwrap(),
        report
    );
}

#[test]
fn a_folder_without_report_json_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let err = report::read_report(dir.path()).unwrap_err();
    assert!(
        matches!(err, ReportError::NotAReport { .. }) && err.is_input_error(),
        "{err}"
    );
    let err = report::rerender(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, ReportError::NotAReport { .. }), "{err}");
}

#[test]
fn pngs_decode_with_the_expected_size_and_are_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = write_fixture(dir.path(), "run");
    for (name, _) in report::chart::CHARTS {
        let img = image::open(out.join(name)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), report::chart::SIZE, "{name}");
        let colors: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colors.len() > 50, "{name}: only {} colours", colors.len());
        let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(
            inked * 50 > img.pixels().len(),
            "{name}: {inked} non-white pixels"
        );
    }
}

#[test]
fn rerender_reproduces_summary_md_and_hgrm_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = write_fixture(dir.path(), "run");
    let md = fs::read(out.join("summary.md")).unwrap();
    let hgrm_path = out
        .join("hgrm")
        .join(report::hgrm::file_name(&report.runs[3]));
    let hgrm = fs::read(&hgrm_path).unwrap();
    for f in ["summary.md", "speedup.png", "latency.png"] {
        fs::remove_file(out.join(f)).unwrap();
    }
    fs::remove_dir_all(out.join("hgrm")).unwrap();
    report::rerender(&out).unwrap();
    assert_eq!(fs::read(out.join("summary.md")).unwrap(), md);
    assert_eq!(fs::read(&hgrm_path).unwrap(), hgrm);
    for f in FILES {
        assert!(out.join(f).is_file(), "{f} missing after rerender");
    }
    let stray: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "temp files left: {stray:?}");
}

#[test]
fn write_report_refuses_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    fs::create_dir(&out).unwrap();
    let err = report::write_report(&out, &fixture(), &[]).unwrap_err();
    assert!(matches!(err, ReportError::Exists { .. }), "{err}");
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "existing folder was touched"
    );
}

#[test]
fn a_failed_write_leaves_no_folder_and_no_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    report::FAIL_WRITE.set(Some("summary.md"));
    let err = report::write_report(&out, &fixture(), &[]);
    report::FAIL_WRITE.set(None);
    let err = err.unwrap_err();
    assert!(
        !err.is_input_error(),
        "a write failure is a runtime failure: {err}"
    );
    assert!(err.to_string().contains("summary.md"), "{err}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was left behind"
    );
}

#[test]
fn issues_name_each_kind_of_trouble_or_say_none() {
    let report = fixture();
    let issues = table::issues(&report);
    assert_eq!(issues.len(), 1, "{issues:?}");
    let line = &issues[0];
    for needle in [
        "25 chains, 5 concurrent, unpooled",
        "1 × 429",
        "1 × timeout",
        "2 × 5xx",
        "2 chains retried, 1 recovered",
        "1 chain still failed",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line}");
    }
    let mut clean = fixture();
    clean.runs.retain(|r| r.errors.total() == 0);
    assert!(table::issues(&clean).is_empty());
    assert!(report::render_markdown(&clean).contains(table::NO_ISSUES));
}

#[test]
fn summary_md_has_every_section_and_chart_link() {
    let md = report::render_markdown(&fixture());
    for needle in [
        "# loadchain sweep, 2026-11-27T21:13:44Z",
        "## Wall time",
        "### Pooled connections",
        "### Unpooled connections",
        "## Pooled vs unpooled call latency",
        "## Issues",
        "## Runs",
        "## Settings",
        "```sh\nloadchain sweep --sizes 10,25",
        "```toml\nlatency = ",
        "![speedup](speedup.png)",
        "![timeline](timeline.png)",
        "| tpm cap | 90000 |",
    ] {
        assert!(
            md.contains(needle),
            "{needle:?} missing from summary.md:\n{md}"
        );
    }
}

#[test]
fn terminal_summary_shows_settings_tables_and_issues() {
    let text = report::render_terminal(&fixture());
    assert!(
        text.contains("sequential") && text.contains("5 concurrent"),
        "{text}"
    );
    assert!(
        text.contains("p50 pooled") && text.contains("Issues:"),
        "{text}"
    );
    assert!(text.contains("command") && text.contains("mock"), "{text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escapes");
}

#[test]
fn compare_shows_a_change_percentage_per_cell() {
    let a = fixture();
    let mut b = fixture();
    b.runs[1].wall_ms = a.runs[1].wall_ms * 1.25;
    b.runs[1].call_latency.p99_us = a.runs[1].call_latency.p99_us / 2;
    b.settings.timeout_ms = 5_000;
    let text = report::compare(&a, &b);
    assert!(text.contains("+25.0 %"), "{text}");
    assert!(text.contains("-50.0 %"), "{text}");
    assert!(
        text.contains("timeout: A = 30000 ms, B = 5000 ms"),
        "{text}"
    );
    // Unchanged cells: wall, p99 and the latency Δ; the changed cell: its latency Δ.
    assert_eq!(
        text.matches("+0.0 %").count(),
        3 * (a.runs.len() - 1) + 1,
        "{text}"
    );
    // Every cell, plus the footer that explains the verdicts.
    assert_eq!(
        text.matches("no change").count(),
        a.runs.len() + 1,
        "{text}"
    );
}

#[test]
fn default_report_dir_is_a_compact_utc_timestamp() {
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_814_024);
    let dir = report::default_report_dir(Path::new("reports"), now, "sweep");
    assert_eq!(dir, Path::new("reports/20261127T211344Z-sweep"));
}

#[test]
fn a_second_report_in_the_same_second_gets_a_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_814_024);
    let first = report::free_report_dir(dir.path(), now, "sweep");
    assert_eq!(first, dir.path().join("20261127T211344Z-sweep"));
    fs::create_dir(&first).unwrap();
    let second = report::free_report_dir(dir.path(), now, "sweep");
    assert_eq!(second, dir.path().join("20261127T211344Z-sweep-2"));
    fs::create_dir(&second).unwrap();
    let third = report::free_report_dir(dir.path(), now, "sweep");
    assert_eq!(third, dir.path().join("20261127T211344Z-sweep-3"));
}

#[test]
fn a_sweep_without_runs_still_writes_a_complete_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = fixture();
    report.runs.clear();
    let out = dir.path().join("empty");
    report::write_report(&out, &report, &[]).unwrap();
    for f in FILES {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let mut r = ::csv::Reader::from_path(out.join("summary.csv")).unwrap();
    assert_eq!(r.headers().unwrap().get(0), Some("size"));
    assert_eq!(r.records().count(), 0);
}

#[test]
fn a_single_pooling_mode_without_baseline_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = fixture();
    report
        .runs
        .retain(|r| r.key.pooling == Pooling::Off && r.key.limit == 5);
    for r in &mut report.runs {
        r.speedup = None;
        r.efficiency = None;
    }
    let out = dir.path().join("off");
    report::write_report(&out, &report, &[]).unwrap();
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("Only pooling off was measured"), "{md}");
    let run = report.run(25, 5, Pooling::Off).unwrap();
    let cell = format!(
        "| 25 chains | {} [1 failed] |",
        report::format::duration_ms(run.wall_ms)
    );
    assert!(md.contains(&cell), "{cell:?} missing:\n{md}");
    let img = image::open(out.join("latency.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), report::chart::SIZE);
    if let Some(keep) = std::env::var_os("LOADCHAIN_KEEP_REPORT") {
        // For looking at the charts by hand.
        let _ = fs::remove_dir_all(&keep);
        fs::rename(&out, &keep).unwrap();
    }
}

/// Renders the course-shaped example into docs/example/ for a person to look at:
/// `cargo test -p loadchain --lib render_example -- --ignored`.
#[test]
#[ignore = "writes into docs/example/"]
fn render_example_report_into_docs() {
    let (report, sims) = fixture_with(&[10, 25, 50, 100], &[1, 5, 10, 25]);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/example");
    let _ = fs::remove_dir_all(&out);
    report::write_report(&out, &report, &run_calls(&sims)).unwrap();
    println!("{}", report::render_terminal(&report));
}
