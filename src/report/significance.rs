//! How sure each number is, as reports say it: `5.81 s ± 0.12` and `×4.6 ± 0.2` cells,
//! `report A B`'s per-cell verdicts (`no change` / `faster` / `slower`, see [`crate::stats`]
//! for the method), the pooled-vs-unpooled statement and the warnings that explain a noisy
//! cell.

use serde::Serialize;

use super::format;
use crate::metrics::RunSummary;
use crate::record::Pooling;
use crate::stats::{self, Buckets, Difference, Verdict};
use crate::sweep::{PoolingTest, SweepReport};

/// Fewer calls than this in a cell make its percentiles and tests shaky.
pub const FEW_CALLS: u64 = 30;
/// A repeat whose retry passes took more than this share of its wall time is dominated by
/// them: at 40 % the retries (backoff and a second wave) nearly double the batch's time.
const RETRY_SHARE: f64 = 0.4;

/// `5.81 s ± 0.12`: the half-width in the unit and precision the duration is shown in.
pub fn duration_pm(ms: f64, half_ms: f64) -> String {
    let base = format::duration_ms(ms);
    let half = half_ms.abs();
    if ms.round() < 1000.0 {
        let decimals = if ms < 1.0 {
            2
        } else if ms < 9.95 {
            1
        } else {
            0
        };
        return format!("{base} ± {half:.decimals$}");
    }
    let (s, hs) = (ms / 1000.0, half / 1000.0);
    if s < 9.995 {
        format!("{base} ± {hs:.2}")
    } else if s < 59.95 {
        format!("{base} ± {hs:.1}")
    } else {
        format!("{base} ± {hs:.0} s")
    }
}

/// `×4.6 ± 0.2`.
pub fn speedup_pm(x: f64, half: f64) -> String {
    let decimals = if x < 9.95 { 1 } else { 0 };
    format!("{} ± {:.decimals$}", format::speedup(x), half.abs())
}

/// A run's wall time as a table cell: with an interval when it was repeated.
pub fn wall_cell(run: &RunSummary) -> String {
    match run.repeats.as_ref().and_then(|r| r.wall_ms) {
        Some(ci) => duration_pm(run.wall_ms, ci.half_width()),
        None => format::duration_ms(run.wall_ms),
    }
}

/// A run's speedup as a table cell: with an interval when it was repeated.
pub fn speedup_cell(run: &RunSummary, speedup: f64) -> String {
    match run.repeats.as_ref().and_then(|r| r.speedup) {
        Some(ci) => speedup_pm(speedup, ci.half_width()),
        None => format::speedup(speedup),
    }
}

/// One test of one cell: relative change B against A, its 95 % interval, p and verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Test {
    /// (B − A) / A.
    pub change: f64,
    /// 95 % interval of the change, `[lo, hi]`.
    pub interval: [f64; 2],
    /// Two-sided p-value.
    pub p_value: f64,
    /// What the change amounts to.
    pub verdict: Verdict,
}

impl Test {
    fn relative(d: Difference, base: f64) -> Option<Test> {
        if base <= 0.0 {
            return None;
        }
        let change = d.diff.mean / base;
        Some(Test {
            change,
            interval: [d.diff.lo / base, d.diff.hi / base],
            p_value: d.p,
            verdict: Verdict::of(change, d.p),
        })
    }
}

/// One cell of `report A B`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellChange {
    /// `size=10 limit=5 pooling=on`.
    pub key: String,
    /// Batch size.
    pub size: usize,
    /// Concurrency limit.
    pub limit: usize,
    /// Pooling mode.
    pub pooling: Pooling,
    /// The deciding test's relative change (wall time with repeats, else median call latency).
    pub change: f64,
    /// Its 95 % interval.
    pub interval: [f64; 2],
    /// The deciding test's p-value, Holm–Bonferroni adjusted over the cells compared.
    pub p_value: f64,
    /// The deciding test's verdict: wall time when both sides were repeated, else call
    /// latency.
    pub verdict: Verdict,
    /// Median call latency: Mann–Whitney U on the two histograms.
    pub latency: Option<Test>,
    /// Mean wall time over the repeats: Welch's t-test (both sides repeated only).
    pub wall: Option<Test>,
}

/// Latency test of B's calls against A's.
fn latency_test(a: &RunSummary, b: &RunSummary) -> Option<Test> {
    let (ha, hb) = (
        Buckets::from_distribution(&a.call_distribution),
        Buckets::from_distribution(&b.call_distribution),
    );
    let d = stats::median_difference(&ha, &hb)?;
    Test::relative(d, ha.quantile(0.5))
}

/// Wall-time test over the repeats of both.
fn wall_test(a: &RunSummary, b: &RunSummary) -> Option<Test> {
    let (ra, rb) = (a.repeats.as_ref()?, b.repeats.as_ref()?);
    let d = stats::welch(&ra.walls_ms, &rb.walls_ms)?;
    Test::relative(d, stats::mean(&ra.walls_ms))
}

/// Compares one cell measured in both reports.
pub fn cell_change(a: &RunSummary, b: &RunSummary) -> CellChange {
    let latency = latency_test(a, b);
    let wall = wall_test(a, b);
    // Calls of one run share its conditions (machine load, a retry pass), so a per-call
    // test sees none of the run-to-run noise; with repeats the wall-time test, which does,
    // decides.
    let decide = wall.or(latency);
    CellChange {
        key: a.key.to_string(),
        size: a.key.size,
        limit: a.key.limit,
        pooling: a.key.pooling,
        change: decide.map_or(0.0, |t| t.change),
        interval: decide.map_or([0.0, 0.0], |t| t.interval),
        p_value: decide.map_or(1.0, |t| t.p_value),
        verdict: decide.map_or(Verdict::NoChange, |t| t.verdict),
        latency,
        wall,
    }
}

/// Every cell measured in both reports, in A's order.
/// The verdicts use Holm–Bonferroni adjusted p-values over the cells, so the chance of calling
/// any cell of two identical sweeps changed stays at α however many cells there are.
pub fn changes(a: &SweepReport, b: &SweepReport) -> Vec<CellChange> {
    let mut cells: Vec<CellChange> = a
        .runs
        .iter()
        .filter_map(|ra| {
            let rb = b.run(ra.key.size, ra.key.limit, ra.key.pooling)?;
            Some(cell_change(ra, rb))
        })
        .collect();
    let p: Vec<f64> = cells.iter().map(|c| c.p_value).collect();
    for (cell, p) in cells.iter_mut().zip(stats::holm(&p)) {
        cell.p_value = p;
        cell.verdict = Verdict::of(cell.change, p);
    }
    cells
}

/// `report A B --json`: the method's constants and every cell.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Significance level.
    pub alpha: f64,
    /// Smallest relative change called faster or slower.
    pub noise_threshold: f64,
    /// Cells whose verdict is `slower`.
    pub regressed: usize,
    /// Cells whose verdict is `faster`.
    pub improved: usize,
    /// Every cell measured in both.
    pub cells: Vec<CellChange>,
}

/// The comparison `report A B --json` prints and `--fail-on regressed>N` checks.
pub fn comparison(a: &SweepReport, b: &SweepReport) -> Comparison {
    let cells = changes(a, b);
    let count = |v| cells.iter().filter(|c| c.verdict == v).count();
    Comparison {
        alpha: stats::ALPHA,
        noise_threshold: stats::NOISE,
        regressed: count(Verdict::Slower),
        improved: count(Verdict::Faster),
        cells,
    }
}

/// `+20.1 % [+19.8, +20.4]`.
pub fn change_cell(change: f64, interval: [f64; 2]) -> String {
    format!(
        "{:+.1} % [{:+.1}, {:+.1}]",
        change * 100.0,
        interval[0] * 100.0,
        interval[1] * 100.0
    )
}

/// Per limit of the pooling table's size: "unpooled costs +1.5 ms [+1.2, +1.8] per call" when
/// the test finds the two call latency distributions differ, else "no difference detected",
/// each naming its test: paired by (row, step) where the calls paired up (the sweep's
/// `pooling` tests), else unpaired on the histograms (a report from before pairing, a merge).
pub fn pooling_statements(report: &SweepReport, size: usize) -> Vec<String> {
    let tests = if report.pooling.is_empty() {
        crate::sweep::pooling_tests(&report.runs, &[])
    } else {
        report.pooling.clone()
    };
    let mut tests: Vec<PoolingTest> = tests.into_iter().filter(|t| t.size == size).collect();
    tests.sort_by_key(|t| t.limit);
    tests.dedup_by_key(|t| t.limit);
    tests
        .into_iter()
        .map(|t| format!("{}: {}", format::limit_header(t.limit), pooling_line(&t)))
        .collect()
}

/// One pooling test in words, with its test named.
fn pooling_line(t: &PoolingTest) -> String {
    let method = t.test.describe(t.pairs);
    if t.p_value >= stats::ALPHA {
        return format!("no difference detected (p = {:.2}; {method})", t.p_value);
    }
    let p = if t.p_value < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {:.3}", t.p_value)
    };
    let bound = |ms: f64| {
        let d = format::delta_ms(ms);
        d.strip_suffix(" ms").unwrap_or(&d).to_string()
    };
    format!(
        "unpooled costs {} [{}, {}] per call ({p}; {method})",
        format::delta_ms(t.unpooled_cost_ms),
        bound(t.interval_ms[0]),
        bound(t.interval_ms[1]),
    )
}

/// Why a cell may be noisy: fewer than [`FEW_CALLS`] calls, or a repeat whose wall time is
/// mostly its retry passes.
pub fn noise_warnings(report: &SweepReport) -> Vec<String> {
    let mut out = Vec::new();
    for r in &report.runs {
        let name = || {
            format!(
                "{} chains, {}, {}",
                r.key.size,
                format::limit_header(r.key.limit),
                format::pooling_word(r.key.pooling)
            )
        };
        if r.calls < FEW_CALLS {
            out.push(format!(
                "{}: only {} calls; fewer than {FEW_CALLS} make its percentiles and \
                 comparisons unreliable",
                name(),
                r.calls
            ));
        }
        let pairs: Vec<(f64, f64)> = match &r.repeats {
            Some(rep) => rep
                .walls_ms
                .iter()
                .copied()
                .zip(rep.retry_walls_ms.iter().copied())
                .collect(),
            None => vec![(r.wall_ms, r.retry_wall_ms)],
        };
        for (i, (wall, retry)) in pairs.into_iter().enumerate() {
            if wall > 0.0 && retry / wall > RETRY_SHARE {
                let which = if r.repeats.is_some() {
                    format!("repeat {}", i + 1)
                } else {
                    "the run".to_string()
                };
                out.push(format!(
                    "{}: {which} spent {:.0} % of its wall time in retry passes; its wall time \
                     measures the retries, not the limit",
                    name(),
                    retry / wall * 100.0
                ));
            }
        }
    }
    out
}

/// `--fail-on` of `report A B`: `regressed>N` (N cells may be slower at most).
pub fn parse_regressed(s: &str) -> Result<usize, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    t.strip_prefix("regressed>")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{s:?}: report A B checks only 'regressed>N', e.g. 'regressed>0'"))
}

/// The broken check, if more than `max` cells are slower: each slower cell named.
pub fn regressed_verdict(c: &Comparison, max: usize) -> crate::threshold::Verdict {
    let mut v = crate::threshold::Verdict::default();
    if c.regressed > max {
        let cells: Vec<String> = c
            .cells
            .iter()
            .filter(|x| x.verdict == Verdict::Slower)
            .map(|x| format!("{} {}", x.key, change_cell(x.change, x.interval)))
            .collect();
        v.broken.push(format!(
            "regressed = {} > {max}: {}",
            c.regressed,
            cells.join(", ")
        ));
    }
    v
}

#[cfg(test)]
#[path = "significance_tests.rs"]
mod tests;
