//! What the official OpenAI SDKs rely on beyond the chat body: the usage chunk of a stream,
//! the models endpoints, `x-request-id`, `retry-after-ms`, and validation of `messages`.

use std::collections::HashSet;

use loadchain_mock::MockConfig;
use serde_json::{Value, json};

use crate::common::*;

/// Sends a streamed chat request and returns its SSE events (the text after `data: `).
async fn stream_events(client: &reqwest::Client, url: &str, body: &Value) -> Vec<String> {
    let mut resp = client
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(buf.ends_with("\n\n"), "{buf:?}");
    buf.split_terminator("\n\n")
        .map(|e| e.strip_prefix("data: ").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_stream_ends_with_a_usage_chunk_only_when_include_usage_is_set() {
    let server = start(MockConfig {
        output_tokens: 5,
        ..Default::default()
    })
    .await;
    let client = client();
    let (_, whole, _) = post_chat(&client, &server, &chat("count my tokens")).await;

    let mut req = chat("count my tokens");
    req["stream"] = true.into();
    let plain = stream_events(&client, &server.url(), &req).await;
    // 5 tokens, the finish_reason chunk, [DONE]; no chunk mentions usage at all.
    assert_eq!(plain.len(), 7, "{plain:?}");
    assert_eq!(plain[6], "[DONE]");
    assert!(plain.iter().all(|e| !e.contains("usage")), "{plain:?}");

    req["stream_options"] = json!({"include_usage": false});
    let off = stream_events(&client, &server.url(), &req).await;
    assert_eq!(
        off.len(),
        7,
        "include_usage false is the same as absent: {off:?}"
    );

    req["stream_options"] = json!({"include_usage": true});
    let with = stream_events(&client, &server.url(), &req).await;
    assert_eq!(with.len(), 8, "{with:?}");
    assert_eq!(with[7], "[DONE]");
    let chunks: Vec<Value> = with[..7]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // As at OpenAI: every other chunk says "usage": null, the last one has no choices.
    for c in &chunks[..6] {
        assert!(c["usage"].is_null() && c.get("usage").is_some(), "{c}");
        assert_eq!(c["choices"].as_array().unwrap().len(), 1, "{c}");
    }
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    let last = &chunks[6];
    assert_eq!(last["object"], "chat.completion.chunk");
    assert_eq!(last["id"], chunks[0]["id"]);
    assert_eq!(last["model"], "test-model");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], whole["usage"], "same usage as non-streamed");
    assert_eq!(last["usage"]["completion_tokens"], 5);
    let u = &last["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + 5
    );
}

#[tokio::test]
async fn models_are_listed_and_any_id_is_served() {
    let server = start(MockConfig::default()).await;
    let client = client();
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();

    let resp = get("/v1/models").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], "loadchain-mock");
    assert_eq!(data[0]["object"], "model");
    assert!(data[0]["created"].as_u64().unwrap() > 1_600_000_000);
    assert!(data[0]["owned_by"].is_string());

    // Any id: the chat endpoint answers for any model name too.
    for id in [
        "gpt-4o-mini",
        "ft:gpt-4o:org:custom:abc",
        "meta-llama/Llama-3-8B",
    ] {
        let model: Value = get(&format!("/v1/models/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(model["id"], id);
        assert_eq!(model["object"], "model");
        assert!(model["created"].is_u64());
    }

    assert_eq!(get("/v1/models/").await.unwrap().status(), 404);
    assert_eq!(get("/v1/modelsx").await.unwrap().status(), 404);
    let post = client
        .post(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    // They are API requests: counted, unlike /stats.
    let stats = server.stats();
    assert_eq!(stats.requests_total, 7);
    assert_eq!(stats.requests_by_status.get(&200), Some(&4));
    assert_eq!(stats.requests_by_status.get(&404), Some(&2));
}

#[tokio::test]
async fn every_response_carries_a_unique_x_request_id() {
    let server = start(MockConfig {
        rpm: Some(2),
        ..Default::default()
    })
    .await;
    let client = client();
    let url = server.url();
    let chat_url = format!("{url}/v1/chat/completions");
    let mut streamed = chat("s");
    streamed["stream"] = true.into();
    let requests = [
        client.post(&chat_url).json(&chat("a")),  // 200
        client.post(&chat_url).json(&streamed),   // 200, streamed
        client.post(&chat_url).json(&chat("b")),  // 429
        client.post(&chat_url).body("{not json"), // 400
        client.get(format!("{url}/nowhere")),     // 404
        client.get(format!("{url}/v1/models")),   // 200
        client.get(format!("{url}/health")),      // 200, control plane
        client.get(format!("{url}/stats")),       // 200, control plane
    ];
    let mut ids = HashSet::new();
    let mut statuses = Vec::new();
    for request in requests {
        let resp = request.send().await.unwrap();
        statuses.push(resp.status().as_u16());
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(id.starts_with("req_") && id.len() == 36, "{id}");
        assert!(ids.insert(id), "ids are unique");
        resp.bytes().await.unwrap();
    }
    assert_eq!(statuses, [200, 200, 429, 400, 404, 200, 200, 200]);
}

#[tokio::test]
async fn a_429_says_how_long_to_wait_in_milliseconds_too() {
    // 120 per minute with a burst of 1: one token every 500 ms.
    let server = start(MockConfig {
        rpm: Some(120),
        rpm_burst: Some(1),
        ..Default::default()
    })
    .await;
    let client = client();
    assert_eq!(post_chat(&client, &server, &chat("a")).await.0, 200);
    let resp = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&chat("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let h = resp.headers();
    assert_eq!(h["retry-after"], "1", "whole seconds, rounded up");
    let wait_ms: u64 = h["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!((300..=500).contains(&wait_ms), "{wait_ms}");
}

#[tokio::test]
async fn empty_messages_are_a_400_in_openai_shape() {
    let server = start(MockConfig::default()).await;
    let client = client();
    let (status, body, _) =
        post_chat(&client, &server, &json!({"model": "m", "messages": []})).await;
    assert_eq!(status, 400);
    let e = &body["error"];
    assert_eq!(e["type"], "invalid_request_error", "{body}");
    assert_eq!(e["param"], "messages", "{body}");
    assert!(e["code"].is_null(), "{body}");
    assert!(
        e["message"].as_str().unwrap().contains("messages"),
        "{body}"
    );
    assert_eq!(server.stats().requests_by_status.get(&400), Some(&1));
}
