//! Each behaviour knob, checked by measurement.

use std::collections::BTreeMap;

use loadchain_mock::MockConfig;
use tokio::time::Instant;

use crate::common::*;

#[tokio::test]
async fn fixed_latency_lands_just_above_the_configured_value() {
    let server = start(MockConfig {
        latency: "fixed:100ms".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let client = client();
    let mut times = Vec::new();
    for i in 0..10 {
        let (status, _, t) = post_chat(&client, &server, &chat(&format!("q{i}"))).await;
        assert_eq!(status, 200);
        assert!(t >= ms(100), "{t:?}");
        times.push(t);
    }
    let m = median(times);
    assert!(m < ms(140), "median {m:?}");
}

#[tokio::test]
async fn token_time_adds_per_output_token_and_max_tokens_caps_the_length() {
    let server = start(MockConfig {
        token_time: ms(10),
        output_tokens: 10,
        ..Default::default()
    })
    .await;
    let client = client();
    let (status, body, t) = post_chat(&client, &server, &chat("hello")).await;
    assert_eq!(status, 200);
    assert!(t >= ms(100), "{t:?}");
    assert_eq!(body["usage"]["completion_tokens"], 10);
    assert_eq!(content(&body).split(' ').count(), 10);

    let mut req = chat("hello");
    req["max_tokens"] = 2.into();
    let (_, short, t) = post_chat(&client, &server, &req).await;
    assert!(t >= ms(20) && t < ms(90), "{t:?}");
    assert_eq!(short["usage"]["completion_tokens"], 2);
    // A shorter completion is a prefix of the longer one.
    assert!(content(&body).starts_with(&content(&short)));
}

#[tokio::test]
async fn failure_rate_lands_within_statistical_bounds() {
    let server = start(MockConfig {
        failure_rate: 0.3,
        // The default seed; over 300 seeds the failure count has mean 119.9, sd 9.6 as
        // Binomial(400, 0.3) predicts.
        seed: 42,
        ..Default::default()
    })
    .await;
    let client = client();
    let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
    for i in 0..400 {
        let (status, body, _) = post_chat(&client, &server, &chat(&format!("row {i}"))).await;
        *by_status.entry(status).or_default() += 1;
        if status != 200 {
            assert!([500, 502, 503].contains(&status), "{status}");
            assert_eq!(body["error"]["type"], "server_error", "{body}");
            assert!(body["error"]["message"].is_string());
        }
    }
    let failed: u64 = by_status
        .iter()
        .filter(|(s, _)| **s != 200)
        .map(|(_, n)| n)
        .sum();
    // Binomial(400, 0.3): mean 120, sd 9.2; 88..152 is beyond 3 sd either side.
    assert!(
        (88..=152).contains(&failed),
        "{failed} failures: {by_status:?}"
    );
    assert!(
        by_status.len() >= 3,
        "several failure codes picked: {by_status:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.requests_total, 400);
    assert_eq!(stats.requests_by_status, by_status);
}

#[tokio::test]
async fn failures_wait_the_sampled_latency_too() {
    let server = start(MockConfig {
        latency: "fixed:80ms".parse().unwrap(),
        failure_rate: 1.0,
        failure_statuses: vec![503],
        ..Default::default()
    })
    .await;
    let (status, _, t) = post_chat(&client(), &server, &chat("x")).await;
    assert_eq!(status, 503);
    assert!(t >= ms(80), "{t:?}");
}

#[tokio::test]
async fn a_sequential_run_repeats_exactly_with_the_same_seed() {
    let config = MockConfig {
        latency: "uniform:0ms..5ms".parse().unwrap(),
        failure_rate: 0.4,
        seed: 99,
        ..Default::default()
    };
    let run = |config: MockConfig| async move {
        let server = start(config).await;
        let client = client();
        let mut statuses = Vec::new();
        for i in 0..60 {
            statuses.push(post_chat(&client, &server, &chat(&i.to_string())).await.0);
        }
        statuses
    };
    let a = run(config.clone()).await;
    let b = run(config.clone()).await;
    let c = run(MockConfig {
        seed: 100,
        ..config
    })
    .await;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_once_the_budget_is_spent() {
    let server = start(MockConfig {
        rpm: Some(5),
        ..Default::default()
    })
    .await;
    let client = client();
    let url = format!("{}/v1/chat/completions", server.url());
    for expected_remaining in (0..5).rev() {
        let resp = client.post(&url).json(&chat("hi")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["x-ratelimit-limit-requests"], "5");
        // Refill is 1/12 token per second: the few ms between requests never add a whole one.
        let remaining: u32 = h["x-ratelimit-remaining-requests"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(remaining, expected_remaining);
        // Go's duration form, as OpenAI writes it: 12s, 24s, ... here.
        let reset = h["x-ratelimit-reset-requests"].to_str().unwrap();
        assert!(reset.ends_with('s') && !reset.contains('-'), "{reset}");
    }
    let t0 = Instant::now();
    let resp = client.post(&url).json(&chat("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(t0.elapsed() < ms(500), "429 is immediate");
    let h = resp.headers().clone();
    // 5 per minute = one token every 12 s.
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((11..=12).contains(&retry), "{retry}");
    assert_eq!(h["x-ratelimit-limit-requests"], "5");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let stats = server.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.requests_by_status.get(&429), Some(&1));
    assert_eq!(stats.requests_by_status.get(&200), Some(&5));
}

#[tokio::test]
async fn connection_cost_applies_to_the_first_request_of_a_connection_only() {
    let server = start(MockConfig {
        conn_cost: ms(150),
        ..Default::default()
    })
    .await;
    let pooled = client();
    let (_, _, first) = post_chat(&pooled, &server, &chat("a")).await;
    let mut later = Vec::new();
    for _ in 0..4 {
        later.push(post_chat(&pooled, &server, &chat("b")).await.2);
    }
    let later = median(later);
    assert!(first >= ms(150), "{first:?}");
    assert!(later < ms(75), "{later:?}");
    assert!(first > later * 3, "first {first:?} vs later {later:?}");
    assert_eq!(server.stats().connections_accepted, 1);

    // A new client means a new connection, which pays again.
    let (_, _, fresh) = post_chat(&client(), &server, &chat("c")).await;
    assert!(fresh >= ms(150), "{fresh:?}");
    assert_eq!(server.stats().connections_accepted, 2);
}

#[tokio::test]
async fn hung_requests_time_out_the_client_and_are_counted() {
    let server = start(MockConfig {
        hang_rate: 1.0,
        ..Default::default()
    })
    .await;
    let client = builder().no_proxy().timeout(ms(300)).build().unwrap();
    let t0 = Instant::now();
    let err = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&chat("x"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(t0.elapsed() >= ms(300));
    let stats = server.stats();
    assert_eq!(stats.hung, 1);
    assert_eq!(stats.requests_total, 1);
    assert!(stats.requests_by_status.is_empty(), "{stats:?}");
    // The client gave up and closed the connection: hyper drops the hung request with it.
    drop(client);
    assert!(eventually(|| server.stats().in_flight == 0).await);
    assert!(eventually(|| server.stats().connections_open == 0).await);
    // Shutdown drops the hung request instead of waiting for it.
    let t0 = Instant::now();
    server.shutdown().await;
    assert!(t0.elapsed() < ms(2000), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_queues_the_excess_requests() {
    let server = start(MockConfig {
        latency: "fixed:100ms".parse().unwrap(),
        capacity: Some(2),
        ..Default::default()
    })
    .await;
    let client = client();
    let t0 = Instant::now();
    let mut tasks = spawn_chats(&client, &server, 6);
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let elapsed = t0.elapsed();
    // 6 requests, 2 at a time, 100 ms each: three waves.
    assert!(elapsed >= ms(290), "{elapsed:?}");
    assert!(elapsed < ms(2000), "{elapsed:?}");
    // Queued requests count as in flight: they are the server's load.
    assert_eq!(server.stats().peak_in_flight, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drops_hung_requests_instead_of_waiting() {
    let server = start(MockConfig {
        hang_rate: 1.0,
        ..Default::default()
    })
    .await;
    let request = spawn_chat(&client(), &server, "x");
    assert!(eventually(|| server.stats().hung == 1).await);
    let t0 = Instant::now();
    server.shutdown().await;
    assert!(t0.elapsed() < ms(2000), "{:?}", t0.elapsed());
    // The client sees the connection close without a response, long before its 20 s timeout.
    let err = request.await.unwrap().unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(t0.elapsed() < ms(3000));
}

#[tokio::test]
async fn the_same_request_takes_the_same_time_and_different_requests_differ() {
    let server = start(MockConfig {
        latency: "uniform:20ms..200ms".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let client = client();
    let mut first = Vec::new();
    for i in 0..6 {
        first.push(post_chat(&client, &server, &chat(&format!("q{i}"))).await.2);
    }
    // Same requests again, in reverse order: each takes what it took before (paired
    // sampling), within scheduling noise (generous: a loaded 2-core machine adds tens of ms,
    // while unpaired draws over 20..200 ms differ by 60 ms on average).
    for i in (0..6).rev() {
        let t = post_chat(&client, &server, &chat(&format!("q{i}"))).await.2;
        let diff = t.abs_diff(first[i]);
        assert!(diff < ms(40), "q{i}: {t:?} vs {:?}", first[i]);
    }
    let spread = first
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*first.iter().min().unwrap());
    assert!(
        spread > ms(20),
        "different requests draw different latencies: {first:?}"
    );
}

#[tokio::test]
async fn tpm_charges_prompt_and_max_tokens_in_its_own_bucket_with_headers_for_both() {
    let server = start(MockConfig {
        rpm: Some(100),
        tpm: Some(100),
        ..Default::default()
    })
    .await;
    let client = client();
    let url = format!("{}/v1/chat/completions", server.url());
    // "hi" is 1 token (2 characters / 4, rounded up) + max_tokens 40 = 41.
    let body =
        serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 40});
    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-ratelimit-limit-tokens"], "100");
    assert_eq!(h["x-ratelimit-remaining-tokens"], "59");
    assert_eq!(h["x-ratelimit-limit-requests"], "100");
    assert_eq!(h["x-ratelimit-remaining-requests"], "99");
    // 41 tokens at 100 a minute refill in 24.6 s.
    assert_eq!(h["x-ratelimit-reset-tokens"], "24.6s");
    let ok = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let refused = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let h = refused.headers().clone();
    assert_eq!(h["x-ratelimit-remaining-tokens"], "18");
    // The refused request's request token was given back.
    assert_eq!(h["x-ratelimit-remaining-requests"], "98");
    // 23 tokens short at 100 a minute: 13.8 s, less what refilled while the test ran (a
    // loaded machine can take a while between requests).
    let wait: u64 = h["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!((12_000..=13_800).contains(&wait), "{wait}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens"),
        "{body}"
    );
    assert_eq!(server.stats().rate_limited, 1);
}

#[tokio::test]
async fn a_fixed_quota_window_reports_the_time_to_the_minute_end() {
    let server = start(MockConfig {
        rpm: Some(2),
        quota_window: loadchain_mock::QuotaWindow::Fixed,
        ..Default::default()
    })
    .await;
    let client = client();
    let url = format!("{}/v1/chat/completions", server.url());
    for _ in 0..2 {
        let resp = client.post(&url).json(&chat("hi")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let refused = client.post(&url).json(&chat("hi")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let h = refused.headers();
    // A bucket of 2 per minute would say 30 s; the window ends ~60 s after the start.
    let wait: u64 = h["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!((55_000..=60_000).contains(&wait), "{wait}");
    let reset = h["x-ratelimit-reset-requests"].to_str().unwrap();
    assert!(
        reset.starts_with("59") || reset.starts_with("58") || reset == "1m0s",
        "{reset}"
    );
}
