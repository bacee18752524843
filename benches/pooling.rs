//! Per-call cost of a pooled against an unpooled client.
//!
//! Each benchmark makes one call at a time with loadchain's own client ([`HttpClient`], the
//! one `run` and `sweep` use) to the in-process mock at zero latency on loopback, so all
//! that is left is client, HTTP and connection overhead:
//!
//! - `call/http1/{pooled,unpooled}/conn_cost=…`: HTTP/1.1, with the mock's new-connection
//!   cost at 0 and at the embedded default (1.5 ms, standing in for TCP + TLS set-up).
//! - `call/http2/{pooled,unpooled}/conn_cost=…`: the same over HTTP/2 (h2c, prior knowledge).
//!
//! How to read it: "time" is the mean wall time of one whole call (build the request, send,
//! read and decode the body). Unpooled − pooled at `conn_cost=0ms` is what a fresh loopback
//! connection costs; at `conn_cost=1.5ms` it grows by the 1.5 ms each new connection pays,
//! which is what pooling saves per call (against a real API, 100–200 ms of TLS set-up). The
//! pooled figures are tens of µs and swing between runs with where tokio schedules the
//! client and the mock on a small machine; compare within one run.
//!
//! Before measuring, each benchmark checks that calls succeed and that the pooled client
//! reuses its connection (hyper may open a spare or two, never one per call) while the
//! unpooled one opens one per call; every measured call must succeed too. After measuring,
//! it prints the calls and connections the mock saw.
//!
//! Run: `cargo bench --bench pooling` (about a minute). Report numbers with the machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use loadchain::chain::{Chain, Row};
use loadchain::config::embedded_mock_defaults;
use loadchain::endpoint::embedded_target;
use loadchain::endpoint::{ClientOptions, HttpClient, Target};
use loadchain::record::Pooling;
use loadchain_mock::{Latency, MockConfig, MockServer};
use tokio::runtime::Runtime;

/// Calls made before measuring to check success and connection reuse.
const CHECK_CALLS: u64 = 100;

/// Connections a pooled client may open for any number of sequential calls.
const POOLED_MAX_CONNECTIONS: u64 = 4;

/// Unpooled calls leave a socket in TIME_WAIT each and Linux has ~28k ephemeral ports, so
/// a benchmark that opened more than this was given too much measurement time. (Running out
/// fails loudly: the calls get connect errors and [`call`] panics.)
const PORT_WARNING: u64 = 20_000;

/// One mock and the request sent to it.
struct Mock {
    server: MockServer,
    target: Target,
    body: Vec<u8>,
}

impl Mock {
    fn start(runtime: &Runtime, conn_cost: Duration) -> Mock {
        let server = runtime
            .block_on(MockServer::start(MockConfig {
                latency: Latency::Fixed(Duration::ZERO),
                conn_cost,
                ..MockConfig::default()
            }))
            .expect("the mock starts on 127.0.0.1:0");
        let target = embedded_target(&server.url(), "bench");
        let chain = Chain::default_steps(1).expect("one default step");
        let row = &Row::synthetic(1)[0];
        let body = target.body(&chain.steps[0], row, None);
        Mock {
            server,
            target,
            body,
        }
    }

    /// Connections accepted and requests served so far.
    fn counters(&self) -> (u64, u64) {
        let stats = self.server.stats();
        (stats.connections_accepted, stats.requests_total)
    }
}

/// One call that must succeed.
async fn call(client: &HttpClient, mock: &Mock) {
    let out = client.call(&mock.target, mock.body.clone().into()).await;
    assert!(
        out.error.is_none(),
        "call failed ({:?}): {}",
        out.error,
        out.message
    );
    black_box(out);
}

/// Makes [`CHECK_CALLS`] calls and fails the bench unless they succeed and the client uses
/// connections as its pooling mode says ([`assert_connections`]); returns the connections
/// the mock accepted for them.
fn check(runtime: &Runtime, client: &HttpClient, mock: &Mock) -> u64 {
    let (conns_before, _) = mock.counters();
    runtime.block_on(async {
        for _ in 0..CHECK_CALLS {
            call(client, mock).await;
        }
    });
    let opened = mock.counters().0 - conns_before;
    assert_connections(client.pooling(), CHECK_CALLS, opened, "before measuring");
    opened
}

/// Unpooled: exactly one connection per call. Pooled: a handful for any number of calls.
/// hyper's pool may open a spare connection when a call is sent before the previous one's
/// connection is back in the pool (it is returned asynchronously); the spare then stays
/// in the pool and is reused, so the count stops growing.
fn assert_connections(pooling: Pooling, calls: u64, opened: u64, when: &str) {
    match pooling {
        Pooling::On => assert!(
            opened <= POOLED_MAX_CONNECTIONS,
            "pooled, {when}: {calls} calls opened {opened} connections, \
             expected at most {POOLED_MAX_CONNECTIONS}"
        ),
        Pooling::Off => assert_eq!(
            opened, calls,
            "unpooled, {when}: {calls} calls opened {opened} connections, expected one per call"
        ),
    }
}

fn conn_cost_label(conn_cost: Duration) -> String {
    format!("conn_cost={}ms", conn_cost.as_secs_f64() * 1e3)
}

fn bench_call(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    mock: &Mock,
    pooling: Pooling,
    opts: &ClientOptions,
) {
    let client = HttpClient::new(pooling, opts).expect("the client builds");
    let check_conns = check(runtime, &client, mock);
    let name = match pooling {
        Pooling::On => "pooled",
        Pooling::Off => "unpooled",
    };
    let cost = conn_cost_label(mock.server.config().conn_cost);
    let (conns_before, requests_before) = mock.counters();
    group.bench_function(BenchmarkId::new(name, &cost), |b| {
        b.to_async(runtime).iter(|| call(&client, mock));
    });
    let (conns, requests) = mock.counters();
    let (conns, requests) = (conns - conns_before, requests - requests_before);
    if requests == 0 {
        // Filtered out on the command line.
        return;
    }
    eprintln!(
        "{name}/{cost}: {CHECK_CALLS} checked calls over {check_conns} connections, \
         then {requests} measured calls (warm-up included) over {conns} new connections"
    );
    assert_connections(pooling, requests, conns, "while measuring");
    if conns > PORT_WARNING {
        eprintln!(
            "warning: {conns} connections in one benchmark; each leaves a port in TIME_WAIT \
             and Linux has ~28k ephemeral ports: lower measurement_time"
        );
    }
}

fn bench_protocol(c: &mut Criterion, runtime: &Runtime, name: &str, http2: bool) {
    let opts = ClientOptions {
        http2_prior_knowledge: http2,
        ..ClientOptions::default()
    };
    let mut group = c.benchmark_group(name);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500));
    for conn_cost in [Duration::ZERO, embedded_mock_defaults().conn_cost] {
        // 50 samples need at least 1275 iterations: ~2.6 s of unpooled calls at 2 ms. At
        // zero cost, 2 s keeps unpooled connections near 13k (~200 µs a call).
        group.measurement_time(if conn_cost.is_zero() {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(3)
        });
        let mock = Mock::start(runtime, conn_cost);
        for pooling in [Pooling::On, Pooling::Off] {
            bench_call(&mut group, runtime, &mock, pooling, &opts);
        }
        runtime.block_on(mock.server.shutdown());
    }
    group.finish();
}

fn pooling(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime builds");
    bench_protocol(c, &runtime, "call/http1", false);
    bench_protocol(c, &runtime, "call/http2", true);
}

criterion_group! {
    name = benches;
    // criterion's plotters backend needs system fonts, which CI images and containers often
    // lack (it panics without them); the numbers are in the terminal and target/criterion.
    config = Criterion::default().without_plots();
    targets = pooling
}
criterion_main!(benches);
