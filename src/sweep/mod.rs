//! Sweeps: every batch size at every concurrency limit and pooling mode, against the
//! embedded mock or a real target, summarised into a [`SweepReport`].
//!
//! Runs go size → limit → pooling, so a pooled and an unpooled run of the same cell sit next
//! to each other in time and share whatever drift the machine has. Each run gets a fresh
//! client, so every run starts with a cold pool.

mod rates;
mod result;

pub use crate::metrics::RunSummary;
pub use rates::{RateSweep, sweep_max_sustainable_rate};
pub use result::{SCHEMA_VERSION, Settings, SweepReport};

use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;

use crate::chain::Rows;
use crate::endpoint::{Session, SessionError, Target};
use crate::metrics::{RunRecorder, count_differences};
use crate::record::{Pooling, RunKey};
use crate::runner::{Observer, RunnerFactory, StopSignal, Tee, Workload};
use crate::threshold::{Measured, Threshold, Verdict};

/// A checked sweep configuration: what to measure, nothing about how it is shown.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Batch sizes, ascending.
    pub sizes: Vec<usize>,
    /// Concurrency limits, ascending, deduplicated.
    pub limits: Vec<usize>,
    /// Pooling modes to measure.
    pub pooling: Vec<Pooling>,
    /// The chain, where calls go, the client, retries and rate caps.
    pub workload: Workload,
    /// Open min(limit, size) connections with discarded calls before each run is timed.
    pub warmup: bool,
    /// The command line, for the report header.
    pub command: String,
    /// Open loop (`--rates`): run each offered rate instead of each limit.
    pub rates: Option<RateSweep>,
}

/// Why a sweep could not run at all (individual call failures are data, not errors).
#[derive(Debug, Error)]
pub enum SweepError {
    /// The endpoint could not be made ready (mock start-up, preflight).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::endpoint::ClientError),
}

/// Progress hooks of a sweep; the CLI draws bars, tests pass [`Quiet`].
pub trait SweepUi: Send + Sync {
    /// A run begins; the returned observer sees its calls and chains.
    fn run_started(&self, size: usize, limit: usize, pooling: Pooling) -> Arc<dyn Observer>;
    /// A run ended.
    fn run_finished(&self, _summary: &RunSummary) {}
}

/// A [`SweepUi`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl SweepUi for Quiet {
    fn run_started(&self, _: usize, _: usize, _: Pooling) -> Arc<dyn Observer> {
        Arc::new(crate::runner::NoObserver)
    }
}

/// A finished sweep: the report plus the raw calls.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Everything the report formats need.
    pub report: SweepReport,
}

impl SweepOutcome {
    /// Exit-1 conditions after the report is written: a run in which every chain failed,
    /// and every broken `--fail-on` check, each naming its run.
    pub fn verdict(&self, fail_on: &[Threshold]) -> Verdict {
        let mut verdict = Verdict::default();
        for r in &self.report.runs {
            let measured = Measured {
                call: &r.call_latency,
                errors: &r.errors,
                calls: r.calls,
                failed: r.chains_failed,
                efficiency: r.efficiency,
                differ: Some(r.outputs_differ),
            };
            verdict.broken.extend(
                fail_on
                    .iter()
                    .filter_map(|t| t.check(&measured).map(|m| format!("{}: {m}", r.key))),
            );
            if r.chains_ok == 0 && r.chains_failed > 0 {
                verdict
                    .all_failed
                    .push(format!("{} ({} chains)", r.key, r.chains_failed));
            }
        }
        verdict
    }
}

/// Runs the whole grid: opens the endpoint (starting the embedded mock when asked to), runs
/// every size × limit × pooling cell, closes it. `stop` (Ctrl-C, owned by the caller) ends
/// it early: the run it cuts short is kept as partial, later runs are not started.
pub async fn run(
    cfg: &SweepConfig,
    ui: &dyn SweepUi,
    stop: Option<StopSignal>,
) -> Result<SweepOutcome, SweepError> {
    let started_utc = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let session = cfg.workload.open().await?;
    let factory = cfg.workload.factory(&session, stop.clone());
    let grid = match &cfg.rates {
        Some(plan) => rates::run_rates(cfg, plan, &session, &factory, ui, stop.as_ref()).await,
        None => run_grid(cfg, &session, &factory, ui, stop.as_ref()).await,
    };
    session.close().await;
    let (mut runs, interrupted) = grid?;
    let baseline_limit = cfg.limits.first().copied().unwrap_or(1);
    apply_speedups(&mut runs, baseline_limit);
    Ok(SweepOutcome {
        report: SweepReport {
            schema_version: SCHEMA_VERSION,
            tool: format!("loadchain {}", env!("CARGO_PKG_VERSION")),
            started_utc,
            settings: settings(cfg, &factory.target, baseline_limit),
            max_sustainable_rate: sweep_max_sustainable_rate(&runs),
            runs,
            interrupted,
        },
    })
}

/// Every cell in order size → limit → pooling, so a pooled and an unpooled run of the same
/// cell sit next to each other in time. Returns the runs and whether `stop` cut the grid
/// short.
async fn run_grid(
    cfg: &SweepConfig,
    session: &Session,
    factory: &RunnerFactory,
    ui: &dyn SweepUi,
    stop: Option<&StopSignal>,
) -> Result<(Vec<RunSummary>, bool), SweepError> {
    let mut runs = Vec::new();
    let stop_requested = || stop.is_some_and(|s| *s.borrow());
    let steps = factory.chain.step_names();
    for &size in &cfg.sizes {
        // Made one at a time as chains start: no sweep holds its rows.
        let rows = Rows::Synthetic(size);
        let mut reference: Option<Vec<u64>> = None;
        for &limit in &cfg.limits {
            for &pooling in &cfg.pooling {
                if stop_requested() {
                    return Ok((runs, true));
                }
                let key = RunKey {
                    size,
                    limit,
                    pooling,
                };
                // Figures are gathered as calls finish; nothing per call is kept.
                let recorder = Arc::new(RunRecorder::new(steps.len(), size));
                let observer = Tee(vec![ui.run_started(size, limit, pooling), recorder.clone()]);
                let runner = factory.runner(limit, pooling)?;
                let before = session.connections_accepted();
                if cfg.warmup {
                    runner.warm_up(&rows, limit.min(size)).await;
                }
                let batch = runner.run_batch(rows.clone(), Arc::new(observer)).await;
                drop(runner); // closes pooled connections before the next run
                let connections = session
                    .connections_accepted()
                    .zip(before)
                    .map(|(after, before)| after - before);
                let hashes = recorder.output_hashes().unwrap_or_default();
                let differ = reference
                    .as_ref()
                    .map_or(0, |r| count_differences(r, &hashes));
                reference.get_or_insert(hashes);
                let summary = recorder.summary(key, &batch, &steps, connections, differ);
                // A run cut short keeps what finished, marked partial; one with nothing
                // finished is left out.
                if !batch.interrupted || batch.finished > 0 {
                    ui.run_finished(&summary);
                    runs.push(summary);
                }
                if batch.interrupted {
                    return Ok((runs, true));
                }
            }
        }
    }
    Ok((runs, false))
}

/// The effective settings, so the report can be repeated exactly.
fn settings(cfg: &SweepConfig, target: &Target, baseline_limit: usize) -> Settings {
    Settings {
        target: cfg.workload.endpoint.label(),
        api: target.format().as_str().to_string(),
        model: target.model().to_string(),
        steps: cfg.workload.chain.step_names(),
        sizes: cfg.sizes.clone(),
        limits: cfg.limits.clone(),
        pooling: cfg.pooling.clone(),
        baseline_limit,
        retry_passes: cfg.workload.retry.retry_passes,
        max_retries: cfg.workload.retry.max_retries,
        timeout_ms: cfg.workload.client.timeout.as_millis() as u64,
        rpm: cfg.workload.rpm,
        tpm: cfg.workload.tpm,
        mock: cfg.workload.endpoint.mock_toml(),
        wall_time_excludes: if cfg.warmup {
            "client construction, mock start-up, the preflight call and the warm-up calls"
        } else {
            "client construction, mock start-up and the preflight call"
        }
        .to_string(),
        warmup: cfg.warmup,
        max_retry_wait_ms: cfg.workload.retry.max_retry_wait.as_millis() as u64,
        max_response_bytes: cfg.workload.client.max_response_bytes,
        follow_redirects: cfg.workload.client.follow_redirects,
        machine: machine(),
        command: cfg.command.clone(),
    }
}

/// OS, architecture and logical CPUs, as every report names the machine it ran on.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} {}, {cpus} logical CPUs",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Speedup = wall(baseline) / wall(run) for the same size and pooling;
/// efficiency = speedup / (min(limit, size) / min(baseline, size)).
pub fn apply_speedups(runs: &mut [RunSummary], baseline_limit: usize) {
    let baselines: Vec<(usize, Pooling, f64)> = runs
        .iter()
        .filter(|r| r.key.limit == baseline_limit && !r.partial)
        .map(|r| (r.key.size, r.key.pooling, r.wall_ms))
        .collect();
    for run in runs.iter_mut() {
        let base = baselines
            .iter()
            .find(|(s, p, _)| *s == run.key.size && *p == run.key.pooling);
        if let Some(&(_, _, base_ms)) = base
            && run.wall_ms > 0.0
            && !run.partial
        {
            let speedup = base_ms / run.wall_ms;
            let ideal =
                run.key.limit.min(run.key.size) as f64 / baseline_limit.min(run.key.size) as f64;
            run.speedup = Some(speedup);
            run.efficiency = Some(speedup / ideal);
        }
    }
}
