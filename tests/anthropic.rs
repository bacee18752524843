//! `--api anthropic` against the mock's `/v1/messages`: plain and streamed answers, tokens
//! from usage, TTFT from the first text delta, 529 retried like 503, and the CLI end to end.

use std::sync::Arc;
use std::time::Duration;

use loadchain::chain::Row;
use loadchain::endpoint::Target;
use loadchain::runner::{RetryPolicy, Runner};
use loadchain_mock::MockConfig;

use crate::common::{Collect, fixed, loadchain, runner, spawn_mock};

fn anthropic(url: &str, stream: bool) -> Arc<Target> {
    Arc::new(
        Target::anthropic(url, "claude-test")
            .unwrap()
            .streaming(stream),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_plain_and_streamed_give_the_same_outputs_tokens_and_a_ttft() {
    let mock = spawn_mock(MockConfig {
        token_time: Duration::from_millis(4),
        output_tokens: 10,
        ..fixed(20)
    })
    .await;
    let rows: Arc<[Row]> = Row::synthetic(3).into();
    let mut outputs = Vec::new();
    for stream in [false, true] {
        let r = Runner {
            target: anthropic(&mock.url(), stream),
            ..runner(&mock, 2, 3, RetryPolicy::default())
        };
        let seen = Arc::new(Collect::default());
        r.run_batch(Arc::clone(&rows).into(), seen.clone()).await;
        let calls = seen.calls();
        assert_eq!(calls.len(), 6);
        for c in &calls {
            assert_eq!(c.error, None, "{c:?}");
            assert_eq!(c.tokens, Some(10));
            assert!(c.input_tokens.is_some_and(|t| t > 0), "{c:?}");
            match c.ttft {
                // First text delta: base latency + one token; the call: + ten tokens.
                Some(t) if stream => {
                    assert!(t >= Duration::from_millis(24), "{t:?}");
                    assert!(t + Duration::from_millis(30) <= c.latency, "{t:?}");
                }
                None if !stream => {}
                other => panic!("stream={stream} ttft={other:?}"),
            }
        }
        let finals = seen.finals();
        assert!(finals.iter().all(|c| c.ok()));
        outputs.push(finals.iter().map(|c| c.outputs.clone()).collect::<Vec<_>>());
    }
    assert_eq!(outputs[0], outputs[1], "the stream rebuilds the plain text");
    assert_eq!(outputs[0][0][0].split(' ').count(), 10);
    // The same prompt gets the same words from either API of the mock.
    let seen = Arc::new(Collect::default());
    runner(&mock, 2, 3, RetryPolicy::default())
        .run_batch(rows.into(), seen.clone())
        .await;
    let openai: Vec<_> = seen.finals().iter().map(|c| c.outputs.clone()).collect();
    assert_eq!(openai, outputs[0]);
    assert_eq!(mock.stats().requests_total, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_529_is_retried_like_503_and_keeps_anthropic_s_error_type() {
    let mock = spawn_mock(MockConfig {
        failure_rate: 0.5,
        failure_statuses: vec![529],
        ..fixed(1)
    })
    .await;
    let retry = RetryPolicy {
        max_retries: 8,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let r = Runner {
        target: anthropic(&mock.url(), false),
        ..runner(&mock, 1, 4, retry)
    };
    let seen = Arc::new(Collect::default());
    r.run_batch(Row::synthetic(8).into(), seen.clone()).await;
    let calls = seen.calls();
    let overloaded = calls.iter().filter(|c| c.status == Some(529)).count();
    assert!(
        overloaded > 0,
        "a 0.5 failure rate over 8+ calls fails some"
    );
    assert!(
        calls.iter().any(|c| c.try_no > 0),
        "529s are backoff-retried"
    );
    assert!(seen.finals().iter().all(|c| c.ok()), "{:?}", seen.finals());

    // The error body is Anthropic's shape, with its type.
    let client = reqwest::Client::new();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let resp = client
        .post(format!("{}/v1/messages", mock.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "max_tokens is required");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[test]
fn cli_api_anthropic_runs_against_the_embedded_mock_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    for stream in [false, true] {
        let out_dir = dir.path().join(format!("s{stream}"));
        let mut cmd = loadchain();
        cmd.args(["sweep", "--api", "anthropic", "--n", "4", "--limits", "1,2"]);
        cmd.args(["--steps", "2", "--out"]).arg(&out_dir);
        if stream {
            cmd.arg("--stream");
        }
        let out = cmd.assert().success().get_output().stdout.clone();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("every chain succeeded"), "{text}");
        let report = std::fs::read_to_string(out_dir.join("report.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(v["settings"]["api"], "anthropic");
        assert_eq!(v["runs"][0]["ttft"].is_object(), stream, "{}", v["runs"][0]);
    }
}
