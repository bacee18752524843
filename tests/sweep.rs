//! `loadchain sweep` against the mock: speedup, retries, pooling, consistency.

use std::sync::Arc;
use std::time::Duration;

use loadchain::chain::Row;
use loadchain::endpoint::embedded_target;
use loadchain::record::Pooling;
use loadchain::runner::{NoObserver, Observer, RetryPolicy, Runner};
use loadchain::sweep::{self, Quiet};
use loadchain_mock::MockConfig;

use crate::common::{Collect, fixed, runner, spawn_mock, sweep_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_makes_limit_5_about_5x_faster_than_sequential() {
    let mock = spawn_mock(fixed(40)).await;
    let cfg = sweep_config(&mock, 20, &[1, 5], 1);
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    let seq = out.report.run(20, 1, Pooling::On).unwrap();
    let c5 = out.report.run(20, 5, Pooling::On).unwrap();
    assert_eq!(seq.speedup, Some(1.0));
    let speedup = c5.speedup.unwrap();
    // Ideal is 5.0; loopback overhead on a busy 2-core machine (other test binaries run
    // beside this one) costs some, so the bound is generous.
    // Anything well above 1 proves the calls overlapped; the README's benchmarks measure
    // how close to 5 it gets on a quiet machine.
    assert!((1.5..=5.3).contains(&speedup), "speedup {speedup}");
    assert!(c5.efficiency.unwrap() > 0.3);
    // Sequential wall time cannot beat n × latency.
    assert!(seq.wall_ms >= 20.0 * 40.0, "{}", seq.wall_ms);
    assert_eq!(seq.chains_ok, 20);
    assert_eq!(seq.call_latency.count, 20);
    assert!(seq.call_latency.p50_us >= 40_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rows_are_retried_and_every_row_is_accounted_for() {
    let mock = spawn_mock(MockConfig {
        failure_rate: 0.3,
        failure_statuses: vec![500],
        seed: 7,
        ..fixed(1)
    })
    .await;
    let mut cfg = sweep_config(&mock, 60, &[1, 10], 2);
    cfg.workload.retry.retry_passes = 6;
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    for run in &out.report.runs {
        assert_eq!(run.chains_ok + run.chains_failed, 60);
        assert!(
            run.chains_retried > 0,
            "30% failures must leave rows to retry"
        );
        assert!(run.errors.server_error > 0);
        assert_eq!(run.calls_failed, run.errors.server_error);
        // Six passes at 30% per call leave (1 - 0.49)^7 ≈ 1% per row failing.
        assert!(
            run.chains_failed <= 5,
            "{} rows left failed",
            run.chains_failed
        );
        assert!(run.retry_wall_ms > 0.0);
    }
    // Per-step latency covers exactly the successful calls, step by step.
    for run in &out.report.runs {
        let names: Vec<&str> = run.step_latency.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(names, ["research", "write"]);
        let per_step: u64 = run.step_latency.iter().map(|s| s.latency.count).sum();
        assert_eq!(per_step, run.call_latency.count);
    }
    // Exact call accounting against the server's own counter (+1 for the preflight).
    let sent: u64 = out.report.runs.iter().map(|r| r.calls).sum();
    assert_eq!(mock.stats().requests_total, sent + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooling_on_reuses_connections_and_off_opens_one_per_call() {
    let mock = spawn_mock(fixed(5)).await;
    let mut cfg = sweep_config(&mock, 20, &[1, 5], 2);
    cfg.pooling = vec![Pooling::On, Pooling::Off];
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    for run in &out.report.runs {
        let conns = run.connections.expect("mock counts connections");
        match run.key.pooling {
            // A pool never needs more connections than calls in flight.
            Pooling::On => assert!(conns <= run.key.limit as u64, "{conns} > {}", run.key.limit),
            Pooling::Off => assert_eq!(conns, run.calls, "one connection per call"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_identical_across_limits_and_pooling() {
    let mock = spawn_mock(MockConfig {
        latency: loadchain_mock::Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(20),
        },
        ..MockConfig::default()
    })
    .await;
    let mut cfg = sweep_config(&mock, 30, &[1, 10], 3);
    cfg.pooling = vec![Pooling::On, Pooling::Off];
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    assert_eq!(out.report.runs.len(), 4);
    assert!(out.report.runs.iter().all(|r| r.outputs_differ == 0));

    // And directly: the final output of every row, limit 1 vs limit 10.
    let outputs = |limit: usize| {
        let runner = runner(&mock, 3, limit, RetryPolicy::default());
        async move {
            let seen = Arc::new(Collect::default());
            runner
                .run_batch(Row::synthetic(30).into(), seen.clone())
                .await;
            seen.finals()
                .iter()
                .map(|c| c.final_output().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    let (a, b) = (outputs(1).await, outputs(10).await);
    assert!(a.iter().all(Option::is_some));
    assert_eq!(a, b);
    // Different rows get different outputs, so the comparison means something.
    assert_ne!(a[0], a[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_caps_calls_in_flight_at_the_limit() {
    let mock = spawn_mock(fixed(30)).await;
    let cfg = sweep_config(&mock, 24, &[3], 1);
    mock.reset_stats();
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    assert_eq!(mock.stats().peak_in_flight, 3);
    let peak = out.report.runs[0]
        .timeline
        .iter()
        .map(|p| p[1])
        .fold(0.0, f64::max);
    assert_eq!(peak, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_counted_and_do_not_stop_other_chains() {
    let mock = spawn_mock(MockConfig {
        hang_rate: 0.2,
        seed: 3,
        ..fixed(1)
    })
    .await;
    let mut cfg = sweep_config(&mock, 30, &[10], 1);
    cfg.workload.client.timeout = Duration::from_millis(300);
    cfg.workload.retry.retry_passes = 0;
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    let run = &out.report.runs[0];
    assert!(run.errors.timeout > 0);
    assert_eq!(run.chains_failed as u64, run.errors.timeout);
    assert_eq!(run.chains_ok + run.chains_failed, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_opens_the_pool_before_timing_and_is_not_measured() {
    let mock = spawn_mock(fixed(5)).await;
    let mut cfg = sweep_config(&mock, 12, &[4], 1);
    cfg.warmup = true;
    let out = sweep::run(&cfg, &Quiet, None).await.unwrap();
    let run = &out.report.runs[0];
    // 4 warm-up calls opened the pool; the timed batch reused it.
    assert!(run.connections.unwrap() <= 4, "{:?}", run.connections);
    assert_eq!(
        run.calls, 12,
        "warm-up calls are not counted as the batch's calls"
    );
    assert_eq!(mock.stats().requests_total, 1 + 4 + 12);
    assert!(out.report.settings.warmup);
    assert!(out.report.settings.wall_time_excludes.contains("warm-up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_measures_time_to_first_token_and_keeps_outputs() {
    let mock = spawn_mock(MockConfig {
        token_time: Duration::from_millis(4),
        output_tokens: 10,
        ..fixed(30)
    })
    .await;
    let mut cfg = sweep_config(&mock, 6, &[1, 3], 2);
    cfg.workload.stream = true;
    let streamed = sweep::run(&cfg, &Quiet, None).await.unwrap();
    let run = &streamed.report.runs[0];
    let ttft = run.ttft.clone().expect("streaming runs summarise TTFT");
    assert_eq!(ttft.count, 12);
    assert!(run.output_tokens_per_s.unwrap() > 0.0);

    // The streamed chunks rebuild exactly what the non-streamed answer says.
    cfg.workload.stream = false;
    let plain = sweep::run(&cfg, &Quiet, None).await.unwrap();
    assert!(plain.report.runs.iter().all(|r| r.ttft.is_none()));
    let runner = |stream: bool| Runner {
        target: Arc::new(embedded_target(&mock.url(), "m").streaming(stream)),
        ..runner(&mock, 2, 1, RetryPolicy::default())
    };
    let rows: Arc<[Row]> = Row::synthetic(4).into();
    let (a, b) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    runner(true)
        .run_batch(Arc::clone(&rows).into(), a.clone())
        .await;
    runner(false).run_batch(rows.into(), b.clone()).await;
    for c in a.calls() {
        let ttft = c.ttft.expect("every streamed call has a TTFT");
        // First token: base latency + one token; the whole call: + ten tokens. Only the
        // server's lower bounds: a loaded machine can deliver delayed chunks together.
        assert!(ttft >= Duration::from_millis(34), "{ttft:?}");
        assert!(ttft < c.latency, "{ttft:?} vs {:?}", c.latency);
        assert!(c.latency >= Duration::from_millis(70), "{:?}", c.latency);
        assert_eq!(c.tokens, Some(10));
    }
    let outs = |r: &Collect| {
        r.finals()
            .iter()
            .map(|c| c.outputs.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(outs(&a), outs(&b));
    assert!(!outs(&a)[0][0].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_signal_lets_chains_in_flight_finish_and_starts_no_new_ones() {
    let mock = spawn_mock(fixed(40)).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = Runner {
        stop: Some(stop_rx),
        ..runner(&mock, 1, 2, RetryPolicy::default())
    };
    let seen = Arc::new(Collect::default());
    let observer = seen.clone();
    let batch =
        tokio::spawn(async move { runner.run_batch(Row::synthetic(40).into(), observer).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop_tx.send(true).unwrap();
    let batch = batch.await.unwrap();
    assert!(batch.interrupted);
    assert!(!batch.not_run.is_empty());
    let finals = seen.finals();
    assert_eq!(batch.finished, finals.len());
    assert_eq!(finals.len() + batch.not_run.len(), 40);
    // Chains already in flight were not abandoned: each ran to completion.
    assert!(finals.iter().all(|c| c.ok()));
    assert_eq!(mock.stats().requests_total as usize, finals.len());
}

/// Presses "Ctrl-C" once the second run has finished its first chain.
struct StopInSecondRun {
    stop: tokio::sync::watch::Sender<bool>,
    started: std::sync::atomic::AtomicUsize,
}

struct StopOnFirstChain(tokio::sync::watch::Sender<bool>);

impl loadchain::runner::Observer for StopOnFirstChain {
    fn chain_done(&self, _: &Row, _: &loadchain::record::ChainRecord, _: bool) {
        self.0.send_replace(true);
    }
}

impl loadchain::sweep::SweepUi for StopInSecondRun {
    fn run_started(&self, _: usize, _: usize, _: Pooling) -> Arc<dyn loadchain::runner::Observer> {
        let n = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 1 {
            Arc::new(StopOnFirstChain(self.stop.clone()))
        } else {
            Arc::new(NoObserver)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sweep_reports_completed_runs_and_the_cut_one_as_partial() {
    let mock = spawn_mock(fixed(10)).await;
    let cfg = sweep_config(&mock, 10, &[1, 2, 5], 1);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let ui = StopInSecondRun {
        stop,
        started: Default::default(),
    };
    let out = sweep::run(&cfg, &ui, Some(stop_rx)).await.unwrap();
    assert!(out.report.interrupted);
    // The first run completed; the second was cut short and kept as partial; the third
    // never ran.
    assert_eq!(out.report.runs.len(), 2);
    assert_eq!(out.report.runs[0].key.limit, 1);
    assert_eq!(out.report.runs[0].chains_ok, 10);
    assert!(!out.report.runs[0].partial);
    let cut = &out.report.runs[1];
    assert!(cut.partial && cut.speedup.is_none(), "{cut:?}");
    assert_eq!(cut.chains_ok + cut.chains_failed + cut.chains_not_run, 10);
}

/// Stops the batch as the first retry pass begins and counts final reports per row.
struct StopBeforeRetry {
    stop: tokio::sync::watch::Sender<bool>,
    finals: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl loadchain::runner::Observer for StopBeforeRetry {
    fn pass_started(&self, pass: u16, _rows: usize) {
        if pass == 1 {
            self.stop.send_replace(true);
        }
    }

    fn chain_done(&self, row: &Row, _: &loadchain::record::ChainRecord, is_final: bool) {
        if is_final {
            *self
                .finals
                .lock()
                .unwrap()
                .entry(row.id.clone())
                .or_default() += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_between_passes_reports_every_failed_row_as_final_exactly_once() {
    let mock = spawn_mock(MockConfig {
        failure_rate: 0.5,
        failure_statuses: vec![500],
        ..fixed(1)
    })
    .await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let observer = Arc::new(StopBeforeRetry {
        stop,
        finals: Default::default(),
    });
    let retry = RetryPolicy {
        retry_passes: 3,
        ..RetryPolicy::default()
    };
    let runner = Runner {
        stop: Some(stop_rx),
        ..runner(&mock, 1, 4, retry)
    };
    let seen = Arc::new(Collect::default());
    let tee = loadchain::runner::Tee(vec![observer.clone(), seen.clone()]);
    let batch = runner
        .run_batch(Row::synthetic(30).into(), Arc::new(tee))
        .await;
    assert!(batch.interrupted);
    // Every row ran once; none is "not run"; the failed ones stay failed, reported once.
    assert_eq!(batch.finished, 30);
    assert!(batch.not_run.is_empty());
    assert!(
        seen.finals().iter().any(|c| !c.ok()),
        "50% failures leave some"
    );
    let finals = observer.finals.lock().unwrap();
    assert_eq!(finals.len(), 30);
    assert!(finals.values().all(|&n| n == 1), "{finals:?}");
}

/// Panics inside the chain of row 3 (from the observer, which runs in the chain's task).
struct PanicOnRow3;

impl Observer for PanicOnRow3 {
    fn call_done(&self, call: &loadchain::record::CallRecord) {
        if call.row == 3 {
            panic!("boom in row 3");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_chain_fails_its_row_and_no_other() {
    let mock = spawn_mock(fixed(2)).await;
    let retry = RetryPolicy {
        retry_passes: 0,
        ..RetryPolicy::default()
    };
    let seen = Arc::new(Collect::default());
    let observer = Arc::new(loadchain::runner::Tee(vec![
        seen.clone(),
        Arc::new(PanicOnRow3),
    ]));
    let batch = runner(&mock, 1, 4, retry)
        .run_batch(Row::synthetic(8).into(), observer)
        .await;
    assert_eq!(batch.finished, 8, "every row is accounted for");
    for c in &seen.finals() {
        match c.row {
            3 => {
                let f = c.failure.as_ref().expect("row 3 failed");
                assert!(f.message.contains("boom in row 3"), "{}", f.message);
            }
            _ => assert!(c.ok(), "row {} failed: {:?}", c.row, c.failure),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_backoff_wait_at_once() {
    // One request a minute: the second call gets a 429 asking to wait about a minute.
    let mock = spawn_mock(MockConfig {
        rpm: Some(1),
        rpm_burst: Some(1),
        ..fixed(1)
    })
    .await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let retry = RetryPolicy {
        max_retries: 5,
        max_retry_wait: Duration::from_secs(120),
        ..RetryPolicy::default()
    };
    // Unpaced, so the second call is sent and refused (tests/pacing.rs has the paced case).
    let runner = Runner {
        stop: Some(stop_rx),
        client: crate::pacing::unpaced(),
        ..runner(&mock, 1, 1, retry)
    };
    let seen = Arc::new(Collect::default());
    let observer = seen.clone();
    let started = std::time::Instant::now();
    let batch =
        tokio::spawn(async move { runner.run_batch(Row::synthetic(3).into(), observer).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(true).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), batch)
        .await
        .expect("the backoff wait ended with the stop")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(batch.interrupted);
    let finals = seen.finals();
    let cut = finals
        .iter()
        .find(|c| !c.ok())
        .expect("the waiting row failed");
    let f = cut.failure.as_ref().unwrap();
    assert!(f.message.contains("ended by Ctrl-C"), "{}", f.message);
}
