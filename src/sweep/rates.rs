//! An open-loop sweep: one run per offered rate (× pooling mode), each driven by the
//! runner's arrival schedule, then the max sustainable rate over them.

use std::sync::Arc;
use std::time::Duration;

use super::{RunSummary, SweepConfig, SweepError, SweepUi};
use crate::endpoint::Session;
use crate::metrics::RunRecorder;
use crate::record::{Pooling, RunKey};
use crate::runner::{Arrivals, OpenLoop, RunnerFactory, StopSignal, Tee, max_sustainable_rate};

/// `--rates` and its companions: what each open-loop step offers.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSweep {
    /// Offered chain arrivals per second, ascending.
    pub rates: Vec<f64>,
    /// How arrivals are spaced.
    pub arrivals: Arrivals,
    /// Arrivals for this long per step; None: `n` arrivals.
    pub duration: Option<Duration>,
    /// Arrivals per step when `duration` is None.
    pub n: usize,
    /// Chains in flight at most (None: no cap).
    pub max_concurrency: Option<usize>,
    /// Seed of the arrival process.
    pub seed: u64,
}

impl RateSweep {
    /// The step at `rate`.
    fn plan(&self, rate: f64) -> OpenLoop {
        OpenLoop {
            rate,
            arrivals: self.arrivals,
            seed: self.seed,
            duration: self.duration,
            n: self.n,
            max_concurrency: self.max_concurrency,
        }
    }

    /// Arrivals a step is expected to make (progress bars).
    fn expected(&self, rate: f64) -> usize {
        self.duration
            .map_or(self.n, |d| (rate * d.as_secs_f64()).ceil() as usize)
    }
}

/// Every rate in order, each in every pooling mode. Returns the runs and whether `stop` cut
/// the sweep short. A run's key is `n` = arrivals, `c` = --max-concurrency (0: none).
pub(super) async fn run_rates(
    cfg: &SweepConfig,
    plan: &RateSweep,
    session: &Session,
    factory: &RunnerFactory,
    ui: &dyn SweepUi,
    stop: Option<&StopSignal>,
) -> Result<(Vec<RunSummary>, bool), SweepError> {
    let mut runs = Vec::new();
    let steps = factory.chain.step_names();
    let limit = plan.max_concurrency.unwrap_or(0);
    for &rate in &plan.rates {
        for &pooling in &cfg.pooling {
            if stop.is_some_and(|s| *s.borrow()) {
                return Ok((runs, true));
            }
            let recorder = Arc::new(RunRecorder::new(steps.len(), 0));
            let shown = ui.run_started(plan.expected(rate), limit, pooling);
            let observer = Arc::new(Tee(vec![shown, recorder.clone()]));
            let runner = factory.runner(limit.max(1), pooling)?;
            let before = session.connections_accepted();
            let (batch, stats) = runner.run_open(&plan.plan(rate), observer).await;
            drop(runner);
            let connections = session
                .connections_accepted()
                .zip(before)
                .map(|(after, before)| after - before);
            let key = RunKey {
                size: stats.arrivals as usize,
                limit,
                pooling,
            };
            let mut summary = recorder.summary(key, &batch, &steps, connections, 0);
            summary.partial = batch.interrupted;
            summary.open_loop = Some(stats);
            if !batch.interrupted || batch.finished > 0 {
                ui.run_finished(&summary);
                runs.push(summary);
            }
            if batch.interrupted {
                return Ok((runs, true));
            }
        }
    }
    Ok((runs, false))
}

/// The max sustainable rate of an open-loop sweep, over the first pooling mode's complete
/// runs; None for a closed-loop sweep or when no rate qualifies.
pub fn sweep_max_sustainable_rate(runs: &[RunSummary]) -> Option<f64> {
    let pooling: Pooling = runs.first()?.key.pooling;
    let steps: Vec<(f64, f64, u64)> = runs
        .iter()
        .filter(|r| r.key.pooling == pooling && !r.partial)
        .filter_map(|r| r.open_loop.as_ref())
        .map(|o| (o.offered_rate, o.achieved_rate, o.latency.p99_us))
        .collect();
    max_sustainable_rate(&steps)
}
