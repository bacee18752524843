//! Issue 26, item 10: responses that are not what they seem. A compressed body is named by
//! its Content-Encoding and never stored as an output; `--http2` blames the server's HTTP/2
//! only when it does not answer the preface; one huge SSE line is held in at most about
//! twice its size, and a line over `--max-response-bytes` is not read past the limit.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::harness::{Outcome, Run, run};
use super::server::{Reply, Server, only};
use super::{SECS_15, hostile_case};

/// [`hostile_case`] in the OpenAI format.
fn openai_case(case: &str, reply: Reply) -> Outcome {
    let server = Server::start(vec![(case, only(2, reply))]);
    let dir = tempfile::tempdir().unwrap();
    let mut o = run(dir.path(), Run::openai(server.url(case), &[]));
    o.note(case);
    o.dir = Some(dir);
    o
}

#[test]
fn a_gzip_body_names_its_content_encoding() {
    let o = openai_case("gzip", Reply::Encoded("gzip".into()));
    o.check(0, SECS_15, "decode", 1);
    let msg = o.messages().join(" ");
    assert!(
        msg.contains("gzip-encoded (Content-Encoding: gzip)") && msg.contains("does not decode"),
        "{msg}"
    );
}

#[test]
fn a_raw_call_fails_on_a_compressed_body_instead_of_storing_it() {
    let o = hostile_case("rawgzip", Reply::Encoded("br".into()), &[]);
    o.check(0, SECS_15, "decode", 1);
    let msg = o.messages().join(" ");
    assert!(msg.contains("Content-Encoding: br"), "{msg}");
    // The failed row stored no output: no step of it completed.
    let failed = o.results.iter().find(|l| l["status"] == "failed").unwrap();
    assert_eq!(
        failed["steps"].as_array().map(Vec::len),
        Some(0),
        "{failed}"
    );
}

#[test]
fn a_body_of_the_wrong_shape_says_which_format_it_is_not() {
    let o = openai_case("shape", Reply::Status(200, Vec::new()));
    o.check(0, SECS_15, "decode", 1);
    let msg = o.messages().join(" ");
    assert!(msg.contains("body is not an openai response"), "{msg}");
}

/// A server that speaks HTTP/2 (prior knowledge) and resets every request's stream with
/// INTERNAL_ERROR: a real HTTP/2 failure, not a server without HTTP/2.
fn start_resetting_h2() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Bounded: the preflight's connection and the probe's.
        for conn in listener.incoming().take(8) {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || reset_streams(conn));
        }
    });
    addr
}

fn reset_streams(mut conn: std::net::TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The 24-byte client preface, then the server's SETTINGS (empty) first.
    while buf.len() < 24 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if conn.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).is_err() {
        return;
    }
    let mut at = 24;
    for _ in 0..64 {
        // Whole frames: 24-bit length, type, flags, stream id.
        while buf.len() >= at + 9 {
            let len = usize::from(buf[at]) << 16
                | usize::from(buf[at + 1]) << 8
                | usize::from(buf[at + 2]);
            let (kind, flags) = (buf[at + 3], buf[at + 4]);
            let stream = &buf[at + 5..at + 9];
            if kind == 4 && flags & 1 == 0 {
                // The client's SETTINGS: acknowledged.
                let _ = conn.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
            }
            if kind == 1 {
                // HEADERS: RST_STREAM on that stream, INTERNAL_ERROR (2).
                let mut rst = vec![0, 0, 4, 3, 0];
                rst.extend_from_slice(stream);
                rst.extend_from_slice(&[0, 0, 0, 2]);
                let _ = conn.write_all(&rst);
            }
            at += 9 + len;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn http2_reports_a_real_http2_error_as_itself() {
    let addr = start_resetting_h2();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/v1");
    let o = run(dir.path(), Run::openai(url, &["--http2"]));
    o.note("http2-stream-reset");
    assert!(!o.killed && o.elapsed < SECS_15, "{:?}", o.elapsed);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("preflight"), "{}", o.stderr);
    assert!(!o.stderr.contains("does not speak HTTP/2"), "{}", o.stderr);
    assert!(o.stderr.contains("stream error received"), "{}", o.stderr);
}

const MIB: u64 = 1024;

/// A streamed run whose second call (the first row's) gets `reply`.
fn sse_peak(case: &str, reply: Reply, extra: &[&str]) -> Outcome {
    let server = Server::start(vec![(case, only(2, reply))]);
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--stream", "--timeout", "60s"];
    args.extend_from_slice(extra);
    let mut spec = Run::openai(server.url(case), &args);
    spec.deadline = Duration::from_secs(90);
    let mut o = run(dir.path(), spec);
    o.note(case);
    o.dir = Some(dir);
    o
}

#[test]
#[cfg(target_os = "linux")]
fn one_40_mb_sse_line_is_held_in_under_two_and_a_half_times_its_size() {
    let small = sse_peak("sse-small", Reply::SseLine(1000), &[]);
    small.check(0, Duration::from_secs(60), "body", 0);
    let body = 40_000_000;
    let big = sse_peak(
        "sse-40mb",
        Reply::SseLine(body),
        &["--max-response-bytes", "64MiB"],
    );
    big.check(0, Duration::from_secs(60), "body", 0);
    assert_eq!(big.count("succeeded"), 2);
    // Before issue 26: 205 MB above a 30 MB baseline (body, a JSON tree, the output, two
    // copies for results.jsonl); now the body becomes the output, copied once on its way to
    // the log.
    let bound = small.peak_rss_kb + 5 * body as u64 / 2 / 1024;
    eprintln!(
        "HOSTILE | sse-40mb | peak RSS {} KiB, baseline {} KiB, bound {bound} KiB",
        big.peak_rss_kb, small.peak_rss_kb
    );
    assert!(
        big.peak_rss_kb < bound,
        "peak {} KiB >= {bound} KiB",
        big.peak_rss_kb
    );

    // Over --max-response-bytes, with no length announced: read to the limit, no further.
    let over = sse_peak(
        "sse-over",
        Reply::SseLineUnsized(body),
        &["--max-response-bytes", "4MiB"],
    );
    over.check(0, Duration::from_secs(60), "body", 1);
    let msg = over.messages().join(" ");
    assert!(msg.contains("over --max-response-bytes"), "{msg}");
    let bound = small.peak_rss_kb + 16 * MIB;
    assert!(
        over.peak_rss_kb < bound,
        "peak {} KiB >= {bound} KiB",
        over.peak_rss_kb
    );
}
