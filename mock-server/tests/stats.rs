//! `/stats` counts connections and in-flight requests exactly.

use loadchain_mock::{MockConfig, StatsSnapshot};

use crate::common::*;

async fn get_stats(client: &reqwest::Client, url: &str) -> StatsSnapshot {
    client
        .get(format!("{url}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn stats_count_one_connection_per_fresh_client_and_one_for_a_pooled_client() {
    let server = start(MockConfig::default()).await;
    for i in 0..5 {
        let fresh = client();
        assert_eq!(
            post_chat(&fresh, &server, &chat(&i.to_string())).await.0,
            200
        );
    }
    assert_eq!(server.stats().connections_accepted, 5);
    // The clients are dropped, so their connections close.
    assert!(eventually(|| server.stats().connections_open == 0).await);

    server.reset_stats();
    let pooled = client();
    for i in 0..10 {
        assert_eq!(
            post_chat(&pooled, &server, &chat(&i.to_string())).await.0,
            200
        );
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.requests_total, 10);
    assert_eq!(stats.requests_by_status.get(&200), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_track_in_flight_and_peak() {
    let server = start(MockConfig {
        latency: "fixed:300ms".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let client = client();
    let mut tasks = spawn_chats(&client, &server, 20);
    // The HTTP endpoint reports the same gauge while the requests sleep.
    let observer = builder().no_proxy().build().unwrap();
    let mut seen = 0;
    for _ in 0..200 {
        seen = get_stats(&observer, &server.url()).await.in_flight;
        if seen == 20 {
            break;
        }
        tokio::time::sleep(ms(5)).await;
    }
    assert_eq!(seen, 20);
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let stats = server.stats();
    assert_eq!(stats.peak_in_flight, 20);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.requests_total, 20, "/stats itself is not counted");
    assert_eq!(
        stats.connections_accepted, 20,
        "the observer's /stats connection is not counted"
    );
}

#[tokio::test]
async fn connections_that_only_watch_the_server_are_not_counted() {
    let server = start(MockConfig::default()).await;
    let url = server.url();
    let watcher = client();
    for _ in 0..3 {
        let seen = get_stats(&watcher, &url).await;
        assert_eq!(seen.connections_accepted, 0);
        assert_eq!(seen.connections_open, 0);
    }
    let health = watcher.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let reset = watcher
        .post(format!("{url}/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    // A fresh client that only asks for /stats is not counted either.
    assert_eq!(get_stats(&client(), &url).await.connections_accepted, 0);

    // Once a connection carries an API request it counts, once, from then on.
    assert_eq!(post_chat(&watcher, &server, &chat("x")).await.0, 200);
    let seen = get_stats(&watcher, &url).await;
    assert_eq!(seen.connections_accepted, 1);
    assert_eq!(seen.connections_open, 1);
    assert_eq!(post_chat(&watcher, &server, &chat("y")).await.0, 200);
    assert_eq!(server.stats().connections_accepted, 1);
    drop(watcher);
    assert!(eventually(|| server.stats().connections_open == 0).await);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn reset_zeroes_counters_but_keeps_gauges() {
    let server = start(MockConfig::default()).await;
    let client = client();
    post_chat(&client, &server, &chat("x")).await;
    post_chat(&client, &server, &chat("y")).await;
    let resp = client
        .post(format!("{}/stats/reset", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let after: StatsSnapshot = resp.json().await.unwrap();
    assert_eq!(after.requests_total, 0);
    assert!(after.requests_by_status.is_empty());
    assert_eq!(after.connections_accepted, 0);
    assert_eq!(
        after.connections_open, 1,
        "the pooled connection is still open"
    );
    assert_eq!(after.peak_in_flight, 0);
    assert_eq!(get_stats(&client, &server.url()).await, server.stats());
}
