//! `ttft` (time to first token, apart from the per-token time) and `load_slowdown` (tokens
//! slow down with the requests in flight, like a batching server).

use std::time::Duration;

use loadchain_mock::MockConfig;
use tokio::time::Instant;

use crate::common::*;

/// Arrival times of the streamed chunks that carry content, from the send.
async fn content_times(client: &reqwest::Client, url: &str, text: &str) -> Vec<Duration> {
    let mut req = chat(text);
    req["stream"] = true.into();
    let t0 = Instant::now();
    let mut resp = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&req)
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let mut times = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        let at = t0.elapsed();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            if buf[..end].contains("\"content\":\"") && !buf[..end].contains("\"content\":\"\"") {
                times.push(at);
            }
            buf.drain(..end + 2);
        }
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_sets_the_first_chunk_and_token_time_the_rest() {
    let server = start(MockConfig {
        ttft: Some("fixed:100ms".parse().unwrap()),
        token_time: ms(60),
        output_tokens: 4,
        ..Default::default()
    })
    .await;
    let times = content_times(&client(), &server.url(), "first token").await;
    assert_eq!(times.len(), 4, "{times:?}");
    // Without ttft the first chunk would come after one token time (60 ms); with it, after
    // the ttft and not one token time more.
    assert!(times[0] >= ms(100) && times[0] < ms(150), "{times:?}");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= ms(45) && gap < ms(150), "gap {gap:?} in {times:?}");
    }
    // Not streamed: the whole answer after ttft + 4 token times.
    let (status, _, took) = post_chat(&client(), &server, &chat("first token")).await;
    assert_eq!(status, 200);
    assert!(took >= ms(340) && took < ms(600), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_slowdown_stretches_tokens_with_requests_in_flight() {
    let server = start(MockConfig {
        token_time: ms(10),
        output_tokens: 10,
        load_slowdown: 1.0,
        ..Default::default()
    })
    .await;
    let client = client();
    // Alone: 10 tokens × 10 ms × (1 + 1 × 1) = 200 ms.
    let (status, _, alone) = post_chat(&client, &server, &chat("alone")).await;
    assert_eq!(status, 200);
    assert!(alone >= ms(195) && alone < ms(400), "{alone:?}");

    // Six streams at once: each token takes up to 10 ms × (1 + 6) while all are in flight.
    let url = server.url();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move { content_times(&client, &url, &format!("busy {i}")).await });
    }
    let mut slowest = Duration::ZERO;
    while let Some(times) = tasks.join_next().await {
        let times = times.unwrap();
        assert_eq!(times.len(), 10);
        slowest = slowest.max(*times.last().unwrap());
    }
    assert!(
        slowest >= ms(400),
        "6 in flight should slow tokens: {slowest:?}"
    );
}
