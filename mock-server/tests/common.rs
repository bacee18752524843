//! Helpers shared by the integration tests: start a server on port 0, build clients, send
//! chat requests and time them.

use std::time::Duration;

use loadchain_mock::{MockConfig, MockServer};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Starts a server with `config` on 127.0.0.1:0.
pub async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock server starts")
}

/// A client builder. reqwest is built with rustls but no crypto provider (the workspace's
/// choice, to avoid aws-lc), so one is installed first; Err only means it already was.
pub fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A pooled HTTP/1.1 client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    builder()
        .no_proxy()
        .http1_only()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A chat request body with one user message.
pub fn chat(text: &str) -> Value {
    json!({"model": "test-model", "messages": [{"role": "user", "content": text}]})
}

/// POSTs `body` to the chat endpoint; returns status, JSON body and elapsed time until the
/// whole body was read.
pub async fn post_chat(
    client: &reqwest::Client,
    server: &MockServer,
    body: &Value,
) -> (u16, Value, Duration) {
    let t0 = Instant::now();
    let resp = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let elapsed = t0.elapsed();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value, elapsed)
}

/// The assistant text of a non-streamed completion.
pub fn content(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Polls `cond` every 10 ms for at most 5 s.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(ms(10)).await;
    }
    false
}

/// Sends one chat request with `text` in the background; the task yields the response.
pub fn spawn_chat(
    client: &reqwest::Client,
    server: &MockServer,
    text: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let request = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&chat(text));
    tokio::spawn(request.send())
}

/// Sends `n` different chat requests at once; each task yields its status.
pub fn spawn_chats(
    client: &reqwest::Client,
    server: &MockServer,
    n: usize,
) -> tokio::task::JoinSet<reqwest::StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let sent = spawn_chat(client, server, &i.to_string());
        tasks.spawn(async move { sent.await.unwrap().unwrap().status() });
    }
    tasks
}
