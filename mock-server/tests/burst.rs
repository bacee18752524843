//! A cold burst: 1,000 clients connect at the same instant, as a harness's first round does
//! at `--limits 1000`. A listen backlog that overflowed would drop SYNs and cost the dropped
//! clients a 1 s retransmission, which would show as calls slower than the bound below.
//!
//! Its own test binary (cargo runs test binaries one after another): the burst takes both
//! cores for a moment, which would upset the tight timing bounds of tests running beside it.

use std::time::Duration;

use loadchain_mock::{Latency, MockConfig, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const CLIENTS: usize = 1000;

/// One raw HTTP/1.1 call on its own new connection: (status line is 200, seconds it took).
async fn one_call(addr: std::net::SocketAddr, body: &'static str) -> (bool, Duration) {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    (response.starts_with(b"HTTP/1.1 200"), t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_at_once_are_all_served_without_a_syn_retry() {
    // Client and server sockets share this process: 2,000 descriptors and some spare.
    let _ = rlimit::increase_nofile_limit(4096);
    let server = MockServer::start(MockConfig {
        latency: Latency::Fixed(Duration::from_millis(100)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        calls.spawn(one_call(server.addr(), body));
    }
    let all = tokio::time::timeout(Duration::from_secs(20), calls.join_all())
        .await
        .expect("the burst finishes within 20 s");
    let ok = all.iter().filter(|(ok, _)| *ok).count();
    let slowest = all.iter().map(|(_, d)| *d).max().unwrap();
    assert_eq!(ok, CLIENTS, "every call answered 200");
    assert_eq!(server.stats().connections_accepted, CLIENTS as u64);
    // 100 ms of latency plus queueing on a loaded 2-core machine stays well under the 1 s
    // that a dropped SYN costs (the kernel's first retransmission timeout).
    assert!(
        slowest < Duration::from_millis(1000),
        "slowest call took {slowest:?}"
    );
}
