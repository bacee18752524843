//! Scale and overhead figures for `loadchain sweep` (run by scripts/sweep-bench.sh):
//! efficiency at large limits against a fixed-latency mock, the harness's own overhead on
//! call latency, and the process's peak RSS. Loopback only; every run is bounded in size.
//!
//! Efficiency here is ideal wall / measured wall, where ideal = ceil(n / limit) × steps ×
//! latency: the same figure as speedup / limit against a perfect sequential run. A real
//! sequential baseline at these sizes would take up to 17 minutes, and is itself slower than
//! ideal, so this is the stricter measure.

use std::time::Duration;

use loadchain::chain::Chain;
use loadchain::config::embedded_mock_defaults;
use loadchain::endpoint::ClientOptions;
use loadchain::endpoint::Endpoint;
use loadchain::record::Pooling;
use loadchain::runner::{RetryPolicy, Workload};
use loadchain::sweep::{self, Quiet, SweepConfig};
use loadchain_mock::Latency;

fn config(latency_ms: u64, n: usize, limit: usize, http2: bool, warmup: bool) -> SweepConfig {
    let mock = loadchain_mock::MockConfig {
        latency: Latency::Fixed(Duration::from_millis(latency_ms)),
        failure_rate: 0.0,
        conn_cost: Duration::ZERO,
        ..embedded_mock_defaults()
    };
    SweepConfig {
        sizes: vec![n],
        limits: vec![limit],
        auto_ceiling: None,
        pooling: vec![Pooling::On],
        workload: Workload {
            chain: Chain::default_steps(1).expect("one step"),
            endpoint: Endpoint::Embedded(mock),
            model: "bench".into(),
            stream: false,
            api: loadchain::endpoint::ApiFormat::OpenAi,
            client: ClientOptions {
                timeout: Duration::from_secs(60),
                http2_prior_knowledge: http2,
                ..ClientOptions::default()
            },
            retry: RetryPolicy::default(),
            rpm: None,
            tpm: None,
            price: None,
            slo: None,
        },
        warmup,
        command: "sweep_bench".into(),
        repeat: 1,
        rates: None,
        soak: None,
        segment: None,
    }
}

/// Peak resident set size of this process (client and in-process mock), Linux only.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn measure(latency_ms: u64, n: usize, limit: usize, http2: bool, warmup: bool) {
    let out = sweep::run(&config(latency_ms, n, limit, http2, warmup), &Quiet, None)
        .await
        .expect("sweep runs");
    let run = &out.report.runs[0];
    let ideal_ms = n.div_ceil(limit) as f64 * latency_ms as f64;
    let overhead_p50 = run.call_latency.p50_us as f64 / 1000.0 - latency_ms as f64;
    let overhead_p99 = run.call_latency.p99_us as f64 / 1000.0 - latency_ms as f64;
    println!(
        "{} {} fixed {latency_ms} ms, n={n}, limit {limit}: wall {:.0} ms (ideal {ideal_ms:.0} ms), \
         efficiency {:.3}, ok {}/{n}, call p50 {:+.3} ms / p99 {:+.3} ms over configured, \
         peak RSS {:.1} MB",
        if http2 { "HTTP/2  " } else { "HTTP/1.1" },
        if warmup { "warm" } else { "cold" },
        run.wall_ms,
        ideal_ms / run.wall_ms,
        run.chains_ok,
        overhead_p50,
        overhead_p99,
        peak_rss_mb().unwrap_or(f64::NAN),
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // `sweep_bench LATENCY_MS N LIMIT [h2] [warm]` measures one point (for profiling).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() >= 3 {
        let num = |i: usize| -> usize { args[i].parse().expect("numbers: LATENCY_MS N LIMIT") };
        let http2 = args.iter().any(|a| a == "h2");
        let warm = args.iter().any(|a| a == "warm");
        runtime.block_on(measure(num(0) as u64, num(1), num(2), http2, warm));
        return;
    }
    runtime.block_on(async {
        println!("harness overhead (target: p50 under 1 ms over configured):");
        measure(50, 1000, 10, false, false).await;
        println!("efficiency (targets: >= 0.95, then >= 0.90 with RSS under 150 MB):");
        println!("  cold: each run opens its connections inside the timed window (the default)");
        measure(50, 1000, 100, false, false).await;
        measure(100, 10_000, 1000, false, false).await;
        println!("  warm: --warmup opens min(limit, n) connections before timing");
        measure(50, 1000, 100, false, true).await;
        measure(100, 10_000, 1000, false, true).await;
        println!("  HTTP/2 (h2c), cold:");
        measure(50, 1000, 100, true, false).await;
        measure(100, 10_000, 1000, true, false).await;
    });
}
