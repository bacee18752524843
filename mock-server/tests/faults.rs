//! Transport faults: `reset_rate` (RST mid-body), `truncate_rate` (clean close mid-body)
//! and `slow_body` (a trickle), seen from a raw socket and from reqwest.

use std::io::ErrorKind;
use std::time::Duration;

use loadchain_mock::{ByteRate, MockConfig, MockServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::common::*;

/// What a raw HTTP/1.1 client read before the connection ended.
struct Raw {
    head: String,
    body: Vec<u8>,
    /// The read error that ended it, or `None` for a clean end of stream (FIN).
    error: Option<ErrorKind>,
}

impl Raw {
    fn content_length(&self) -> usize {
        let line = self
            .head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap_or_else(|| panic!("no content-length in {}", self.head));
        line.trim().parse().unwrap()
    }
}

/// Sends one chat request with `Connection: close` and reads until the socket ends.
async fn raw_chat(server: &MockServer, streamed: bool) -> Raw {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let body = format!(
        r#"{{"model":"m","stream":{streamed},"messages":[{{"role":"user","content":"raw"}}]}}"#
    );
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let error = timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return None,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) => return Some(e.kind()),
            }
        }
    })
    .await
    .expect("the server ends the connection");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the headers arrive before the cut");
    Raw {
        head: String::from_utf8(bytes[..split].to_vec())
            .unwrap()
            .to_lowercase(),
        body: bytes[split + 4..].to_vec(),
        error,
    }
}

#[tokio::test]
async fn a_reset_sends_headers_and_part_of_the_body_then_rst() {
    let server = start(MockConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    let raw = raw_chat(&server, false).await;
    assert!(raw.head.starts_with("http/1.1 200"), "{}", raw.head);
    assert_eq!(raw.error, Some(ErrorKind::ConnectionReset), "RST, not FIN");
    let promised = raw.content_length();
    assert!(
        raw.body.len() < promised,
        "{} of {promised}",
        raw.body.len()
    );

    // A streamed response is reset the same way, before [DONE].
    let raw = raw_chat(&server, true).await;
    assert_eq!(raw.error, Some(ErrorKind::ConnectionReset));
    assert!(!String::from_utf8_lossy(&raw.body).contains("[DONE]"));

    // An HTTP client gets the head, then an error instead of a body.
    let resp = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&chat("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    let stats = server.stats();
    assert_eq!((stats.reset, stats.truncated), (3, 0));
    assert_eq!(stats.requests_by_status.get(&200), Some(&3));
    assert!(eventually(|| server.stats().in_flight == 0).await);
}

#[tokio::test]
async fn a_truncation_closes_cleanly_mid_body_or_before_done() {
    let server = start(MockConfig {
        truncate_rate: 1.0,
        output_tokens: 8,
        ..Default::default()
    })
    .await;
    let raw = raw_chat(&server, false).await;
    assert!(raw.head.starts_with("http/1.1 200"), "{}", raw.head);
    assert_eq!(raw.error, None, "a clean close (FIN), not a reset");
    assert_eq!(raw.body.len(), raw.content_length() / 2, "half the promise");

    let raw = raw_chat(&server, true).await;
    assert_eq!(raw.error, None);
    assert!(
        raw.head.contains("transfer-encoding: chunked"),
        "{}",
        raw.head
    );
    let text = String::from_utf8_lossy(&raw.body);
    // Half of the 8 token chunks, then the connection closes: no final chunk, no [DONE],
    // and no terminating zero-length chunk.
    assert_eq!(text.matches("data: ").count(), 4, "{text}");
    assert!(
        !text.contains("[DONE]") && !text.contains("\"stop\""),
        "{text}"
    );
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");

    let client = client();
    let mut req = chat("x");
    req["stream"] = true.into();
    let mut resp = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut chunks = 0;
    let end = loop {
        match resp.chunk().await {
            Ok(Some(_)) => chunks += 1,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(end.is_err(), "an incomplete chunked body is an error");
    assert!(chunks >= 1);
    assert_eq!(server.stats().truncated, 3);
}

#[tokio::test]
async fn reset_and_truncate_rates_are_seeded_fractions_that_clients_see_as_errors() {
    let config = MockConfig {
        reset_rate: 0.2,
        truncate_rate: 0.2,
        ..Default::default()
    };
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let server = start(config.clone()).await;
        let client = client();
        let mut failed = Vec::new();
        for i in 0..200 {
            let resp = client
                .post(format!("{}/v1/chat/completions", server.url()))
                .json(&chat(&i.to_string()))
                .send()
                .await;
            let ok = match resp {
                Ok(r) => r.bytes().await.is_ok(),
                Err(_) => false,
            };
            failed.push(!ok);
        }
        let stats = server.stats();
        let n_failed = failed.iter().filter(|f| **f).count() as u64;
        assert_eq!(n_failed, stats.reset + stats.truncated);
        // P(cut) = 0.2 + 0.8 * 0.2 = 0.36; Binomial(200, 0.36): mean 72, sd 6.8.
        assert!((45..=100).contains(&n_failed), "{n_failed}");
        assert!(stats.reset >= 20 && stats.truncated >= 15, "{stats:?}");
        outcomes.push(failed);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "the same seed cuts the same requests"
    );
}

#[tokio::test]
async fn over_http2_a_reset_ends_the_stream_not_the_connection() {
    let server = start(MockConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    let client = builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for i in 0..3 {
        let resp = client
            .post(format!("{}/v1/chat/completions", server.url()))
            .json(&chat(&i.to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert!(resp.bytes().await.is_err());
    }
    let stats = server.stats();
    assert_eq!(stats.reset, 3);
    assert_eq!(stats.connections_accepted, 1, "the connection survives");
}

#[tokio::test]
async fn a_slow_body_trickles_at_the_given_rate() {
    let rate: ByteRate = "2kB/s".parse().unwrap();
    let server = start(MockConfig {
        slow_body: Some(rate),
        output_tokens: 100,
        ..Default::default()
    })
    .await;
    let fast = start(MockConfig {
        output_tokens: 100,
        ..Default::default()
    })
    .await;
    let client = client();
    let (_, expected, _) = post_chat(&client, &fast, &chat("slow")).await;

    let t0 = Instant::now();
    let mut resp = client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&chat("slow"))
        .send()
        .await
        .unwrap();
    let head_at = t0.elapsed();
    let len = resp.content_length().unwrap() as usize;
    let mut body = Vec::new();
    let mut pieces = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        pieces += 1;
    }
    let took = t0.elapsed();
    assert_eq!(body.len(), len, "the whole body arrives");
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        content(&value),
        content(&expected),
        "same content, only slower"
    );
    // About 100 bytes every 50 ms: the head at once, the body over len / 2000 seconds.
    assert!(head_at < ms(300), "{head_at:?}");
    let nominal = Duration::from_secs_f64(len as f64 / 2000.0);
    assert!(len > 500, "{len}");
    assert!(took >= nominal.mul_f64(0.9), "{took:?} < {nominal:?}");
    assert!(took < nominal + ms(1500), "{took:?} vs {nominal:?}");
    assert!(pieces >= 3, "{pieces} pieces");
}
