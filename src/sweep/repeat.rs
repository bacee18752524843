//! `sweep --repeat K`: the schedule that interleaves the repeats, and how a cell's K runs
//! become one [`RunSummary`] with a mean, a 95 % interval and the per-repeat walls.
//!
//! Every repeat runs every cell once; repeat r starts at cell ⌊r·N/K⌋ of the N cells and wraps
//! around, so slow drift of the machine (thermal, other load) is spread over the cells instead
//! of landing on whichever ran last. A cell's call latency histograms merge across its repeats
//! (one recorder sees them all); its wall time is the mean of the repeats' walls.

use serde::{Deserialize, Serialize};

use crate::metrics::RunSummary;
use crate::record::{Pooling, RunKey};
use crate::stats::{self, Interval};

/// A cell's repeats, as report.json keeps them (absent for a sweep without `--repeat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repeats {
    /// Wall time of each repeat in the order they ran, ms.
    pub walls_ms: Vec<f64>,
    /// Wall time of each repeat's retry passes, ms.
    pub retry_walls_ms: Vec<f64>,
    /// Position of each repeat in the sweep's sequence of runs (0 = the first run), so a
    /// reader can check the interleaving.
    pub order: Vec<usize>,
    /// Mean wall time with its 95 % interval (Student t over the repeats); None below two.
    pub wall_ms: Option<Interval>,
    /// Speedup, mean(baseline walls) / mean(walls), with its 95 % bootstrap interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<Interval>,
}

/// The order runs take: `(cell index, repeat index)`, repeat by repeat, each repeat rotated.
pub fn schedule(cells: usize, repeat: usize) -> Vec<(usize, usize)> {
    let repeat = repeat.max(1);
    let mut out = Vec::with_capacity(cells * repeat);
    for r in 0..repeat {
        let offset = r * cells / repeat;
        out.extend((0..cells).map(|i| ((i + offset) % cells.max(1), r)));
    }
    out
}

/// Every cell of the grid in size → limit → pooling order.
pub fn cells(sizes: &[usize], limits: &[usize], pooling: &[Pooling]) -> Vec<RunKey> {
    let mut out = Vec::new();
    for &size in sizes {
        for &limit in limits {
            for &pooling in pooling {
                out.push(RunKey {
                    size,
                    limit,
                    pooling,
                });
            }
        }
    }
    out
}

/// Sizes that more than one run of the sweep measures (cells × repeats, and adaptive runs):
/// only their runs keep an output hash per row (4 bytes), which later runs compare with the
/// first; a size run once keeps none, so a single run of a million rows holds nothing per row.
pub fn compared_sizes(cells: &[RunKey], repeat: usize, autos: &[RunKey]) -> Vec<usize> {
    let runs = |size: usize| {
        cells.iter().filter(|c| c.size == size).count() * repeat.max(1)
            + autos.iter().filter(|a| a.size == size).count()
    };
    let mut sizes: Vec<usize> = cells.iter().chain(autos).map(|k| k.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes.retain(|&size| runs(size) > 1);
    sizes
}

/// One cell's repeats so far.
#[derive(Debug, Default)]
pub struct CellRuns {
    /// Each finished repeat's own summary.
    pub runs: Vec<RunSummary>,
    /// Where each of them ran in the sweep's sequence.
    pub order: Vec<usize>,
}

impl CellRuns {
    /// The cell's summary: `merged` (the recorder that saw every repeat's calls) with wall
    /// times averaged, rates over the total wall, counts summed, the last repeat's timeline.
    /// With one repeat, that repeat's summary unchanged. None when no repeat finished.
    pub fn finish(mut self, merged: Option<RunSummary>) -> Option<RunSummary> {
        let (Some(mut cell), true) = (merged, self.runs.len() > 1) else {
            return self.runs.pop();
        };
        let walls: Vec<f64> = self.runs.iter().map(|r| r.wall_ms).collect();
        let retry: Vec<f64> = self.runs.iter().map(|r| r.retry_wall_ms).collect();
        let total: f64 = walls.iter().sum();
        // `merged` computed its rates over its last batch's wall; rescale to the total.
        let last_wall = self.runs.last().map_or(0.0, |r| r.wall_ms);
        let scale = if total > 0.0 { last_wall / total } else { 0.0 };
        cell.chains_per_s *= scale;
        cell.calls_per_s *= scale;
        cell.output_tokens_per_s = cell.output_tokens_per_s.map(|x| x * scale);
        cell.input_tokens_per_s = cell.input_tokens_per_s.map(|x| x * scale);
        cell.wall_ms = stats::mean(&walls);
        cell.retry_wall_ms = stats::mean(&retry);
        cell.chains_retried = self.runs.iter().map(|r| r.chains_retried).sum();
        cell.calls_saved = self.runs.iter().map(|r| r.calls_saved).sum();
        cell.stale_retries = self.runs.iter().map(|r| r.stale_retries).sum();
        cell.chains_not_run = self.runs.iter().map(|r| r.chains_not_run).sum();
        cell.partial = self.runs.iter().any(|r| r.partial);
        cell.outputs_differ = self.runs.iter().map(|r| r.outputs_differ).sum();
        if let Some(q) = cell.quality.as_mut() {
            q.add_comparisons(self.runs.iter().map(|r| r.quality.as_ref()));
        }
        cell.connections = self.runs.iter().map(|r| r.connections).sum::<Option<u64>>();
        if let Some(last) = self.runs.last() {
            cell.timeline = last.timeline.clone();
        }
        cell.repeats = Some(Repeats {
            wall_ms: stats::mean_interval(&walls),
            walls_ms: walls,
            retry_walls_ms: retry,
            order: std::mem::take(&mut self.order),
            speedup: None,
        });
        Some(cell)
    }
}

/// The speedup's bootstrap interval for every repeated cell, against the baseline limit's
/// repeats of the same size and pooling.
pub fn apply_speedup_intervals(runs: &mut [RunSummary], baseline_limit: usize) {
    let baselines: Vec<(usize, Pooling, Vec<f64>)> = runs
        .iter()
        .filter(|r| r.key.limit == baseline_limit && !r.partial)
        .filter_map(|r| {
            let walls = r.repeats.as_ref()?.walls_ms.clone();
            Some((r.key.size, r.key.pooling, walls))
        })
        .collect();
    for run in runs.iter_mut().filter(|r| r.speedup.is_some()) {
        let Some(base) = baselines
            .iter()
            .find(|(s, p, _)| *s == run.key.size && *p == run.key.pooling)
        else {
            continue;
        };
        if let Some(rep) = run.repeats.as_mut() {
            rep.speedup = stats::ratio_of_means(&base.2, &rep.walls_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_runs_every_cell_once_per_repeat_and_rotates_the_start() {
        let s = schedule(4, 2);
        assert_eq!(
            s,
            vec![
                (0, 0),
                (1, 0),
                (2, 0),
                (3, 0),
                (2, 1),
                (3, 1),
                (0, 1),
                (1, 1)
            ]
        );
        let s = schedule(6, 3);
        for cell in 0..6 {
            assert_eq!(s.iter().filter(|(c, _)| *c == cell).count(), 3);
        }
        let firsts: Vec<usize> = s.chunks(6).map(|c| c[0].0).collect();
        assert_eq!(firsts, vec![0, 2, 4], "each repeat starts elsewhere");
        assert_eq!(
            schedule(3, 1),
            vec![(0, 0), (1, 0), (2, 0)],
            "K = 1: plain order"
        );
    }

    #[test]
    fn only_sizes_run_more_than_once_keep_output_hashes() {
        let on = [Pooling::On];
        let one = cells(&[10, 20], &[4], &on);
        assert!(
            compared_sizes(&one, 1, &[]).is_empty(),
            "each size runs once"
        );
        assert_eq!(compared_sizes(&one, 2, &[]), vec![10, 20], "repeated");
        let auto = [RunKey {
            size: 20,
            limit: 8,
            pooling: Pooling::On,
        }];
        assert_eq!(
            compared_sizes(&one, 1, &auto),
            vec![20],
            "plus an adaptive run"
        );
        let two = cells(&[10], &[1, 4], &on);
        assert_eq!(compared_sizes(&two, 1, &[]), vec![10], "two limits");
    }
}
