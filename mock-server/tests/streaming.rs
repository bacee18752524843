//! `"stream": true`: OpenAI chunk format, one chunk per token spaced by `token_time`.

use loadchain_mock::MockConfig;
use serde_json::Value;
use tokio::time::Instant;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_arrive_spaced_by_token_time_and_end_with_done() {
    let server = start(MockConfig {
        latency: "fixed:50ms".parse().unwrap(),
        token_time: ms(40),
        output_tokens: 5,
        ..Default::default()
    })
    .await;
    let client = client();
    let (_, whole, _) = post_chat(&client, &server, &chat("stream me")).await;

    let mut req = chat("stream me");
    req["stream"] = true.into();
    let t0 = Instant::now();
    let mut resp = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");

    // Split the byte stream into SSE events, noting when each one arrived.
    let mut buf = String::new();
    let mut events: Vec<(String, std::time::Duration)> = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        let at = t0.elapsed();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event = buf[..end].to_string();
            buf.drain(..end + 2);
            events.push((event, at));
        }
    }
    assert!(buf.is_empty(), "trailing bytes: {buf:?}");
    assert_eq!(events.last().unwrap().0, "data: [DONE]");
    // 5 token chunks + 1 final chunk + [DONE].
    assert_eq!(events.len(), 7, "{events:?}");

    let mut text = String::new();
    for (i, (event, _)) in events[..6].iter().enumerate() {
        let v: Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        assert_eq!(v["model"], "test-model");
        let choice = &v["choices"][0];
        if i < 5 {
            assert!(choice["finish_reason"].is_null());
            text.push_str(choice["delta"]["content"].as_str().unwrap());
        } else {
            assert_eq!(choice["finish_reason"], "stop");
        }
    }
    assert_eq!(
        text,
        content(&whole),
        "streamed deltas join to the same content"
    );

    // First token after latency + one token time, then spaced by token_time.
    let times: Vec<_> = events[..5].iter().map(|(_, at)| *at).collect();
    assert!(times[0] >= ms(90), "{times:?}");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= ms(25) && gap < ms(120), "gap {gap:?} in {times:?}");
    }
    assert!(times[4] >= ms(250), "{times:?}");
    assert!(eventually(|| server.stats().in_flight == 0).await);
    assert_eq!(server.stats().requests_by_status.get(&200), Some(&2));
}
