//! Issue 26, item 4: request framing a user could forge with `-H`. Framing, connection and
//! Host headers are refused (exit 2) wherever `-H` is accepted; a user's Content-Type or
//! Accept replaces the default instead of going out beside it, on the direct path (plain
//! http) and through reqwest (https), as a capture server that records each request head
//! shows.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use predicates::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::loadchain;

const FORGED: [&str; 8] = [
    "Content-Length: 5",
    "transfer-encoding: chunked",
    "CONNECTION: close",
    "Keep-Alive: timeout=5",
    "Upgrade: h2c",
    "TE: trailers",
    "Trailer: X-Sum",
    "Host: elsewhere.example",
];

/// Nothing listens on port 9 (discard) on loopback: a refusal must come before any call.
const NOWHERE: &str = "http://127.0.0.1:9/v1";

fn refused(cmd: &mut assert_cmd::Command, header: &str) {
    let name = header.split_once(':').unwrap().0;
    cmd.assert().code(2).stderr(
        predicate::str::contains(format!("-H \"{name}\""))
            .and(predicate::str::contains("drop this -H")),
    );
}

#[test]
fn forged_framing_connection_and_host_headers_are_refused_by_sweep() {
    for header in FORGED {
        let mut cmd = loadchain();
        cmd.args(["sweep", "--target", NOWHERE, "--n", "1", "--limits", "1"])
            .args(["--no-report", "-H", header]);
        refused(&mut cmd, header);
    }
    // Without --target too (the embedded mock): the same command line fails everywhere.
    let mut cmd = loadchain();
    cmd.args([
        "sweep",
        "--n",
        "1",
        "--limits",
        "1",
        "--no-report",
        "-H",
        FORGED[1],
    ]);
    refused(&mut cmd, FORGED[1]);
}

#[test]
fn forged_headers_are_refused_by_run_and_run_exec() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    std::fs::write(&rows, "id,topic\nr1,a\n").unwrap();
    let rows = rows.to_str().unwrap();
    for header in [FORGED[0], FORGED[7]] {
        let mut cmd = loadchain();
        cmd.current_dir(dir.path()).args([
            "run",
            "--manifest",
            rows,
            "--target",
            NOWHERE,
            "-H",
            header,
        ]);
        refused(&mut cmd, header);
    }
    let mut cmd = loadchain();
    cmd.current_dir(dir.path()).args([
        "run",
        "--manifest",
        rows,
        "--exec",
        "true",
        "-H",
        FORGED[2],
    ]);
    refused(&mut cmd, FORGED[2]);
    assert!(
        !dir.path().join("reports").exists(),
        "no output folder made"
    );
}

const COMPLETION: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}"#;

/// Request heads a capture server received, lower-cased.
type Heads = Arc<Mutex<Vec<String>>>;

/// A server on 127.0.0.1:0 (TLS with the self-signed fixture when `tls`) that records each
/// request's head and answers a completion, closing after each. Serves until `rt` drops.
fn start_capture(rt: &tokio::runtime::Runtime, tls: bool) -> (SocketAddr, Heads) {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Heads::default();
    let seen = Arc::clone(&heads);
    let acceptor = tls.then(crate::tls::acceptor);
    rt.spawn(async move {
        for _ in 0..32 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (seen, acceptor) = (Arc::clone(&seen), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(tcp).await {
                            answer(tls, &seen).await;
                        }
                    }
                    None => answer(tcp, &seen).await,
                }
            });
        }
    });
    (addr, heads)
}

/// Reads one request head (bounded), records it, answers, closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return;
        }
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    seen.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase());
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{COMPLETION}",
        COMPLETION.len()
    );
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// The values of header `name` in one request head.
fn values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
        .collect()
}

fn one_content_type_and_accept(scheme: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, heads) = start_capture(&rt, scheme == "https");
    let url = format!("{scheme}://127.0.0.1:{}/v1", addr.port());
    loadchain()
        .args([
            "sweep", "--target", &url, "--n", "2", "--limits", "1", "--steps", "1",
        ])
        .args(["--pooling", "on", "--insecure", "--no-report", "-q"])
        .args([
            "-H",
            "Content-Type: text/plain",
            "-H",
            "Accept: application/x-ndjson",
        ])
        .assert()
        .success();
    let heads = heads.lock().unwrap().clone();
    // The preflight and two calls.
    assert!(heads.len() >= 3, "{heads:?}");
    for head in &heads {
        assert_eq!(values(head, "content-type"), ["text/plain"], "{head}");
        assert_eq!(values(head, "accept"), ["application/x-ndjson"], "{head}");
        assert_eq!(values(head, "content-length").len(), 1, "{head}");
    }
}

#[test]
fn a_users_content_type_and_accept_replace_the_defaults_on_the_direct_path() {
    one_content_type_and_accept("http");
}

#[test]
fn a_users_content_type_and_accept_replace_the_defaults_through_reqwest() {
    one_content_type_and_accept("https");
}
