//! Content, error bodies, HTTP/2, health, config loading and shutdown.

use loadchain_mock::{MockConfig, MockServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::*;

#[tokio::test]
async fn same_input_gives_same_content_across_servers_with_the_same_seed() {
    let config = MockConfig {
        seed: 7,
        ..Default::default()
    };
    let a = start(config.clone()).await;
    let b = start(config).await;
    let other_seed = start(MockConfig {
        seed: 8,
        ..Default::default()
    })
    .await;
    let client = client();
    let req = json!({"model": "gpt-test", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "write about load tests"}]});
    let (_, ra, _) = post_chat(&client, &a, &req).await;
    let (_, ra2, _) = post_chat(&client, &a, &req).await;
    let (_, rb, _) = post_chat(&client, &b, &req).await;
    let (_, rc, _) = post_chat(&client, &other_seed, &req).await;
    let (_, rd, _) = post_chat(&client, &a, &chat("something else")).await;
    assert_eq!(content(&ra), content(&ra2));
    assert_eq!(content(&ra), content(&rb));
    assert_ne!(content(&ra), content(&rc));
    assert_ne!(content(&ra), content(&rd));

    // The OpenAI response shape.
    assert_eq!(ra["object"], "chat.completion");
    assert_eq!(ra["model"], "gpt-test");
    assert!(ra["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(ra["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(ra["choices"][0]["message"]["role"], "assistant");
    assert_eq!(ra["choices"][0]["finish_reason"], "stop");
    assert_eq!(ra["usage"]["prompt_tokens"], 6);
    assert_eq!(ra["usage"]["completion_tokens"], 16);
    assert_eq!(ra["usage"]["total_tokens"], 22);
    assert_eq!(content(&ra).split(' ').count(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_does_not_depend_on_concurrency_or_order() {
    let server = start(MockConfig {
        latency: "uniform:1ms..30ms".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let client = client();
    let mut sequential = Vec::new();
    for i in 0..20 {
        sequential.push(content(
            &post_chat(&client, &server, &chat(&i.to_string())).await.1,
        ));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in (0..20).rev() {
        let (client, url) = (client.clone(), server.url());
        tasks.spawn(async move {
            let v: Value = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&chat(&i.to_string()))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (i, content(&v))
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (i, text) = r.unwrap();
        assert_eq!(text, sequential[i], "row {i}");
    }
}

fn assert_openai_error(body: &Value, kind: &str) {
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn bad_requests_get_openai_style_errors() {
    let server = start(MockConfig {
        max_body_bytes: 100,
        ..Default::default()
    })
    .await;
    let client = client();
    let url = server.url();
    let chat_url = format!("{url}/v1/chat/completions");

    let resp = client
        .post(&chat_url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_openai_error(&resp.json().await.unwrap(), "invalid_request_error");

    let resp = client
        .post(&chat_url)
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "messages are required");

    let resp = client
        .post(&chat_url)
        .body(vec![b' '; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_openai_error(&resp.json().await.unwrap(), "invalid_request_error");

    let resp = client
        .post(format!("{url}/v1/completions"))
        .json(&chat("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_openai_error(&resp.json().await.unwrap(), "invalid_request_error");

    let resp = client.get(&chat_url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    assert_openai_error(&resp.json().await.unwrap(), "invalid_request_error");

    let stats = server.stats();
    assert_eq!(stats.requests_total, 5);
    for status in [400, 413, 404, 405] {
        assert!(stats.requests_by_status.contains_key(&status), "{stats:?}");
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413_while_reading() {
    let server = start(MockConfig {
        max_body_bytes: 100,
        ..Default::default()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let chunk = "x".repeat(500);
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(ms(5000), tcp.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("request_too_large"), "{response}");
}

#[tokio::test]
async fn health_answers_ok_and_is_not_counted() {
    let server = start(MockConfig::default()).await;
    let resp = client()
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(server.stats().requests_total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served_on_one_connection() {
    let server = start(MockConfig {
        latency: "fixed:50ms".parse().unwrap(),
        conn_cost: ms(100),
        ..Default::default()
    })
    .await;
    let client = builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // Warm the connection so that all streams below share it.
    post_chat(&client, &server, &chat("warm")).await;
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (client, url) = (client.clone(), server.url());
        tasks.spawn(async move {
            let resp = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&chat(&i.to_string()))
                .send()
                .await
                .unwrap();
            (resp.version(), resp.status())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (version, status) = r.unwrap();
        assert_eq!(version, reqwest::Version::HTTP_2);
        assert_eq!(status, 200);
    }
    // Multiplexed and no second connection cost: well under 10 x 50 ms.
    assert!(t0.elapsed() < ms(400), "{:?}", t0.elapsed());
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.peak_in_flight, 10);
}

#[tokio::test]
async fn toml_config_file_loads_and_a_bad_one_names_the_line() {
    let dir = std::env::temp_dir().join(format!("loadchain-mock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "latency = \"uniform:30ms..150ms\"\ntoken_time = \"2ms\"\nrpm = 600\nfailure_statuses = [503]\n",
    )
    .unwrap();
    let c = MockConfig::from_toml_file(&good).unwrap();
    assert_eq!(c.latency.to_string(), "uniform:30ms..150ms");
    assert_eq!(c.rpm, Some(600));
    assert_eq!(c.failure_statuses, vec![503]);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "seed = 1\nrpm = 60\nlatency = \"fixed:\"\n").unwrap();
    let msg = MockConfig::from_toml_file(&bad).unwrap_err().to_string();
    assert!(msg.contains("bad.toml"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");

    let out_of_range = dir.join("range.toml");
    std::fs::write(&out_of_range, "failure_rate = 2.0\n").unwrap();
    let msg = MockConfig::from_toml_file(&out_of_range)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("range.toml") && msg.contains("failure_rate"),
        "{msg}"
    );

    let missing = MockConfig::from_toml_file(&dir.join("missing.toml")).unwrap_err();
    assert!(missing.to_string().contains("missing.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn invalid_config_is_refused_at_start() {
    let err = MockServer::start(MockConfig {
        failure_rate: 3.0,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("failure_rate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = start(MockConfig {
        latency: "fixed:300ms".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let request = spawn_chat(&client(), &server, "x");
    assert!(eventually(|| server.stats().in_flight == 1).await);
    let t0 = Instant::now();
    let addr = server.addr();
    server.shutdown().await;
    assert!(t0.elapsed() < ms(3000));
    assert_eq!(request.await.unwrap().unwrap().status(), 200);
    // The listener is closed after shutdown.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
