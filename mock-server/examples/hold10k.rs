//! Load client for `scripts/mock-bench.sh`: holds N concurrent requests (default 10,000)
//! against a running mock server, one TCP connection each, and reports how many were
//! answered, how far latency sits above the configured value, and the server's peak
//! in-flight count from `/stats`.
//!
//! Method: all N connections are opened first (at most 500 connects at a time, so the
//! listen backlog is never the bottleneck), then a barrier releases every request at once.
//! Each request's clock starts just before its bytes are written and stops when the server
//! closes the connection after the last body byte (`Connection: close`). The client is a
//! minimal raw HTTP/1.1 writer so that its own cost stays small against what it measures.
//!
//! Usage: `hold10k --url http://127.0.0.1:PORT [--n 10000] [--latency-ms 100] [--timeout-s 60]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use loadchain_mock::StatsSnapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;

struct Args {
    addr: SocketAddr,
    n: usize,
    latency: Duration,
    timeout: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut url = None;
    let (mut n, mut latency_ms, mut timeout_s) = (10_000usize, 100u64, 60u64);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(value),
            "--n" => n = value.parse().context("--n")?,
            "--latency-ms" => latency_ms = value.parse().context("--latency-ms")?,
            "--timeout-s" => timeout_s = value.parse().context("--timeout-s")?,
            other => bail!("unknown flag {other}"),
        }
    }
    let url = url.context("--url http://127.0.0.1:PORT is required")?;
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("--url {url:?} is not http://IP:PORT"))?;
    Ok(Args {
        addr,
        n,
        latency: Duration::from_millis(latency_ms),
        timeout: Duration::from_secs(timeout_s),
    })
}

/// What one request reports: HTTP status, latency, and when (after the barrier released)
/// its bytes went out.
struct Sample {
    status: u16,
    latency: Duration,
    sent_after: Duration,
}

/// One request on its own connection, or None on any I/O error.
async fn one_request(
    addr: SocketAddr,
    i: usize,
    connects: Arc<Semaphore>,
    start: Arc<Barrier>,
    released: Arc<std::sync::OnceLock<Instant>>,
) -> Option<Sample> {
    let body = format!(r#"{{"model":"bench","messages":[{{"role":"user","content":"row {i}"}}]}}"#);
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let stream = {
        let _permit = connects.acquire().await.ok()?;
        TcpStream::connect(addr).await
    };
    // Everyone waits at the barrier, even after a failed connect, so it always releases.
    start.wait().await;
    let released = *released.get_or_init(Instant::now);
    let mut stream = stream.ok()?;
    stream.set_nodelay(true).ok()?;
    let t0 = Instant::now();
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::with_capacity(1024);
    stream.read_to_end(&mut response).await.ok()?;
    let latency = t0.elapsed();
    let status = std::str::from_utf8(response.get(9..12)?)
        .ok()?
        .parse()
        .ok()?;
    Some(Sample {
        status,
        latency,
        sent_after: t0.saturating_duration_since(released),
    })
}

async fn control(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<StatsSnapshot> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no HTTP body")?;
    serde_json::from_str(body).with_context(|| format!("bad /stats body: {body}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn over(d: Duration, base: Duration) -> String {
    let ms = (d.as_secs_f64() - base.as_secs_f64()) * 1000.0;
    format!("{ms:+.1} ms")
}

async fn run(args: Args) -> anyhow::Result<bool> {
    control(args.addr, "POST", "/stats/reset")
        .await
        .context("cannot reach the mock server")?;
    let connects = Arc::new(Semaphore::new(500));
    let barrier = Arc::new(Barrier::new(args.n));
    let released = Arc::new(std::sync::OnceLock::new());
    let wall = Instant::now();
    let wall_start = wall;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.n {
        tasks.spawn(one_request(
            args.addr,
            i,
            Arc::clone(&connects),
            Arc::clone(&barrier),
            Arc::clone(&released),
        ));
    }
    let mut latencies = Vec::with_capacity(args.n);
    let mut not_ok = 0usize;
    let mut last_sent = Duration::ZERO;
    let collect = async {
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Some(s)) if s.status == 200 => {
                    latencies.push(s.latency);
                    last_sent = last_sent.max(s.sent_after);
                }
                _ => not_ok += 1,
            }
        }
    };
    let timed_out = tokio::time::timeout(args.timeout, collect).await.is_err();
    let wall = wall.elapsed();
    let connect_phase = released
        .get()
        .map_or(Duration::ZERO, |r| r.saturating_duration_since(wall_start));
    let stats = control(args.addr, "GET", "/stats").await?;

    latencies.sort();
    let answered = latencies.len();
    println!("answered (200 OK):     {answered} / {}", args.n);
    if not_ok > 0 || timed_out {
        println!("failed or unanswered:  {}", args.n - answered);
    }
    println!(
        "latency p50 / p99 / max: {:.1} / {:.1} / {:.1} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1000.0,
        percentile(&latencies, 99.0).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "above configured {} ms: p50 {}, p99 {}",
        args.latency.as_millis(),
        over(percentile(&latencies, 50.0), args.latency),
        over(percentile(&latencies, 99.0), args.latency)
    );
    println!(
        "server peak in flight: {} (connections accepted {})",
        stats.peak_in_flight, stats.connections_accepted
    );
    println!(
        "phases: connect {:.0} ms, then all requests written within {:.0} ms, total {:.0} ms",
        connect_phase.as_secs_f64() * 1000.0,
        last_sent.as_secs_f64() * 1000.0,
        wall.as_secs_f64() * 1000.0
    );
    Ok(answered == args.n && stats.peak_in_flight as usize >= args.n)
}

fn main() -> std::process::ExitCode {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?
            .block_on(run(args))
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
