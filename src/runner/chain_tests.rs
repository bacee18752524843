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
/// for 10,000 chains in flight. Boxed, a chain's future is the HTTP call's plus a little, and
/// the direct path's body reading is boxed too (≈2.5 KB in all).
#[tokio::test]
async fn a_chain_in_flight_costs_a_few_kilobytes() {
    let runner = runner();
    let row = Row::synthetic_at(0);
    let chain = runner.run_chain(&row, 0, 0, Instant::now(), None, &Quiet);
    let bytes = std::mem::size_of_val(&chain);
    eprintln!("run_chain future: {bytes} bytes");
    assert!(bytes <= 3 * 1024, "a chain's future takes {bytes} bytes");
}

/// Keeps each call's (row, pass) and each final record's (row, passes).
#[derive(Default)]
struct Passes {
    calls: std::sync::Mutex<Vec<(u32, u16)>>,
    finals: std::sync::Mutex<Vec<(u32, u16)>>,
}

impl Observer for Passes {
    fn call_done(&self, call: &crate::record::CallRecord) {
        self.calls.lock().unwrap().push((call.row, call.pass));
    }
    fn chain_done(&self, _row: &Row, chain: &crate::record::ChainRecord, is_final: bool) {
        if is_final {
            self.finals.lock().unwrap().push((chain.row, chain.passes));
        }
    }
}

/// A row's pass count is no longer counted per row but follows from the pass it finished in
/// (each pass runs exactly the previous pass's failures): it must still equal the passes its
/// calls were made in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rows_pass_count_is_the_passes_its_calls_ran_in() {
    let mock = loadchain_mock::MockServer::start(loadchain_mock::MockConfig {
        failure_rate: 0.5,
        seed: 7,
        ..loadchain_mock::MockConfig::default()
    })
    .await
    .unwrap();
    let runner = Runner {
        target: Arc::new(embedded_target(&mock.url(), "m")),
        chain: Arc::new(Chain::default_steps(1).unwrap()),
        limit: 8,
        retry: RetryPolicy {
            retry_passes: 3,
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..runner()
    };
    let seen = Arc::new(Passes::default());
    let batch = runner
        .run_batch(
            crate::chain::Rows::Synthetic(60, crate::chain::Numbering::WHOLE),
            seen.clone(),
        )
        .await;
    let calls = seen.calls.lock().unwrap().clone();
    let finals = seen.finals.lock().unwrap().clone();
    assert_eq!(finals.len(), 60, "every row final once");
    let mut most = 0;
    for (row, passes) in finals {
        let ran_in = calls
            .iter()
            .filter(|(r, _)| *r == row)
            .map(|(_, p)| p + 1)
            .max();
        assert_eq!(Some(passes), ran_in, "row {row}");
        most = most.max(passes);
    }
    assert!(most > 1, "at 50 % failures some rows needed a retry pass");
    assert_eq!(batch.passes, most);
}
