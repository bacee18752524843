//! `--segment i/n` and `merge`: four segment processes against one mock, merged, against a
//! single process running the whole load.

use std::path::Path;
use std::process::Command;

use crate::common::{fixed, loadchain, spawn_mock};
use loadchain::metrics::LatencyRecorder;
use loadchain::metrics::lossless::decode;

fn report(dir: &Path) -> serde_json::Value {
    crate::common::read_json(&dir.join("report.json"))
}

fn within(a: u64, b: u64, pct: f64) -> bool {
    (a as f64 - b as f64).abs() <= a as f64 * pct / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_segments_merged_equal_one_run_of_the_whole_load() {
    let mock = spawn_mock(fixed(200)).await;
    let url = format!("{}/v1", mock.url());
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        let out = out.display().to_string();
        [
            "sweep", "--target", &url, "-n", "80", "--limits", "4,20", "--steps", "2",
        ]
        .into_iter()
        .chain(["--pooling", "on", "-q", "--out", &out])
        .map(String::from)
        .collect()
    };
    let segs: Vec<_> = (1..=4).map(|i| tmp.path().join(format!("s{i}"))).collect();
    let handles: Vec<_> = segs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadchain"));
            cmd.args(args(dir))
                .args(["--segment", &format!("{}/4", i + 1)]);
            cmd.env_remove("OPENAI_API_KEY");
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let single = tmp.path().join("single");
    let st = tokio::task::spawn_blocking({
        let a = args(&single);
        move || {
            Command::new(env!("CARGO_BIN_EXE_loadchain"))
                .args(a)
                .env_remove("OPENAI_API_KEY")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(st.status.success());
    let merged = tmp.path().join("merged");
    loadchain()
        .arg("merge")
        .args(&segs)
        .arg("--out")
        .arg(&merged)
        .assert()
        .success();
    for f in [
        "report.json",
        "summary.md",
        "summary.csv",
        "calls.csv",
        "latency.png",
    ] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    let (one, all) = (report(&single), report(&merged));
    assert_eq!(all["settings"]["sizes"], one["settings"]["sizes"]);
    assert_eq!(all["settings"]["limits"], one["settings"]["limits"]);
    let runs = |r: &serde_json::Value| r["runs"].as_array().unwrap().clone();
    for (a, b) in runs(&one).iter().zip(runs(&all).iter()) {
        for f in [
            "size",
            "limit",
            "chains_ok",
            "chains_failed",
            "calls",
            "calls_failed",
        ] {
            assert_eq!(a[f], b[f], "{f}");
        }
        for lat in ["call_latency", "chain_latency"] {
            assert_eq!(a[lat]["count"], b[lat]["count"]);
            // p50 against the single run, generously: two separate runs on a busy 2-core
            // machine differ by a few percent (the 2 % target is a benchmark figure, see the
            // README), and the p99 tail by tens of percent. Exactness is checked below
            // instead: the merged histogram is the segments' histograms added together.
            let (x, y) = (
                a[lat]["p50_us"].as_u64().unwrap(),
                b[lat]["p50_us"].as_u64().unwrap(),
            );
            assert!(within(x, y, 10.0), "{lat}.p50: single {x} vs merged {y}");
        }
    }
    let segments: Vec<_> = segs.iter().map(|d| report(d)).collect();
    for (i, run) in runs(&all).iter().enumerate() {
        for lat in ["call_latency", "chain_latency"] {
            let mut sum = LatencyRecorder::new().histogram().clone();
            for seg in &segments {
                let hdr = seg["runs"][i][lat]["hdr"].as_str().unwrap();
                sum.add(decode(hdr).unwrap()).unwrap();
            }
            assert_eq!(
                run[lat]["p99_us"].as_u64(),
                Some(loadchain::metrics::quantile(&sum, 0.99)),
                "{lat}"
            );
            assert_eq!(run[lat]["count"].as_u64(), Some(sum.len()), "{lat}");
        }
    }
    // Merge of one folder reproduces it.
    let again = tmp.path().join("again");
    loadchain()
        .arg("merge")
        .arg(&segs[0])
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(report(&again), report(&segs[0]));
    // The same segment twice, or a single run with a segment, is refused with exit 2.
    let out = loadchain()
        .arg("merge")
        .args([&segs[0], &segs[0]])
        .arg("--out")
        .arg(tmp.path().join("bad"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("overlap"), "{err}");
    loadchain()
        .arg("merge")
        .args([&segs[1], &single])
        .arg("--out")
        .arg(tmp.path().join("bad2"))
        .assert()
        .code(2);
}

#[test]
fn run_segments_take_disjoint_rows_and_merge_into_one_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("m.csv");
    let rows: String = (1..=7).map(|i| format!("{i},text {i}\n")).collect();
    std::fs::write(&manifest, format!("id,topic\n{rows}")).unwrap();
    let segs: Vec<_> = (1..=3).map(|i| tmp.path().join(format!("r{i}"))).collect();
    for (i, dir) in segs.iter().enumerate() {
        loadchain()
            .args(["run", "--manifest"])
            .arg(&manifest)
            .args([
                "--steps",
                "1",
                "--mock-latency",
                "fixed:1ms",
                "--mock-failure-rate",
                "0",
            ])
            .args(["-q", "--segment", &format!("{}/3", i + 1), "--out"])
            .arg(dir)
            .assert()
            .success();
    }
    let lines = |d: &Path| {
        std::fs::read_to_string(d.join("results.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        segs.iter().map(|d| lines(d)).collect::<Vec<_>>(),
        vec![2, 2, 3]
    );
    let merged = tmp.path().join("merged");
    loadchain()
        .arg("merge")
        .args(&segs)
        .arg("--out")
        .arg(&merged)
        .assert()
        .success();
    assert_eq!(lines(&merged), 7);
    let summary: serde_json::Value = crate::common::read_json(&merged.join("summary.json"));
    assert_eq!(summary["rows_in_manifest"], 7);
    assert_eq!(summary["succeeded"], 7);
    assert_eq!(summary["chain_latency"]["count"], 7);
    loadchain()
        .arg("merge")
        .args([&segs[0], &merged])
        .arg("--out")
        .arg(tmp.path().join("bad"))
        .assert()
        .code(2);
}
