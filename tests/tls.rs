//! TLS certificates are verified unless `--insecure` is given. A small HTTPS server with a
//! self-signed certificate (tests/fixtures/selfsigned.{crt,key}: test-only, CN=localhost,
//! SAN 127.0.0.1) answers every request with a fixed OpenAI-style completion.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use predicates::prelude::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::common::{loadchain, sweep_to};

const COMPLETION: &str = r#"{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello over tls"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A TLS acceptor with the self-signed fixture certificate (for localhost and 127.0.0.1).
pub(crate) fn acceptor() -> TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("selfsigned.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("selfsigned.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Starts the HTTPS server on 127.0.0.1:0 on `rt`; it serves until the runtime drops.
fn start_https(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let acceptor = acceptor();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to serve.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = read_request(&mut tls).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{COMPLETION}",
                    COMPLETION.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// Reads one request: headers, then Content-Length bytes of body (bounded).
async fn read_request<S: AsyncReadExt + Unpin>(s: &mut S) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > 1 << 20 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(());
            }
        }
    }
}

#[test]
fn a_self_signed_certificate_is_rejected_without_insecure() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = start_https(&rt);
    let url = format!("https://127.0.0.1:{}/v1", addr.port());
    sweep_to(&url).assert().code(1).stderr(
        predicate::str::contains("preflight")
            .and(predicate::str::contains("certificate"))
            .and(predicate::str::contains("--insecure skips the check")),
    );
}

#[test]
fn insecure_accepts_a_self_signed_certificate() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = start_https(&rt);
    let url = format!("https://127.0.0.1:{}/v1", addr.port());
    loadchain()
        .args([
            "sweep", "--target", &url, "--n", "2", "--limits", "1", "--steps", "1",
        ])
        .args(["--pooling", "on", "--insecure", "--no-report", "-q"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 chains"));
}
