//! What pooling saves, per limit of a size measured both ways: the test behind each
//! "unpooled costs …" line of the reports, and which test it was.
//!
//! A pooled and an unpooled run of one cell send the same rows, and a server whose latency
//! depends on the request (the mock seeds it by content; a real API's depends on the prompt)
//! gives both runs' calls of one (row, step) the same share of the spread. Those calls are
//! paired: the Wilcoxon signed-rank test on their differences, and the Hodges–Lehmann median
//! difference with its order-statistic interval ([`crate::stats::paired_difference`]). Where
//! nothing pairs (a merged report, one loaded from before pairing existed, a run with every
//! call retried) the two call-latency histograms are compared unpaired (Mann–Whitney U, the
//! difference of the medians).

use serde::{Deserialize, Serialize};

use crate::metrics::RunSummary;
use crate::record::Pooling;
use crate::stats::{self, Buckets, Difference};

/// Which test gave a [`PoolingTest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingMethod {
    /// Paired by (row, step): Wilcoxon signed-rank, Hodges–Lehmann median difference.
    WilcoxonSignedRank,
    /// Unpaired: Mann–Whitney U on the two histograms, difference of the medians.
    MannWhitneyU,
}

impl PoolingMethod {
    /// How the reports name the test.
    pub fn describe(self, pairs: Option<u64>) -> String {
        match self {
            PoolingMethod::WilcoxonSignedRank => format!(
                "Wilcoxon signed-rank on {} calls paired by row and step; Hodges–Lehmann median",
                pairs.unwrap_or(0)
            ),
            PoolingMethod::MannWhitneyU => {
                "Mann–Whitney U, unpaired; difference of the medians".to_string()
            }
        }
    }
}

/// Unpooled against pooled call latency at one size and limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolingTest {
    /// Batch size.
    pub size: usize,
    /// Concurrency limit.
    pub limit: usize,
    /// The test used.
    pub test: PoolingMethod,
    /// Calls paired by (row, step) (paired test only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<u64>,
    /// Unpooled − pooled latency per call, ms: the median of the paired differences
    /// (Hodges–Lehmann), or the difference of the two medians (unpaired).
    pub unpooled_cost_ms: f64,
    /// Its 95 % interval, ms.
    pub interval_ms: [f64; 2],
    /// Two-sided p-value of "no difference".
    pub p_value: f64,
}

impl PoolingTest {
    fn new(size: usize, limit: usize, test: PoolingMethod, d: Difference) -> PoolingTest {
        PoolingTest {
            size,
            limit,
            test,
            pairs: None,
            unpooled_cost_ms: d.diff.mean / 1000.0,
            interval_ms: [d.diff.lo / 1000.0, d.diff.hi / 1000.0],
            p_value: d.p,
        }
    }

    /// The paired test of two runs' pairing latencies (µs + 1 per slot, 0: none); None when
    /// no slot holds a call of both.
    pub fn paired(size: usize, limit: usize, on: &[u32], off: &[u32]) -> Option<PoolingTest> {
        let diffs: Vec<i64> = on
            .iter()
            .zip(off)
            .filter(|&(&a, &b)| a != 0 && b != 0)
            .map(|(&a, &b)| i64::from(b) - i64::from(a))
            .collect();
        let d = stats::paired_difference(&diffs)?;
        let mut t = PoolingTest::new(size, limit, PoolingMethod::WilcoxonSignedRank, d);
        t.pairs = Some(diffs.len() as u64);
        Some(t)
    }

    /// The unpaired test of two runs' call-latency histograms.
    pub fn unpaired(on: &RunSummary, off: &RunSummary) -> Option<PoolingTest> {
        let d = stats::median_difference(
            &Buckets::from_distribution(&on.call_distribution),
            &Buckets::from_distribution(&off.call_distribution),
        )?;
        Some(PoolingTest::new(
            on.key.size,
            on.key.limit,
            PoolingMethod::MannWhitneyU,
            d,
        ))
    }
}

/// One test per size and limit measured both ways (auto runs aside), in `runs`' order: the
/// paired one from `paired` where there is one, else the unpaired one.
pub fn tests(runs: &[RunSummary], paired: &[PoolingTest]) -> Vec<PoolingTest> {
    runs.iter()
        .filter(|r| r.key.pooling == Pooling::On && !r.auto)
        .filter_map(|on| {
            let (size, limit) = (on.key.size, on.key.limit);
            let off = runs.iter().find(|r| {
                (r.key.size, r.key.limit, r.key.pooling) == (size, limit, Pooling::Off) && !r.auto
            })?;
            paired
                .iter()
                .find(|t| (t.size, t.limit) == (size, limit))
                .copied()
                .or_else(|| PoolingTest::unpaired(on, off))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slots_both_runs_hold_pair_and_the_cost_is_unpooled_minus_pooled() {
        // µs + 1 per (row, step); 0: that call failed or was retried in that run.
        let on = [10_001, 0, 20_001, 30_001, 40_001, 50_001];
        let off = [11_501, 99_999, 0, 31_501, 41_401, 51_601];
        let t = PoolingTest::paired(2, 5, &on, &off).unwrap();
        assert_eq!(t.test, PoolingMethod::WilcoxonSignedRank);
        assert_eq!(t.pairs, Some(4));
        assert_eq!(t.unpooled_cost_ms, 1.5);
        assert!(t.interval_ms[0] <= 1.5 && t.interval_ms[1] >= 1.5, "{t:?}");
        assert_eq!(PoolingTest::paired(2, 5, &[0, 1], &[1, 0]), None);
    }
}
