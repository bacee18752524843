//! Issue 10, "a lean hot path": a fixed limit runs as `limit` worker loops (no task per
//! chain) and plain http:// goes over its own HTTP/1.1 code; what they measure must not change.

use std::sync::Arc;
use std::time::Duration;

use loadchain::chain::Row;
use loadchain::runner::RetryPolicy;

use crate::common::{Collect, fixed, runner, spawn_mock};

/// Most calls in flight at one instant, from each call's start and end.
fn peak_overlap(calls: &[loadchain::record::CallRecord]) -> usize {
    let mut events: Vec<(Duration, i32)> = calls
        .iter()
        .flat_map(|c| [(c.start, 1), (c.start + c.latency, -1)])
        .collect();
    // Ends before starts at the same instant: back-to-back calls do not overlap.
    events.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, step) in events {
        now += step;
        peak = peak.max(now);
    }
    peak as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_loops_keep_the_limit_and_run_every_row_once() {
    let mock = spawn_mock(fixed(20)).await;
    let r = runner(&mock, 2, 4, RetryPolicy::default());
    let seen = Arc::new(Collect::default());
    let batch = r.run_batch(Row::synthetic(24).into(), seen.clone()).await;
    assert_eq!((batch.finished, batch.not_run.len()), (24, 0));
    let finals = seen.finals();
    let rows: Vec<u32> = finals.iter().map(|c| c.row).collect();
    assert_eq!(rows, (0..24).collect::<Vec<_>>(), "each row once");
    assert!(finals.iter().all(|c| c.ok() && c.outputs.len() == 2));
    let calls = seen.calls();
    assert_eq!(calls.len(), 48);
    assert_eq!(
        peak_overlap(&calls),
        4,
        "limit 4: four chains at once, never more"
    );
    // 24 chains of 2 × 20 ms, 4 at a time: 6 rounds of 40 ms, not 24.
    assert!(
        batch.wall < Duration::from_millis(24 * 40 / 2),
        "{:?}",
        batch.wall
    );
    // Pooled over the direct path: one connection per worker at most.
    let accepted = mock.stats().connections_accepted;
    assert!((1..=4).contains(&accepted), "{accepted} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_chains_in_flight_finish_and_no_other_start() {
    let mock = spawn_mock(fixed(30)).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let r = loadchain::runner::Runner {
        stop: Some(rx),
        ..runner(&mock, 1, 3, RetryPolicy::default())
    };
    let seen = Arc::new(Collect::default());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(75)).await;
        tx.send(true).unwrap();
        tx // kept alive: a dropped sender means "nobody can stop any more"
    });
    let batch = r.run_batch(Row::synthetic(300).into(), seen.clone()).await;
    let _tx = stopper.await.unwrap();
    assert!(batch.interrupted);
    assert!(batch.finished > 0 && batch.finished < 300, "{batch:?}");
    assert_eq!(
        batch.finished + batch.not_run.len(),
        300,
        "every row accounted for"
    );
    // The rows not run are the tail, in order, after the ones that ran.
    let first = batch.not_run[0];
    assert_eq!(batch.not_run, (first..300).collect::<Vec<_>>());
    assert_eq!(seen.finals().len(), batch.finished);
}
