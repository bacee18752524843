//! Sweeps: every batch size at every concurrency limit and pooling mode, against the
//! embedded mock or a real target, summarised into a [`SweepReport`].
//!
//! Runs go size → limit → pooling, so a pooled and an unpooled run of the same cell sit next
//! to each other in time and share whatever drift the machine has. Each run gets a fresh
//! client, so every run starts with a cold pool.

mod result;

pub use result::{RunSummary, SCHEMA_VERSION, Settings, SweepReport};

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use loadchain_mock::{MockConfig, MockServer};
use thiserror::Error;

use crate::chain::{Chain, Row};
use crate::metrics::{ErrorCounts, LatencyRecorder, StepLatency, in_flight_timeline};
use crate::record::{CallRecord, Pooling};
use crate::runner::{BatchResult, Observer, RateLimiter, RunSpec, Runner};
use crate::target::{ApiFormat, ClientOptions, HttpClient, Target};

/// Points kept in each run's in-flight timeline.
const TIMELINE_POINTS: usize = 400;

/// Where a sweep sends its calls.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Start the bundled mock in-process with this config (127.0.0.1, ephemeral port).
    Embedded(MockConfig),
    /// A mock already running in this process (tests, benches); its counters are read.
    Running(Arc<MockServer>),
    /// A real endpoint.
    Remote(Target),
}

/// A checked sweep configuration.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Batch sizes, ascending.
    pub sizes: Vec<usize>,
    /// Concurrency limits, ascending, deduplicated.
    pub limits: Vec<usize>,
    /// Pooling modes to measure.
    pub pooling: Vec<Pooling>,
    /// The chain every row runs.
    pub chain: Chain,
    /// Where calls go.
    pub endpoint: Endpoint,
    /// Model name (OpenAI format) for the embedded mock.
    pub model: String,
    /// Stream responses and measure time to first token (OpenAI format).
    pub stream: bool,
    /// Client timeouts and TLS.
    pub client: ClientOptions,
    /// Retry passes, backoff; `limit` is set per run.
    pub spec: RunSpec,
    /// Client-side request-per-minute cap.
    pub rpm: Option<u32>,
    /// Client-side token-per-minute cap.
    pub tpm: Option<u32>,
    /// Open min(limit, size) connections with discarded calls before each run is timed.
    pub warmup: bool,
    /// Ctrl-C: no new run or chain starts; the run it cut short is reported as `partial`
    /// with the chains and calls that finished.
    pub stop: Option<crate::runner::StopSignal>,
    /// The command line, for the report header.
    pub command: String,
}

/// Why a sweep could not run at all (individual call failures are data, not errors).
#[derive(Debug, Error)]
pub enum SweepError {
    /// The embedded mock failed to start.
    #[error("cannot start the embedded mock server: {0}")]
    Mock(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::target::ClientError),
    /// The preflight call showed the target unusable.
    #[error("preflight call to {url} failed: {message}")]
    Preflight { url: String, message: String },
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

/// The calls of one run, kept for calls.csv.
#[derive(Debug, Clone)]
pub struct RunCallLog {
    /// Batch size of the run.
    pub size: usize,
    /// Concurrency limit of the run.
    pub limit: usize,
    /// Pooling mode of the run.
    pub pooling: Pooling,
    /// Every call of the run.
    pub calls: Vec<CallRecord>,
}

/// A finished sweep: the report plus the raw calls.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Everything the report formats need.
    pub report: SweepReport,
    /// Raw calls per run.
    pub calls: Vec<RunCallLog>,
}

/// Runs the whole grid. Starts (and stops) the embedded mock when asked to.
pub async fn run_sweep(cfg: &SweepConfig, ui: &dyn SweepUi) -> Result<SweepOutcome, SweepError> {
    let started_utc = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let (mock, target) = match &cfg.endpoint {
        Endpoint::Embedded(mock_cfg) => {
            let server = MockServer::start(mock_cfg.clone())
                .await
                .map_err(|e| SweepError::Mock(e.to_string()))?;
            let target = embedded_target(&server.url(), &cfg.model);
            (Some(Arc::new(server)), target)
        }
        Endpoint::Running(server) => {
            let target = embedded_target(&server.url(), &cfg.model);
            (Some(Arc::clone(server)), target)
        }
        Endpoint::Remote(t) => (None, t.clone()),
    };
    let target = Arc::new(Target {
        stream: target.stream || cfg.stream,
        ..target
    });
    let chain = Arc::new(cfg.chain.clone());
    preflight(&target, &chain, &cfg.client).await?;

    let mut runs = Vec::new();
    let mut logs = Vec::new();
    let mut interrupted = false;
    let stop_requested = || cfg.stop.as_ref().is_some_and(|s| *s.borrow());
    'grid: for &size in &cfg.sizes {
        let rows: Arc<[Row]> = Row::synthetic(size).into();
        let mut reference: Option<Vec<Option<u64>>> = None;
        for &limit in &cfg.limits {
            for &pooling in &cfg.pooling {
                if stop_requested() {
                    interrupted = true;
                    break 'grid;
                }
                let observer = ui.run_started(size, limit, pooling);
                let runner = Runner {
                    client: HttpClient::new(pooling, &cfg.client)?,
                    target: Arc::clone(&target),
                    chain: Arc::clone(&chain),
                    limiter: RateLimiter::new(cfg.rpm, cfg.tpm).map(Arc::new),
                    spec: RunSpec {
                        limit,
                        ..cfg.spec.clone()
                    },
                    stop: cfg.stop.clone(),
                };
                let before = mock.as_ref().map(|m| m.stats().connections_accepted);
                if cfg.warmup {
                    runner.warm_up(&rows, limit.min(size)).await;
                }
                let batch = runner.run_batch(Arc::clone(&rows), observer).await;
                drop(runner); // closes pooled connections before the next run
                if batch.interrupted && batch.chains.is_empty() {
                    interrupted = true;
                    break 'grid; // nothing finished: nothing to report for this run
                }
                let connections = mock
                    .as_ref()
                    .zip(before)
                    .map(|(m, b)| m.stats().connections_accepted - b);
                let hashes = output_hashes(&batch, size);
                let differ = reference
                    .as_ref()
                    .map_or(0, |r| count_differences(r, &hashes));
                reference.get_or_insert(hashes);
                let summary = summarize(
                    RunKey {
                        size,
                        limit,
                        pooling,
                    },
                    &batch,
                    &chain.step_names(),
                    connections,
                    differ,
                );
                ui.run_finished(&summary);
                runs.push(summary);
                logs.push(RunCallLog {
                    size,
                    limit,
                    pooling,
                    calls: batch.calls,
                });
                if batch.interrupted {
                    // Kept as partial (finished chains and their calls), marked, then stop.
                    interrupted = true;
                    break 'grid;
                }
            }
        }
    }
    let baseline_limit = cfg.limits.first().copied().unwrap_or(1);
    apply_speedups(&mut runs, baseline_limit);
    // Shut down a mock this sweep started; a running one belongs to the caller.
    if let (Some(server), Endpoint::Embedded(_)) = (mock, &cfg.endpoint)
        && let Ok(server) = Arc::try_unwrap(server)
    {
        server.shutdown().await;
    }
    let settings = Settings {
        target: match &cfg.endpoint {
            Endpoint::Embedded(_) => "embedded mock".to_string(),
            Endpoint::Running(m) => format!("mock at {}", m.url()),
            Endpoint::Remote(t) => t.display_url(),
        },
        api: target.format.as_str().to_string(),
        model: target.model.clone(),
        steps: cfg.chain.step_names(),
        sizes: cfg.sizes.clone(),
        limits: cfg.limits.clone(),
        pooling: cfg.pooling.clone(),
        baseline_limit,
        retry_passes: cfg.spec.retry_passes,
        max_retries: cfg.spec.max_retries,
        timeout_ms: cfg.client.timeout.as_millis() as u64,
        rpm: cfg.rpm,
        tpm: cfg.tpm,
        mock: match &cfg.endpoint {
            Endpoint::Embedded(m) => Some(toml::to_string(m).unwrap_or_default()),
            Endpoint::Running(m) => Some(toml::to_string(m.config()).unwrap_or_default()),
            Endpoint::Remote(_) => None,
        },
        wall_time_excludes: if cfg.warmup {
            "client construction, mock start-up, the preflight call and the warm-up calls"
        } else {
            "client construction, mock start-up and the preflight call"
        }
        .to_string(),
        warmup: cfg.warmup,
        max_retry_wait_ms: cfg.spec.max_retry_wait.as_millis() as u64,
        max_response_bytes: cfg.client.max_response_bytes,
        follow_redirects: cfg.client.follow_redirects,
        machine: machine(),
        command: cfg.command.clone(),
    };
    Ok(SweepOutcome {
        report: SweepReport {
            schema_version: SCHEMA_VERSION,
            tool: format!("loadchain {}", env!("CARGO_PKG_VERSION")),
            started_utc,
            settings,
            runs,
            interrupted,
        },
        calls: logs,
    })
}

/// The OpenAI-format target of a mock at `url`.
pub fn embedded_target(url: &str, model: &str) -> Target {
    Target::new(
        &format!("{url}/v1"),
        ApiFormat::OpenAi,
        reqwest::Method::POST,
        model.to_string(),
        &[],
        None,
        None,
    )
    .expect("the mock's own URL is valid")
}

/// One call with a throw-away client: fail fast on a target that is unreachable, rejects
/// us (4xx other than 429) or does not speak the API format. 5xx, 429, timeouts and cut
/// bodies are what a load test measures, so they do not stop it.
pub async fn preflight(
    target: &Target,
    chain: &Chain,
    opts: &ClientOptions,
) -> Result<(), SweepError> {
    let client = HttpClient::new(Pooling::Off, opts)?;
    let row = &Row::synthetic(1)[0];
    let out = client
        .call(target, target.body(&chain.steps[0], row, None))
        .await;
    use crate::record::ErrorKind as K;
    match out.error {
        None | Some(K::ServerError | K::RateLimited | K::Timeout | K::Body) => Ok(()),
        Some(_) => Err(SweepError::Preflight {
            url: target.display_url(),
            message: out.message,
        }),
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} {}, {cpus} logical CPUs",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// A hash of each row's final output, indexed by row (None: failed or not run).
fn output_hashes(batch: &BatchResult, rows: usize) -> Vec<Option<u64>> {
    let mut hashes = vec![None; rows];
    for c in &batch.chains {
        hashes[c.row as usize] = c.final_output().map(|o| {
            let mut h = DefaultHasher::new();
            o.hash(&mut h);
            h.finish()
        });
    }
    hashes
}

/// Rows that succeeded in both runs but whose outputs differ.
fn count_differences(reference: &[Option<u64>], hashes: &[Option<u64>]) -> usize {
    reference
        .iter()
        .zip(hashes)
        .filter(|(a, b)| matches!((a, b), (Some(x), Some(y)) if x != y))
        .count()
}

/// Which cell of the grid a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    /// Chains in the batch.
    pub size: usize,
    /// Chains in flight at most.
    pub limit: usize,
    /// Pooled or not.
    pub pooling: Pooling,
}

/// Aggregates one batch into its summary (speedup filled in later). `steps` names the
/// chain's steps for the per-step latency.
pub fn summarize(
    key: RunKey,
    batch: &BatchResult,
    steps: &[String],
    connections: Option<u64>,
    outputs_differ: usize,
) -> RunSummary {
    let RunKey {
        size,
        limit,
        pooling,
    } = key;
    let mut call_latency = LatencyRecorder::new();
    let mut per_step = vec![LatencyRecorder::new(); steps.len()];
    let mut ttft = LatencyRecorder::new();
    let mut errors = ErrorCounts::default();
    let mut tokens: Option<u64> = None;
    for call in &batch.calls {
        match call.error {
            None => {
                call_latency.record(call.latency);
                if let Some(r) = per_step.get_mut(usize::from(call.step)) {
                    r.record(call.latency);
                }
                if let Some(t) = call.ttft {
                    ttft.record(t);
                }
                if let Some(n) = call.tokens {
                    *tokens.get_or_insert(0) += u64::from(n);
                }
            }
            Some(kind) => errors.add(kind),
        }
    }
    let mut chain_latency = LatencyRecorder::new();
    for chain in batch.chains.iter().filter(|c| c.ok()) {
        chain_latency.record(chain.latency);
    }
    let chains_ok = batch.chains.iter().filter(|c| c.ok()).count();
    let wall_s = batch.wall.as_secs_f64().max(f64::MIN_POSITIVE);
    RunSummary {
        size,
        limit,
        pooling,
        wall_ms: batch.wall.as_secs_f64() * 1000.0,
        retry_wall_ms: batch.retry_wall.as_secs_f64() * 1000.0,
        chains_per_s: chains_ok as f64 / wall_s,
        calls_per_s: batch.calls.len() as f64 / wall_s,
        speedup: None,
        efficiency: None,
        chains_ok,
        chains_failed: batch.chains.len() - chains_ok,
        chains_retried: batch.retried,
        calls: batch.calls.len() as u64,
        calls_failed: errors.total(),
        call_latency: call_latency.summary(),
        chain_latency: chain_latency.summary(),
        errors,
        connections,
        outputs_differ,
        step_latency: steps
            .iter()
            .zip(&per_step)
            .map(|(step, r)| StepLatency {
                step: step.clone(),
                latency: r.summary(),
            })
            .collect(),
        ttft: (!ttft.is_empty()).then(|| ttft.summary()),
        output_tokens_per_s: tokens.map(|t| t as f64 / wall_s),
        partial: batch.interrupted,
        chains_not_run: batch.not_run.len(),
        call_distribution: call_latency.distribution(),
        timeline: in_flight_timeline(&batch.calls, TIMELINE_POINTS),
    }
}

/// Speedup = wall(baseline) / wall(run) for the same size and pooling;
/// efficiency = speedup / (min(limit, size) / min(baseline, size)).
pub fn apply_speedups(runs: &mut [RunSummary], baseline_limit: usize) {
    let baselines: Vec<(usize, Pooling, f64)> = runs
        .iter()
        .filter(|r| r.limit == baseline_limit && !r.partial)
        .map(|r| (r.size, r.pooling, r.wall_ms))
        .collect();
    for run in runs.iter_mut() {
        let base = baselines
            .iter()
            .find(|(s, p, _)| *s == run.size && *p == run.pooling);
        if let Some(&(_, _, base_ms)) = base
            && run.wall_ms > 0.0
            && !run.partial
        {
            let speedup = base_ms / run.wall_ms;
            let ideal = run.limit.min(run.size) as f64 / baseline_limit.min(run.size) as f64;
            run.speedup = Some(speedup);
            run.efficiency = Some(speedup / ideal);
        }
    }
}
