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
                // First text delta: base latency + one token; the call: + ten tokens. Only
                // lower bounds (the server's schedule): a loaded machine can bunch chunks.
                Some(t) if stream => {
                    assert!(t >= Duration::from_millis(24), "{t:?}");
                    assert!(t < c.latency, "{t:?} {c:?}");
                    assert!(c.latency >= Duration::from_millis(60), "{c:?}");
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
        let schema = crate::schema::validator("report.schema.json");
        crate::schema::assert_valid(&schema, &v, "an anthropic report.json");
        assert_eq!(v["runs"][0]["ttft"].is_object(), stream, "{}", v["runs"][0]);
    }
}

/// A one-shot server on 127.0.0.1:0: answers each of at most `replies.len()` connections
/// with the next canned response (then closes it), and hands back each request's head.
async fn canned(replies: Vec<String>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut heads = Vec::new();
        for reply in replies {
            let accept = tokio::time::timeout(Duration::from_secs(10), listener.accept());
            let Ok(Ok((mut sock, _))) = accept.await else {
                break;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head and (small) body: read until the declared body has arrived.
            loop {
                let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk))
                    .await
                    .unwrap()
                    .unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len || n == 0 {
                        heads.push(text);
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            sock.write_all(reply.as_bytes()).await.unwrap();
            sock.shutdown().await.ok();
        }
        heads
    });
    (url, task)
}

fn http(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_go_out_right_and_error_events_and_echoed_keys_are_handled() {
    let key = "sk-ant-test-0123456789";
    let stream_error = include_str!("fixtures/anthropic/stream_error.txt");
    let echoed = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"bad key {key}"}}}}"#
    );
    let (url, server) = canned(vec![
        http("200 OK", "text/event-stream", stream_error),
        http("401 Unauthorized", "application/json", &echoed),
    ])
    .await;
    let target = Target::anthropic(&url, "claude-test")
        .unwrap()
        .with_api_key("ANTHROPIC_API_KEY", key)
        .unwrap()
        .streaming(true);
    let r = Runner {
        target: Arc::new(target),
        limit: 1,
        ..runner_for_url()
    };
    let seen = Arc::new(Collect::default());
    r.run_batch(Row::synthetic(2).into(), seen.clone()).await;
    let calls = seen.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let finals = seen.finals();
    // The 200 stream that ended in an error event is the server's fault, not a decode error.
    let kinds: Vec<_> = finals.iter().map(|c| c.failure.as_ref().unwrap()).collect();
    assert!(
        kinds.iter().any(|f| f.kind.as_str() == "server_error"
            && f.message.contains("overloaded_error: Overloaded")),
        "{kinds:?}"
    );
    // A 401 that echoes the key: the kind is client_error, the key never stored.
    let auth = kinds.iter().find(|f| f.status == Some(401)).unwrap();
    assert_eq!(auth.kind.as_str(), "client_error");
    assert!(auth.message.contains("authentication_error"), "{auth:?}");
    assert!(!auth.message.contains(key), "{auth:?}");
    let heads = server.await.unwrap();
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with("post /v1/messages "), "{head}");
        assert!(lower.contains(&format!("x-api-key: {key}")), "{head}");
        assert!(lower.contains("anthropic-version: 2023-06-01"), "{head}");
        assert!(!lower.contains("authorization:"), "{head}");
        assert!(head.contains("\"max_tokens\":") && head.contains("\"stream\":true"));
    }
}

/// A runner with no retries, for a server that answers each call once.
fn runner_for_url() -> Runner {
    use loadchain::endpoint::{ClientOptions, HttpClient};
    Runner {
        client: HttpClient::new(loadchain::record::Pooling::Off, &ClientOptions::default())
            .unwrap(),
        target: anthropic("http://127.0.0.1:9", false),
        chain: Arc::new(loadchain::chain::Chain::default_steps(1).unwrap()),
        limiter: None,
        limit: 1,
        retry: RetryPolicy {
            retry_passes: 0,
            max_retries: 0,
            ..RetryPolicy::default()
        },
        stop: None,
        adaptive: None,
    }
}

#[tokio::test]
async fn the_mock_says_max_tokens_when_the_cap_cut_the_answer() {
    let mock = spawn_mock(fixed(0)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", mock.url());
    let body = r#"{"model":"m","max_tokens":3,"system":"terse","messages":[{"role":"user","content":"x"}]}"#;
    let v: serde_json::Value = client
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(
        v["content"][0]["text"].as_str().unwrap().split(' ').count(),
        3
    );
    let stream = body.replace("\"max_tokens\":3", "\"max_tokens\":3,\"stream\":true");
    let text = client
        .post(&url)
        .body(stream)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(text.contains("\"stop_reason\":\"max_tokens\""), "{text}");
}
