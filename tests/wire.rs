//! Issue 10: the direct path speaks HTTP/1.1 itself (src/endpoint/h1.rs). Against a raw TCP
//! server scripted byte by byte: what goes on the wire, how responses are delimited, and
//! when a connection is reused, retried or retired.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use loadchain::endpoint::{ClientOptions, HttpClient, embedded_target};
use loadchain::record::Pooling;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const BODY: &str = r#"{"choices":[{"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;

/// What the scripted server answers on a connection's `n`-th request (from 0), and whether
/// it then closes that connection.
type Script = fn(n: usize) -> (Vec<Vec<u8>>, bool);

/// A server on 127.0.0.1 that reads whole requests (head and content-length body) and
/// answers each with the script's pieces, written one by one with a pause between them.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<Mutex<usize>>,
}

impl Scripted {
    async fn start(script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (seen, opened) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            // Bounded: a test makes a handful of connections.
            for _ in 0..64 {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                *opened.lock().unwrap() += 1;
                tokio::spawn(serve(socket, script, seen.clone()));
            }
        });
        Scripted {
            url,
            requests,
            connections,
        }
    }

    fn requests(&self) -> Vec<String> {
        let seen = self.requests.lock().unwrap();
        seen.iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

async fn serve(mut socket: TcpStream, script: Script, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut buf = Vec::new();
    for n in 0..16 {
        let Some(request) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        seen.lock().unwrap().push(request);
        let (pieces, close) = script(n);
        for piece in pieces {
            if socket.write_all(&piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if close {
            return;
        }
    }
}

/// One whole request from the socket (leftover bytes stay in `buf`); None at EOF.
pub(crate) async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            let total = end + 4 + length;
            if buf.len() >= total {
                return Some(buf.drain(..total).collect());
            }
        }
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub(crate) fn ok_with_length() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

async fn call(client: &HttpClient, server: &Scripted) -> loadchain::endpoint::CallOutcome {
    let target = embedded_target(&server.url, "m");
    let body = Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    client.call(&target, body).await
}

/// One call that must succeed with the scripted answer's output.
async fn answered(client: &HttpClient, server: &Scripted) -> loadchain::endpoint::CallOutcome {
    let out = call(client, server).await;
    assert!(out.error.is_none(), "{}", out.message);
    assert_eq!(out.output.as_deref(), Some("hi there"));
    out
}

fn pooled() -> HttpClient {
    HttpClient::new(Pooling::On, &ClientOptions::default()).unwrap()
}

#[tokio::test]
async fn the_request_goes_out_as_reqwest_would_send_it() {
    let server = Scripted::start(|_| (vec![ok_with_length()], false)).await;
    answered(&pooled(), &server).await;
    let requests = server.requests();
    let request = requests[0].as_str();
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("POST /v1/chat/completions HTTP/1.1"));
    let mut headers: Vec<&str> = lines.collect();
    headers.sort_unstable();
    let host = server.url.trim_start_matches("http://");
    let expected = [
        "accept: */*".to_string(),
        format!("content-length: {}", body.len()),
        "content-type: application/json".to_string(),
        format!("host: {host}"),
    ];
    for line in &expected {
        assert!(headers.contains(&line.as_str()), "{line} in {headers:?}");
    }
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("user-agent: loadchain/"))
    );
    assert!(body.contains(r#""content":"hi""#));
}

#[tokio::test]
async fn chunked_answers_split_anywhere_after_an_interim_100_are_read_whole() {
    let server = Scripted::start(|_| {
        let mut wire =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec();
        let (a, b) = BODY.split_at(40);
        wire.extend_from_slice(
            format!(
                "{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .as_bytes(),
        );
        // Seven-byte pieces: heads, sizes and data all cut mid-way.
        (wire.chunks(7).map(<[u8]>::to_vec).collect(), false)
    })
    .await;
    let client = pooled();
    for _ in 0..3 {
        let out = answered(&client, &server).await;
        assert_eq!(out.bytes, BODY.len() as u64);
    }
    assert_eq!(
        server.connections(),
        1,
        "a chunked answer read to its end is reused"
    );
}

#[tokio::test]
async fn a_body_delimited_by_close_is_read_and_its_connection_retired() {
    let server = Scripted::start(|_| {
        let wire = format!("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{BODY}");
        (vec![wire.into_bytes()], true)
    })
    .await;
    let client = pooled();
    for _ in 0..2 {
        answered(&client, &server).await;
    }
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn connection_close_retires_the_connection() {
    let server = Scripted::start(|_| {
        let wire = format!(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
            BODY.len()
        );
        (vec![wire.into_bytes()], false)
    })
    .await;
    let client = pooled();
    for _ in 0..3 {
        answered(&client, &server).await;
    }
    assert_eq!(server.connections(), 3, "connection: close is honoured");
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_replaced_without_an_error() {
    // Every connection serves one request, then the server closes it while it sits idle.
    let server = Scripted::start(|_| (vec![ok_with_length()], true)).await;
    let client = pooled();
    for _ in 0..3 {
        answered(&client, &server).await;
        // Time for the FIN to arrive, as with a server's keep-alive timeout.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connections(), 3);
    assert_eq!(server.requests().len(), 3, "no request was sent twice");
}

#[tokio::test]
async fn a_pooled_connection_carries_every_call_and_an_unpooled_one_carries_one() {
    let server = Scripted::start(|_| (vec![ok_with_length()], false)).await;
    let client = pooled();
    for _ in 0..5 {
        answered(&client, &server).await;
    }
    assert_eq!(server.connections(), 1);
    let unpooled = HttpClient::new(Pooling::Off, &ClientOptions::default()).unwrap();
    for _ in 0..3 {
        answered(&unpooled, &server).await;
    }
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn rate_limit_headers_and_retry_after_are_read_from_the_head() {
    let server = Scripted::start(|_| {
        let body = r#"{"error":{"message":"slow down"}}"#;
        let wire = format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nX-RateLimit-Remaining-Requests: 0\r\nx-ratelimit-limit-requests: 60\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        (vec![wire.into_bytes()], false)
    })
    .await;
    let out = call(&pooled(), &server).await;
    assert_eq!(out.status, Some(429));
    assert_eq!(out.retry_after, Some(Duration::from_secs(7)));
    assert!(out.quota.is_some(), "the quota headers were read");
    assert!(out.message.contains("slow down"), "{}", out.message);
}

#[tokio::test]
async fn a_reused_connection_closed_unanswered_is_resent_once_on_a_fresh_one() {
    // The second request on a connection is read, then the connection closes unanswered: the
    // server's keep-alive timer fired as the request arrived (RFC 9112 §9.3.1).
    let server = Scripted::start(|n| match n {
        0 => (vec![ok_with_length()], false),
        _ => (vec![], true),
    })
    .await;
    let client = pooled();
    answered(&client, &server).await;
    answered(&client, &server).await;
    assert_eq!(client.stale_retries(), 1, "the resend is counted");
    assert_eq!((server.requests().len(), server.connections()), (3, 2));
}

#[tokio::test]
async fn with_no_stale_retry_a_reused_connection_closed_unanswered_fails_and_says_why() {
    let server = Scripted::start(|n| match n {
        0 => (vec![ok_with_length()], false),
        _ => (vec![], true),
    })
    .await;
    let opts = ClientOptions {
        stale_retry: false,
        ..ClientOptions::default()
    };
    let client = HttpClient::new(Pooling::On, &opts).unwrap();
    answered(&client, &server).await;
    let out = call(&client, &server).await;
    assert_eq!(
        out.error.map(|e| e.as_str()),
        Some("protocol"),
        "{}",
        out.message
    );
    assert!(
        out.message.contains("closed before message completed")
            && out.message.contains("reused keep-alive connection")
            && out.message.contains("--no-stale-retry"),
        "{}",
        out.message
    );
    assert_eq!(client.stale_retries(), 0);
    assert_eq!(
        (server.requests().len(), server.connections()),
        (2, 1),
        "a request written is not sent twice"
    );
}

#[tokio::test]
async fn an_endless_chunk_extension_fails_as_body_at_once() {
    let server = Scripted::start(|_| {
        let mut wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=".to_vec();
        // 1 MiB of extension, never ending the size line.
        wire.extend(std::iter::repeat_n(b'a', 1 << 20));
        (vec![wire], false)
    })
    .await;
    let started = std::time::Instant::now();
    let out = call(&pooled(), &server).await;
    assert_eq!(
        out.error.map(|e| e.as_str()),
        Some("body"),
        "{}",
        out.message
    );
    assert!(out.message.contains("over 64 KiB"), "{}", out.message);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not left to the timeout"
    );
}

#[tokio::test]
async fn transfer_encoding_beats_content_length_in_either_order_and_retires_the_connection() {
    /// A content-length that would cut the body short, before or after the coding.
    fn both(te_first: bool) -> (Vec<Vec<u8>>, bool) {
        let (cl, te) = ("content-length: 5\r\n", "transfer-encoding: chunked\r\n");
        let (a, b) = if te_first { (te, cl) } else { (cl, te) };
        let wire = format!(
            "HTTP/1.1 200 OK\r\n{a}{b}\r\n{:x}\r\n{BODY}\r\n0\r\n\r\n",
            BODY.len()
        );
        (vec![wire.into_bytes()], false)
    }
    let client = pooled();
    for server in [
        Scripted::start(|_| both(false)).await,
        Scripted::start(|_| both(true)).await,
    ] {
        for _ in 0..2 {
            let out = answered(&client, &server).await;
            assert_eq!(out.bytes, BODY.len() as u64, "the chunked body, whole");
        }
        assert_eq!(
            server.connections(),
            2,
            "a connection that carried both headers is not reused"
        );
    }
    assert_eq!(client.stale_retries(), 0);
}

#[tokio::test]
async fn bytes_past_the_end_of_an_answer_retire_its_connection() {
    let server = Scripted::start(|_| {
        let mut wire = ok_with_length();
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // a stray start of another answer
        (vec![wire], false)
    })
    .await;
    let client = pooled();
    for _ in 0..2 {
        answered(&client, &server).await;
    }
    assert_eq!(
        server.connections(),
        2,
        "a connection out of step is not reused"
    );
}
