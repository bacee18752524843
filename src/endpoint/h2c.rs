//! Whether a protocol failure under `--http2` (prior knowledge, no negotiation) means the
//! server does not speak HTTP/2 at all. reqwest's errors do not say: an HTTP/1.1 server that
//! answers the preface with `400` reads as a broken pipe, a canceled request or a frame size
//! error, and so does a real HTTP/2 server that fails. So after the first such failure one
//! probe asks the server directly: the client preface and an empty SETTINGS frame, to which
//! every HTTP/2 server answers with its own SETTINGS frame first (RFC 9113 §3.4).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Target;

/// The client connection preface and an empty SETTINGS frame (length 0, type 4, no flags,
/// stream 0).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// The frame type of SETTINGS.
const SETTINGS: u8 = 0x04;

/// `message` with what it means under `--http2`: the server does not speak HTTP/2 (it did
/// not answer the preface), it does (the message stands alone), or, over TLS where no probe
/// is made, a hint to try without.
pub(super) async fn explain(target: &Target, timeout: Duration, message: String) -> String {
    let verdict = match target.speaks_h2c.get() {
        Some(known) => Some(*known),
        None => {
            let probed = probe(&target.url, timeout).await;
            if let Some(known) = probed {
                let _ = target.speaks_h2c.set(known);
            }
            probed
        }
    };
    match verdict {
        Some(true) => message,
        Some(false) => format!(
            "the server does not speak HTTP/2 without negotiation (it did not answer the HTTP/2 preface); drop --http2 ({message})"
        ),
        None => {
            format!("{message} (under --http2: if the server does not speak HTTP/2, drop --http2)")
        }
    }
}

/// Whether the plain-http server at `url` answers the HTTP/2 preface with a SETTINGS frame;
/// None over TLS, or when it could not be reached in `timeout`.
async fn probe(url: &reqwest::Url, timeout: Duration) -> Option<bool> {
    if url.scheme() != "http" {
        return None;
    }
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default()?;
    let ask = async {
        let mut io = TcpStream::connect((host, port)).await.ok()?;
        if io.write_all(PREFACE).await.is_err() {
            // Closed on the preface: no HTTP/2 server does that.
            return Some(false);
        }
        let mut head = [0u8; 9];
        let mut got = 0;
        while got < head.len() {
            match io.read(&mut head[got..]).await {
                Ok(0) | Err(_) => return Some(false),
                Ok(n) => got += n,
            }
        }
        // A frame header: 24-bit length, type, flags, 31-bit stream id (0 for SETTINGS).
        Some(head[3] == SETTINGS && head[5..9] == [0, 0, 0, 0])
    };
    tokio::time::timeout(timeout, ask).await.ok().flatten()
}
