//! Sweeps: every batch size at every concurrency limit and pooling mode, against the
//! embedded mock or a real target, summarised into a [`SweepReport`].
//!
//! Runs go size → limit → pooling, so a pooled and an unpooled run of the same cell sit next
//! to each other in time and share whatever drift the machine has. Each run gets a fresh
//! client, so every run starts with a cold pool.

mod pooling;
mod rates;
mod repeat;
mod result;

pub use crate::metrics::RunSummary;
pub use pooling::{PoolingMethod, PoolingTest, tests as pooling_tests};
pub use rates::{RateSweep, sweep_max_sustainable_rate};
pub use repeat::{Repeats, schedule};
pub use result::{SCHEMA_VERSION, Settings, SweepReport};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::chain::{Numbering, Rows};
use crate::endpoint::{Endpoint, Session, SessionError, Target};
use crate::metrics::quality::{self, Sample};
use crate::metrics::{RunRecorder, count_differences};
use crate::record::{Pooling, RunKey};
use crate::runner::{
    AdaptiveLimit, AdaptiveOutcome, Observer, RunnerFactory, StopSignal, Tee, Workload,
};
use crate::threshold::{Measured, Threshold, Verdict};

/// A checked sweep configuration: what to measure, nothing about how it is shown.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Batch sizes, ascending.
    pub sizes: Vec<usize>,
    /// Concurrency limits, ascending, deduplicated.
    pub limits: Vec<usize>,
    /// `auto` was in `--limits`: after the fixed limits, one adaptive run per size and
    /// pooling, its limit never above this ceiling (nor the size).
    pub auto_ceiling: Option<usize>,
    /// Pooling modes to measure.
    pub pooling: Vec<Pooling>,
    /// The chain, where calls go, the client, retries and rate caps.
    pub workload: Workload,
    /// Open min(limit, size) connections with discarded calls before each run is timed.
    pub warmup: bool,
    /// The command line, for the report header.
    pub command: String,
    /// Runs of every cell (`--repeat`, ≥ 1), interleaved; see [`schedule`].
    pub repeat: usize,
    /// Open loop (`--rates`): run each offered rate instead of each limit.
    pub rates: Option<RateSweep>,
    /// Closed-loop soak (`--duration` with `--limits`): each run keeps `limit` chains in
    /// flight for this long instead of running a batch of `--n`.
    pub soak: Option<Duration>,
    /// `--segment i/n`: the segment and the whole run's sizes, so each batch sends the rows
    /// the whole run would have sent (None: this is the whole run).
    pub segment: Option<SweepSegment>,
}

/// A sweep that is one segment of a larger one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSegment {
    /// Which share this process runs.
    pub segment: crate::segment::Segment,
    /// The whole run's batch sizes, ascending; `SweepConfig::sizes` holds this segment's
    /// shares of them, in the same order.
    pub whole_sizes: Vec<usize>,
}

impl SweepConfig {
    /// Where the synthetic rows of a batch of `size` (this process's size) sit in the whole
    /// run: a sized batch is the contiguous share [`crate::segment::Segment::range`] of the
    /// whole size; a soak, whose length nobody knows in advance, takes every n-th row.
    pub fn numbering(&self, size: usize) -> Numbering {
        let Some(s) = &self.segment else {
            return Numbering::WHOLE;
        };
        let seg = s.segment;
        if self.soak.is_some() {
            return Numbering {
                first: (seg.index - 1) as usize,
                stride: seg.count as usize,
            };
        }
        let first = self
            .sizes
            .iter()
            .position(|&n| n == size)
            .and_then(|k| s.whole_sizes.get(k))
            .map_or(0, |&whole| seg.range(whole as u64).start as usize);
        Numbering { first, stride: 1 }
    }
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
                cost: r.cost.as_ref().map(|c| c.total),
                slo_attainment: r.llm.slo_attainment,
                goodput: r.llm.goodput,
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
        Some(plan) => rates::run_rates(cfg, plan, &session, &factory, ui, stop.as_ref())
            .await
            .map(|(runs, interrupted)| Grid {
                runs,
                interrupted,
                adaptive: None,
                paired: Vec::new(),
            }),
        None => run_grid(cfg, &session, &factory, ui, stop.as_ref()).await,
    };
    session.close().await;
    let Grid {
        mut runs,
        interrupted,
        adaptive,
        paired,
    } = grid?;
    let baseline_limit = cfg.limits.first().copied().unwrap_or(1);
    apply_speedups(&mut runs, baseline_limit);
    repeat::apply_speedup_intervals(&mut runs, baseline_limit);
    Ok(SweepOutcome {
        report: SweepReport {
            schema_version: SCHEMA_VERSION,
            tool: format!("loadchain {}", env!("CARGO_PKG_VERSION")),
            started_utc,
            settings: settings(cfg, &factory.target, baseline_limit),
            max_sustainable_rate: sweep_max_sustainable_rate(&runs),
            pooling: pooling::tests(&runs, &paired),
            runs,
            interrupted,
            adaptive,
        },
    })
}

/// What the grid measured.
struct Grid {
    /// One summary per cell.
    runs: Vec<RunSummary>,
    /// `stop` cut the grid short.
    interrupted: bool,
    /// The last adaptive run's outcome.
    adaptive: Option<AdaptiveOutcome>,
    /// The paired pooling tests of the cells whose calls paired up.
    paired: Vec<PoolingTest>,
}

/// Every cell in order size → limit → pooling, so a pooled and an unpooled run of the same
/// cell sit next to each other in time; with `--repeat K`, K rounds of that order, each
/// rotated ([`schedule`]); then, with `--limits auto`, one adaptive run per size and pooling.
async fn run_grid(
    cfg: &SweepConfig,
    session: &Session,
    factory: &RunnerFactory,
    ui: &dyn SweepUi,
    stop: Option<&StopSignal>,
) -> Result<Grid, SweepError> {
    let stop_requested = || stop.is_some_and(|s| *s.borrow());
    let steps = factory.chain.step_names();
    let cells = repeat::cells(&cfg.sizes, &cfg.limits, &cfg.pooling);
    let repeated = cfg.repeat > 1;
    let mut done: Vec<repeat::CellRuns> = cells.iter().map(|_| Default::default()).collect();
    // One recorder per cell that sees every repeat: its histograms merge the repeats.
    let merged: Vec<Option<Arc<RunRecorder>>> = cells
        .iter()
        .map(|_| {
            repeated.then(|| {
                Arc::new(
                    RunRecorder::new(steps.len(), 0)
                        .with_price(cfg.workload.price)
                        .with_slo(cfg.workload.slo),
                )
            })
        })
        .collect();
    // The first run of each size's output hashes, to count outputs that differ, and its
    // sampled rows' token sets, for the quality section's similarity.
    let mut reference: Vec<(usize, Vec<u32>, Sample)> = Vec::new();
    let mut interrupted = false;
    let grid = repeat::schedule(cells.len(), cfg.repeat)
        .into_iter()
        .map(|(cell, r)| (cell, cells[cell], r));
    // The first repeat's pooled and unpooled runs of a cell pair their calls by (row, step):
    // a run's latencies wait here until its partner ran (the next run: pooling is the inner
    // loop of the first repeat, which is not rotated), so at most one run's are held.
    let pairs_both = cfg.pooling.contains(&Pooling::On) && cfg.pooling.contains(&Pooling::Off);
    let mut waiting: Vec<(RunKey, Vec<u32>)> = Vec::new();
    let mut paired = Vec::new();
    // The adaptive runs come after the grid, once each (they are not repeated).
    let autos: Vec<RunKey> = match cfg.auto_ceiling {
        Some(ceiling) => cfg
            .sizes
            .iter()
            .flat_map(|&size| {
                cfg.pooling.iter().map(move |&pooling| RunKey {
                    size,
                    limit: ceiling.min(size),
                    pooling,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let compared = repeat::compared_sizes(&cells, cfg.repeat, &autos);
    let autos = autos.into_iter().map(|key| (usize::MAX, key, usize::MAX));
    let mut auto_runs = Vec::new();
    let mut adaptive = None;
    for (seq, (cell, mut key, round)) in grid.chain(autos).enumerate() {
        let auto = round == usize::MAX;
        if stop_requested() {
            interrupted = true;
            break;
        }
        let (size, limit, pooling) = (key.size, key.limit, key.pooling);
        // Made one at a time as chains start: no sweep holds its rows. A soak runs over as
        // many as its time allows; its size is the chains it finished.
        let (rows_n, known) = match cfg.soak {
            Some(_) => (SOAK_ROWS, 0),
            None => (size, size),
        };
        let rows = Rows::Synthetic(rows_n, cfg.numbering(size));
        let hash_rows = if compared.contains(&size) { known } else { 0 };
        // Figures are gathered as calls finish; nothing per call is kept but the pairing
        // latencies (4 bytes a call, capped at `PAIR_SLOTS`).
        let pairs = pairs_both && round == 0 && cfg.soak.is_none();
        let recorder = Arc::new(
            RunRecorder::new(steps.len(), hash_rows)
                .with_price(cfg.workload.price)
                .with_slo(cfg.workload.slo)
                .with_pairing(if pairs { known } else { 0 }),
        );
        let mut observers: Vec<Arc<dyn Observer>> =
            vec![ui.run_started(known, limit, pooling), recorder.clone()];
        if let Some(Some(m)) = merged.get(cell) {
            observers.push(m.clone());
        }
        let mut runner = factory.runner(limit, pooling)?;
        let before = session.connections_accepted();
        if cfg.warmup && !auto {
            runner.warm_up(&rows, limit.min(rows_n)).await;
        }
        runner.adaptive = auto.then(|| Arc::new(AdaptiveLimit::new(limit)));
        let until = cfg.soak.map(|d| tokio::time::Instant::now() + d);
        let batch = runner
            .run_batch_until(rows.clone(), Arc::new(Tee(observers)), until)
            .await;
        if cfg.soak.is_some() {
            key.size = batch.finished;
        }
        let found = runner.adaptive.as_ref().map(|a| a.outcome());
        drop(runner); // closes pooled connections before the next run
        let connections = session
            .connections_accepted()
            .zip(before)
            .map(|(after, before)| after - before);
        if let Some(lat) = recorder.paired_latencies().filter(|_| !batch.interrupted) {
            pair_up(&mut waiting, &mut paired, key, lat);
        }
        let hashes = recorder.output_hashes().unwrap_or_default();
        let sample = recorder.quality_sample();
        let (differ, compared) = match reference.iter().find(|(s, ..)| *s == size) {
            Some((_, r, base)) => (
                count_differences(r, &hashes),
                quality::compare(r, base, &hashes, &sample),
            ),
            None => {
                reference.push((size, hashes, sample));
                (0, None)
            }
        };
        if let Some(found) = &found {
            key.limit = found.recommended_limit;
        }
        let mut summary = recorder.summary(key, &batch, &steps, connections, differ);
        summary.auto = auto;
        if let (Some(q), Some(c)) = (summary.quality.as_mut(), compared) {
            q.compared_with(c);
        }
        adaptive = found.or(adaptive);
        // A run cut short keeps what finished, marked partial; one with nothing
        // finished is left out.
        if !batch.interrupted || batch.finished > 0 {
            ui.run_finished(&summary);
            match done.get_mut(cell) {
                Some(cell_runs) => {
                    cell_runs.runs.push(summary);
                    cell_runs.order.push(seq);
                }
                None => auto_runs.push(summary),
            }
        }
        if batch.interrupted {
            interrupted = true;
            break;
        }
    }
    let mut runs: Vec<RunSummary> = done
        .into_iter()
        .zip(merged)
        .zip(cells)
        .filter_map(|((runs, merged), key)| {
            let last = runs.runs.last()?;
            let merged = merged.map(|m| {
                let batch = crate::runner::BatchResult {
                    finished: 0,
                    not_run: Vec::new(),
                    interrupted: false,
                    passes: 1,
                    wall: std::time::Duration::from_secs_f64(last.wall_ms / 1000.0),
                    retry_wall: std::time::Duration::ZERO,
                    retried: 0,
                    calls_saved: 0,
                    stale_retries: 0,
                };
                m.summary(key, &batch, &steps, None, 0)
            });
            runs.finish(merged)
        })
        .collect();
    runs.extend(auto_runs);
    Ok(Grid {
        runs,
        interrupted,
        adaptive,
        paired,
    })
}

/// Pairs a run's latencies with its partner's (the other pooling mode of the same cell) when
/// that one already ran, else keeps them until it does.
fn pair_up(
    waiting: &mut Vec<(RunKey, Vec<u32>)>,
    paired: &mut Vec<PoolingTest>,
    key: RunKey,
    lat: Vec<u32>,
) {
    let partner = waiting
        .iter()
        .position(|(k, _)| (k.size, k.limit) == (key.size, key.limit) && k.pooling != key.pooling);
    let Some(i) = partner else {
        waiting.push((key, lat));
        return;
    };
    let (_, other_lat) = waiting.swap_remove(i);
    let (on, off) = match key.pooling {
        Pooling::On => (&lat, &other_lat),
        Pooling::Off => (&other_lat, &lat),
    };
    if let Some(t) = PoolingTest::paired(key.size, key.limit, on, off) {
        paired.push(t);
    }
}

/// Rows a soak may draw from: more than any duration gets through; made only as started.
const SOAK_ROWS: usize = 1 << 40;

/// The effective settings, so the report can be repeated exactly.
fn settings(cfg: &SweepConfig, target: &Target, baseline_limit: usize) -> Settings {
    Settings {
        target: cfg.workload.endpoint.label(),
        pace: cfg.workload.client.pace,
        // Read after the grid: every client of the sweep recorded into it.
        announced_quota: cfg.workload.client.announced.get(),
        api: target.api_name().to_string(),
        model: target.model().to_string(),
        steps: cfg.workload.chain.step_names(),
        sizes: cfg.sizes.clone(),
        limits: cfg.limits.clone(),
        pooling: cfg.pooling.clone(),
        baseline_limit,
        retry_passes: cfg.workload.retry.retry_passes,
        restart_chains: cfg.workload.retry.restart_chains,
        max_retries: cfg.workload.retry.max_retries,
        timeout_ms: cfg.workload.client.timeout.as_millis() as u64,
        rpm: cfg.workload.rpm,
        tpm: cfg.workload.tpm,
        mock: cfg.workload.endpoint.mock_toml(),
        wall_time_excludes: if matches!(cfg.workload.endpoint, Endpoint::Exec(_)) {
            "nothing of the program (each run's start-up is timed); --exec starts no mock and \
             makes no preflight call, and measures pooling on only: a program has no pool"
        } else if cfg.warmup {
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
        repeat: cfg.repeat,
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
        .filter(|r| r.key.limit == baseline_limit && !r.partial && !r.auto)
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
