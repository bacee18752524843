//! The memory a chain in flight costs: every chain is one task whose future lives as long as
//! its calls, so 10,000 chains in flight hold 10,000 copies of it.

use std::sync::Arc;

use tokio::time::Instant;

use super::*;
use crate::chain::{Chain, Row};
use crate::endpoint::{ClientOptions, HttpClient, embedded_target};
use crate::record::Pooling;
use crate::runner::{Observer, RetryPolicy};

struct Quiet;
impl Observer for Quiet {}

fn runner() -> Runner {
    Runner {
        client: HttpClient::new(Pooling::On, &ClientOptions::default()).unwrap(),
        // Never polled: no server needs to listen.
        target: Arc::new(embedded_target("http://127.0.0.1:9", "m")),
        chain: Arc::new(Chain::default_steps(2).unwrap()),
        limiter: None,
        limit: 1,
        retry: RetryPolicy::default(),
        stop: None,
        adaptive: None,
    }
}

/// The `--exec` call's future (≈13 KB) once sized every HTTP chain too: 14 KB a task, 140 MB
/// for 10,000 chains in flight. Boxed, a chain's future is the HTTP call's plus a little.
#[tokio::test]
async fn a_chain_in_flight_costs_a_few_kilobytes() {
    let runner = runner();
    let row = Row::synthetic_at(0);
    let chain = runner.run_chain(&row, 0, 0, Instant::now(), &Quiet);
    let bytes = std::mem::size_of_val(&chain);
    eprintln!("run_chain future: {bytes} bytes");
    assert!(bytes <= 6 * 1024, "a chain's future takes {bytes} bytes");
}
