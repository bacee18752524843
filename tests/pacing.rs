//! Header-aware pacing against the mock's quota headers: fewer 429s than unpaced, a stop
//! ends a pacing wait, the announced quota reaches the report's settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadchain::chain::Row;
use loadchain::endpoint::{ClientOptions, HttpClient};
use loadchain::record::Pooling;
use loadchain::runner::{RetryPolicy, Runner};
use loadchain_mock::MockConfig;
use serde_json::Value;

use crate::common::{Collect, fixed, loadchain, runner, spawn_mock};

/// A pooled client with pacing off (`--pace off`).
pub fn unpaced() -> HttpClient {
    let opts = ClientOptions {
        pace: false,
        ..ClientOptions::default()
    };
    HttpClient::new(Pooling::On, &opts).unwrap()
}

/// 200 one-step chains at limit 20 against a bucket of 6,000 a minute holding only 20:
/// the 429s seen and the wall time; OpenAI's API, or Anthropic's `/v1/messages`.
async fn run(paced: bool, anthropic: bool) -> (usize, Duration, usize) {
    let mock = spawn_mock(MockConfig {
        rpm: Some(6000),
        rpm_burst: Some(20),
        ..fixed(20)
    })
    .await;
    let retry = RetryPolicy {
        max_retries: 50,
        backoff_base: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let mut runner = runner(&mock, 1, 20, retry);
    if !paced {
        runner.client = unpaced();
    }
    if anthropic {
        runner.target = Arc::new(loadchain::endpoint::Target::anthropic(&mock.url(), "c").unwrap());
    }
    let seen = Arc::new(Collect::default());
    let t0 = Instant::now();
    runner
        .run_batch(Row::synthetic(200).into(), seen.clone())
        .await;
    let wall = t0.elapsed();
    let refused = seen
        .calls()
        .iter()
        .filter(|c| c.status == Some(429))
        .count();
    let ok = seen.finals().iter().filter(|c| c.ok()).count();
    (refused, wall, ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_by_the_headers_halves_the_429s_at_least_and_is_no_slower() {
    let (off_429, off_wall, off_ok) = run(false, false).await;
    let (on_429, on_wall, on_ok) = run(true, false).await;
    eprintln!("PACING | off: {off_429} 429s in {off_wall:?} | on: {on_429} 429s in {on_wall:?}");
    assert_eq!((off_ok, on_ok), (200, 200));
    assert!(
        off_429 >= 20,
        "the unpaced run must meet the limit: {off_429}"
    );
    assert!(on_429 * 2 <= off_429, "paced {on_429} vs unpaced {off_429}");
    // 180 calls past the bucket at 100 a second take 1.8 s whichever way; generous bound.
    assert!(
        on_wall <= off_wall + Duration::from_millis(500),
        "{on_wall:?} vs {off_wall:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_pacing_wait_at_once_without_sending() {
    // One request a minute: the paced second call waits instead of being sent.
    let mock = spawn_mock(MockConfig {
        rpm: Some(1),
        rpm_burst: Some(1),
        ..fixed(1)
    })
    .await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = Runner {
        stop: Some(stop_rx),
        ..runner(&mock, 1, 1, RetryPolicy::default())
    };
    let seen = Arc::new(Collect::default());
    let observer = seen.clone();
    let batch =
        tokio::spawn(async move { runner.run_batch(Row::synthetic(3).into(), observer).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(true).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), batch)
        .await
        .expect("the pacing wait ended with the stop")
        .unwrap();
    assert!(batch.interrupted);
    assert_eq!(
        mock.stats().rate_limited,
        0,
        "nothing was sent into the 429"
    );
    let finals = seen.finals();
    let cut = finals
        .iter()
        .find(|c| !c.ok())
        .expect("the waiting row failed");
    let f = cut.failure.as_ref().unwrap();
    assert!(f.message.contains("ended by Ctrl-C"), "{}", f.message);
}

#[test]
fn the_announced_quota_is_in_the_report_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    loadchain()
        .args([
            "sweep",
            "--n",
            "4",
            "--limits",
            "2",
            "--pooling",
            "on",
            "--steps",
            "1",
            "-q",
        ])
        .args(["--mock-rpm", "6000", "--mock-tpm", "900000", "--out"])
        .arg(&out)
        .assert()
        .success();
    let report: Value = crate::common::read_json(&out.join("report.json"));
    let settings = &report["settings"];
    assert_eq!(settings["pace"], true);
    assert_eq!(settings["announced_quota"]["requests_per_min"], 6000);
    assert_eq!(settings["announced_quota"]["tokens_per_min"], 900_000);
    assert_schema("report.schema.json", &report);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("6000 requests/min, 900000 tokens/min"), "{md}");
}

#[test]
fn a_run_records_the_announced_quota_in_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("rows.csv");
    std::fs::write(&manifest, "id,topic\n1,a\n2,b\n3,c\n").unwrap();
    let out = dir.path().join("run");
    loadchain()
        .args([
            "run",
            "--steps",
            "1",
            "-q",
            "--mock-rpm",
            "6000",
            "--pace",
            "off",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let summary: Value = crate::common::read_json(&out.join("summary.json"));
    let settings = &summary["settings"];
    // Seen even with pacing off: the headers are read either way.
    assert_eq!(settings["pace"], false);
    assert_eq!(settings["announced_quota"]["requests_per_min"], 6000);
    assert!(settings["announced_quota"]["tokens_per_min"].is_null());
    assert_schema("summary.schema.json", &summary);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("6000 requests/min"), "{md}");
}

/// `doc` passes docs/schema/`name` (the new settings fields are declared there).
fn assert_schema(name: &str, doc: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema")
        .join(name);
    let schema: Value = crate::common::read_json(&path);
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_messages_route_announces_anthropic_quota_headers_and_pacing_reads_them() {
    let mock = spawn_mock(MockConfig {
        rpm: Some(600),
        tpm: Some(90_000),
        ..fixed(1)
    })
    .await;
    let body = r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    // Building loadchain's client installs the TLS crypto provider reqwest needs.
    drop(unpaced());
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", mock.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(
        !h.keys().any(|k| k.as_str().starts_with("x-ratelimit")),
        "OpenAI's headers on Anthropic's route: {h:?}"
    );
    assert_eq!(h["anthropic-ratelimit-requests-limit"], "600");
    assert_eq!(h["anthropic-ratelimit-requests-remaining"], "599");
    for kind in ["requests", "tokens", "input-tokens", "output-tokens"] {
        let reset = h[format!("anthropic-ratelimit-{kind}-reset").as_str()]
            .to_str()
            .unwrap();
        let at = humantime::parse_rfc3339(reset).unwrap_or_else(|e| panic!("{reset}: {e}"));
        let ahead = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        assert!(
            ahead <= Duration::from_secs(61),
            "{kind} resets in {ahead:?}"
        );
    }
    assert_eq!(h["anthropic-ratelimit-tokens-limit"], "90000");
    assert_eq!(h["anthropic-ratelimit-input-tokens-limit"], "90000");
    // loadchain's quota parsing reads them as the quota they announce.
    let q = loadchain::endpoint::quota::QuotaHeaders::parse(&h, std::time::SystemTime::now())
        .expect("a quota is announced");
    let requests = q.requests.unwrap();
    assert_eq!((requests.limit, requests.remaining), (Some(600), 599));
    assert!(requests.reset.is_some());
    assert_eq!(q.tokens.unwrap().limit, Some(90_000));
    // And the pacer acts on them: far fewer 429s than unpaced against the same bucket.
    let (off_429, _, off_ok) = run(false, true).await;
    let (on_429, _, on_ok) = run(true, true).await;
    eprintln!("ANTHROPIC PACING | off: {off_429} 429s | on: {on_429} 429s");
    assert_eq!((off_ok, on_ok), (200, 200));
    assert!(
        off_429 >= 20,
        "the unpaced run must meet the limit: {off_429}"
    );
    assert!(on_429 * 2 <= off_429, "paced {on_429} vs unpaced {off_429}");
}
