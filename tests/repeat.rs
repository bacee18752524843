//! `sweep --repeat` and `report A B`'s verdicts against the mock: repeats interleave and carry
//! intervals, identical sweeps compare as `no change`, a slower mock as `slower`, and the CLI
//! gives `--json` verdicts and fails `--fail-on 'regressed>0'`.

use std::path::Path;

use loadchain::record::Pooling;
use loadchain::report;
use loadchain::stats::Verdict;
use loadchain::sweep::{self, Quiet, SweepReport};
use serde_json::Value;

use crate::common::{fixed, loadchain, spawn_mock, sweep_config};

/// A sweep of `n` one-step chains at limits 1 and 4, both pooling modes, against a mock of
/// fixed latency.
async fn sweep_at(ms: u64, repeat: usize) -> SweepReport {
    sweep_of(12, ms, repeat, &[Pooling::On, Pooling::Off]).await
}

async fn sweep_of(n: usize, ms: u64, repeat: usize, pooling: &[Pooling]) -> SweepReport {
    let mock = spawn_mock(fixed(ms)).await;
    let mut cfg = sweep_config(&mock, n, &[1, 4], 1);
    cfg.pooling = pooling.to_vec();
    cfg.repeat = repeat;
    sweep::run(&cfg, &Quiet, None).await.unwrap().report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_interleave_merge_their_calls_and_carry_intervals() {
    let report = sweep_at(10, 3).await;
    assert_eq!(report.settings.repeat, 3);
    assert_eq!(report.runs.len(), 4, "one summary per cell");
    let mut positions: Vec<usize> = Vec::new();
    for (cell, run) in report.runs.iter().enumerate() {
        let rep = run
            .repeats
            .as_ref()
            .expect("repeated cells carry their repeats");
        assert_eq!(rep.walls_ms.len(), 3);
        // The order the schedule promises: repeat r of cell c ran at r·4 + (c − ⌊r·4/3⌋) mod 4.
        let expected: Vec<usize> = (0..3).map(|r| r * 4 + (cell + 4 - r * 4 / 3) % 4).collect();
        assert_eq!(rep.order, expected, "{}", run.key);
        positions.extend(&rep.order);
        // Histograms merge: every repeat's 12 calls.
        assert_eq!(run.call_latency.count, 36, "{}", run.key);
        assert_eq!(run.calls, 36);
        let mean = rep.walls_ms.iter().sum::<f64>() / 3.0;
        assert!((run.wall_ms - mean).abs() < 1e-9);
        let ci = rep.wall_ms.expect("three walls have an interval");
        assert!(ci.lo <= run.wall_ms && run.wall_ms <= ci.hi, "{ci:?}");
        if run.key.limit == 4 {
            let s = rep.speedup.expect("speedup interval");
            assert!(s.lo <= s.mean && s.mean <= s.hi, "{s:?}");
            assert_eq!(run.speedup, Some(s.mean));
        }
    }
    positions.sort_unstable();
    assert_eq!(positions, (0..12).collect::<Vec<_>>(), "each run once");
    let text = report::render_terminal_results(&report);
    assert!(text.contains(" ± "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_sweeps_compare_as_no_change_on_every_cell() {
    // 150 ms: the scheduling jitter of a 2-core machine running the other tests at the same
    // time (a few ms a call, measured up to 4 ms) stays under the 5 % noise threshold.
    let a = sweep_at(150, 1).await;
    let b = sweep_at(150, 1).await;
    let c = report::comparison(&a, &b);
    assert_eq!(c.cells.len(), 4);
    for cell in &c.cells {
        assert_eq!(cell.verdict, Verdict::NoChange, "{cell:?}");
        assert!(cell.interval[0] <= cell.change && cell.change <= cell.interval[1]);
    }
    assert_eq!(c.regressed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_at_60_ms_compares_as_slower_than_at_50_ms_on_every_cell() {
    let a = sweep_at(50, 1).await;
    let b = sweep_at(60, 1).await;
    let c = report::comparison(&a, &b);
    assert_eq!(c.cells.len(), 4);
    for cell in &c.cells {
        assert_eq!(cell.verdict, Verdict::Slower, "{cell:?}");
        assert!(cell.change > 0.1 && cell.interval[0] > 0.0, "{cell:?}");
        assert!(cell.wall.is_none(), "no repeats, no wall-time test");
    }
    assert_eq!(c.regressed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_repeats_the_wall_time_test_decides() {
    // Long enough runs that a scheduling hiccup does not swamp the 20 %.
    let a = sweep_of(8, 150, 3, &[Pooling::On]).await;
    let b = sweep_of(8, 180, 3, &[Pooling::On]).await;
    for cell in report::comparison(&a, &b).cells {
        let wall = cell.wall.expect("both sides repeated");
        assert_eq!(cell.change, wall.change, "{cell:?}");
        assert_eq!(cell.verdict, wall.verdict, "{cell:?}");
        // Three walls of a loaded 2-core machine may be too noisy to call (that is the point
        // of the interval), but the estimate itself sees the 20 %.
        assert!(wall.change > 0.05, "{cell:?}");
        assert_ne!(cell.verdict, Verdict::Faster, "{cell:?}");
    }
}

/// A sweep through the binary into `out`.
fn cli_sweep(out: &Path, latency: &str, repeat: &str) {
    loadchain()
        .args(["sweep", "--n", "10", "--limits", "1,5", "--steps", "1"])
        .args([
            "--repeat",
            repeat,
            "--pooling",
            "on",
            "--mock-latency",
            latency,
        ])
        .args(["-q", "--out"])
        .arg(out)
        .assert()
        .success();
}

#[test]
fn report_json_gives_verdicts_and_fail_on_regressed_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // A repeated, B not: the call latency decides (two walls a side would be too few to
    // call reliably on a loaded machine), and A's report.json has repeats for the schema.
    cli_sweep(&a, "fixed:30ms", "2");
    cli_sweep(&b, "fixed:45ms", "1");
    let out = loadchain()
        .args(["report", "--json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for c in cells {
        assert_eq!(c["verdict"], "slower", "{c}");
        assert!(c["key"].is_string() && c["change"].is_number(), "{c}");
        assert_eq!(c["interval"].as_array().map(Vec::len), Some(2), "{c}");
    }
    let fail = loadchain()
        .args(["report", "--fail-on", "regressed>0"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(fail.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&fail.stderr);
    assert!(stderr.contains("regressed = 2 > 0"), "{stderr}");
    // A folder against itself: nothing regressed.
    loadchain()
        .args(["report", "--fail-on", "regressed>0"])
        .arg(&a)
        .arg(&a)
        .assert()
        .success();
    // report.json of a repeated sweep still matches its schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let doc: Value = crate::common::read_json(&a.join("report.json"));
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(doc["runs"][0]["repeats"]["order"].is_array());
}

#[test]
fn report_fail_on_accepts_only_regressed() {
    loadchain()
        .args(["report", "--fail-on", "p99>1s", "a", "b"])
        .assert()
        .code(2);
}
