//! The quality section against the mock: finish reasons (truncation by max_tokens, streamed
//! and not), exact matches and similarity to the baseline with and without `--vary`, and the
//! section in the files of `sweep` and `run`.

use loadchain::metrics::quality::Quality;
use loadchain::record::Pooling;
use loadchain::sweep::{self, Quiet};
use loadchain_mock::MockConfig;

use crate::common::read_json;
use crate::common::{fixed, loadchain, spawn_mock, sweep_config};

/// Sweeps `n` chains of `steps` steps at limits 1 and 5 and returns both runs' quality.
async fn sweep_quality(
    mock: MockConfig,
    n: usize,
    steps: usize,
    edit: impl FnOnce(&mut loadchain::sweep::SweepConfig),
) -> (Quality, Quality) {
    let mock = spawn_mock(mock).await;
    let mut cfg = sweep_config(&mock, n, &[1, 5], steps);
    edit(&mut cfg);
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    let q = |limit| {
        let run = out.report.run(n, limit, Pooling::On).unwrap();
        assert_eq!(run.chains_ok, n, "every chain succeeds against this mock");
        run.quality.clone().unwrap()
    };
    (q(1), q(5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_vary_every_row_matches_the_baseline_exactly() {
    let (base, c5) = sweep_quality(fixed(1), 30, 2, |_| {}).await;
    // The baseline run is compared with nothing.
    assert_eq!((base.compared, base.exact_matches), (None, None));
    assert_eq!(base.similarity, None);
    assert_eq!((c5.compared, c5.exact_matches), (Some(30), Some(30)));
    let sim = c5.similarity.clone().unwrap();
    assert_eq!((sim.metric.as_str(), sim.rows), ("jaccard", 30));
    assert_eq!((sim.p10, sim.p50), (1.0, 1.0));
    // Every successful call of both steps says `stop`; nothing is empty.
    for q in [&base, &c5] {
        assert_eq!((q.finish.stop, q.finish.length), (60, 0));
        assert_eq!((q.finish.other, q.finish.unknown, q.empty), (0, 0, 0));
        let t = q.output_tokens.unwrap();
        assert_eq!((t.p50, t.p99), (16, 16), "the mock's 16 tokens a call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_vary_outputs_differ_from_the_baseline_but_stay_similar() {
    let vary = MockConfig {
        vary: true,
        output_tokens: 60,
        ..fixed(1)
    };
    let (_, c5) = sweep_quality(vary, 30, 1, |_| {}).await;
    let (compared, exact) = (c5.compared.unwrap(), c5.exact_matches.unwrap());
    assert_eq!(compared, 30);
    assert!(exact < compared, "{exact} of {compared} identical");
    let sim = c5.similarity.unwrap();
    assert_eq!(sim.rows, 30);
    assert!(sim.p50 < 1.0, "{sim:?}");
    // One word in four swapped: clearly related, clearly not identical.
    assert!(sim.p10 > 0.2 && sim.p10 <= sim.p50, "{sim:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_tokens_below_the_answer_counts_as_length() {
    // Step 1 asks for 4 tokens of the mock's 16: cut; step 2 asks for none: whole.
    let (base, c5) = sweep_quality(fixed(1), 10, 2, |cfg| {
        cfg.workload.chain.steps[0].max_tokens = Some(4);
    })
    .await;
    for q in [&base, &c5] {
        assert_eq!((q.finish.length, q.finish.stop), (10, 10), "{q:?}");
        assert_eq!(q.finish.unknown, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_openai_run_gets_finish_reasons_too() {
    let (base, c5) = sweep_quality(fixed(1), 10, 2, |cfg| {
        cfg.workload.stream = true;
        cfg.workload.chain.steps[1].max_tokens = Some(3);
    })
    .await;
    for q in [&base, &c5] {
        assert_eq!((q.finish.stop, q.finish.length), (10, 10), "{q:?}");
        assert_eq!(q.finish.unknown, 0);
    }
    assert_eq!(c5.exact_matches, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_stop_reasons_count_the_same_streamed_or_not() {
    for stream in [false, true] {
        let (base, _) = sweep_quality(fixed(1), 6, 2, |cfg| {
            cfg.workload.api = loadchain::endpoint::ApiFormat::Anthropic;
            cfg.workload.stream = stream;
            cfg.workload.chain.steps[0].max_tokens = Some(5);
        })
        .await;
        // end_turn is stop, max_tokens is length.
        assert_eq!((base.finish.stop, base.finish.length), (6, 6), "{base:?}");
    }
}

#[test]
fn sweep_and_run_write_the_quality_section_in_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mock = ["--mock-latency", "fixed:1ms", "--mock-failure-rate", "0"];
    loadchain()
        .args([
            "sweep", "--n", "12", "--limits", "1,4", "--steps", "1", "-q",
        ])
        .args(["--pooling", "on", "--mock-vary", "--out"])
        .arg(&out)
        .args(mock)
        .assert()
        .success();
    let report = read_json(&out.join("report.json"));
    let q = &report["runs"][1]["quality"];
    assert_eq!(q["compared"], 12, "{q}");
    assert!(
        q["exact_matches"].as_u64().unwrap() < 12,
        "--mock-vary reached the mock: {q}"
    );
    assert_eq!(q["similarity"]["metric"], "jaccard");
    assert!(report["runs"][0]["quality"]["similarity"].is_null());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Quality"), "{md}");
    assert!(md.contains("baseline") && md.contains("Jaccard"), "{md}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("quality_similarity_p10,quality_similarity_p50"),
        "{header}"
    );
    let calls = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    let mut lines = calls.lines();
    assert!(lines.next().unwrap().ends_with(",finish"), "{calls}");
    assert!(
        lines.all(|l| l.ends_with(",stop")),
        "every call of the plain mock ended by itself: {calls}"
    );

    let rows = crate::run::manifest(dir.path(), 5);
    let run_out = dir.path().join("run");
    crate::run::run(&rows, &run_out, &["--limit", "2", "--steps", "1", "-q"])
        .args(mock)
        .assert()
        .success();
    let summary = read_json(&run_out.join("summary.json"));
    let q = &summary["quality"];
    assert_eq!(q["finish"]["stop"], 5, "{q}");
    assert_eq!(q["empty"], 0);
    assert!(
        q["similarity"].is_null() && q["exact_matches"].is_null(),
        "{q}"
    );
    let md = std::fs::read_to_string(run_out.join("summary.md")).unwrap();
    assert!(md.contains("## Quality"), "{md}");
}
