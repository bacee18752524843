//! How sure a number is: means with 95 % confidence intervals (Student t), Welch's test on
//! two sets of wall times, the Mann–Whitney U test on two latency histograms, a seeded
//! bootstrap for ratios (speedups), and the verdict rule `report A B` applies.
//!
//! Method, in words (the README repeats it):
//! - A cell measured K ≥ 2 times reports the mean wall time ± t(0.975, K−1) · s / √K.
//! - Its speedup is mean(baseline walls) / mean(cell walls); the interval is the 2.5–97.5 %
//!   percentile range of that ratio over 2,000 bootstrap resamples of the repeats (seeded, so
//!   a report re-renders identically).
//! - Two latency distributions are compared with Mann–Whitney U (normal approximation, tie
//!   and continuity corrected) computed from histogram buckets; the change is the change of
//!   the median, its interval combines each median's order-statistic interval.
//! - Where two runs send the same rows (pooled and unpooled), their calls pair up by
//!   (row, step): the Wilcoxon signed-rank test on the paired differences, and the
//!   Hodges–Lehmann median difference with its order-statistic interval ([`paired_difference`]).
//! - Two sets of wall times (repeats) are compared with Welch's t-test.
//! - p-values of the cells of one comparison are Holm–Bonferroni adjusted ([`holm`]).
//! - A verdict is `slower` / `faster` only when p < 0.05 *and* the change exceeds the noise
//!   threshold ([`NOISE`], 5 %): with thousands of calls a 1 % shift is significant, yet two
//!   identical sweeps on a busy machine differ by that much (measured: up to ~3 %).

mod dist;
mod rank;
mod signed_rank;

pub use dist::{normal_cdf, t_cdf, t_quantile};
pub use rank::{Buckets, mann_whitney, median_difference, median_interval};
pub use signed_rank::{hodges_lehmann, paired_difference, wilcoxon_signed_rank};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Significance level of every test.
pub const ALPHA: f64 = 0.05;
/// Smallest relative change that can be called `faster` or `slower` (5 %).
pub const NOISE: f64 = 0.05;
/// Bootstrap resamples for a speedup interval.
const RESAMPLES: usize = 2_000;
/// Seed of the bootstrap: the same repeats give the same interval every time.
const SEED: u64 = 0x6c6f_6164_6368_6e21;

/// A 95 % confidence interval around an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The estimate (a mean, a ratio, a change).
    pub mean: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Interval {
    /// Half the interval's width: the `± x` a table prints.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }
}

/// Arithmetic mean (0 for no values).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1 denominator; 0 below two values).
pub fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Mean ± t(0.975, n−1)·s/√n; None below two values (one sample says nothing of its noise).
pub fn mean_interval(xs: &[f64]) -> Option<Interval> {
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let m = mean(xs);
    let half = t_quantile(1.0 - ALPHA / 2.0, n - 1.0) * (variance(xs) / n).sqrt();
    Some(Interval {
        mean: m,
        lo: m - half,
        hi: m + half,
    })
}

/// A two-sample test result: the difference B − A with its 95 % interval and a two-sided p.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// B − A, with its interval.
    pub diff: Interval,
    /// Two-sided p-value of "no difference".
    pub p: f64,
}

/// Welch's t-test of mean(b) − mean(a); None unless both have two values or more.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Difference> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (variance(a) / na, variance(b) / nb);
    let d = mean(b) - mean(a);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        let p = if d == 0.0 { 1.0 } else { 0.0 };
        return Some(Difference {
            diff: Interval {
                mean: d,
                lo: d,
                hi: d,
            },
            p,
        });
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0));
    let half = t_quantile(1.0 - ALPHA / 2.0, df) * se;
    let p = 2.0 * (1.0 - t_cdf((d / se).abs(), df));
    Some(Difference {
        diff: Interval {
            mean: d,
            lo: d - half,
            hi: d + half,
        },
        p: p.clamp(0.0, 1.0),
    })
}

/// mean(num) / mean(den) with a 95 % percentile-bootstrap interval (seeded); the plain ratio
/// without interval when either side has one value.
pub fn ratio_of_means(num: &[f64], den: &[f64]) -> Option<Interval> {
    let (mn, md) = (mean(num), mean(den));
    if num.is_empty() || den.is_empty() || md <= 0.0 {
        return None;
    }
    let ratio = mn / md;
    if num.len() < 2 || den.len() < 2 {
        return Some(Interval {
            mean: ratio,
            lo: ratio,
            hi: ratio,
        });
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut resample = |xs: &[f64]| {
        (0..xs.len())
            .map(|_| xs[rng.random_range(0..xs.len())])
            .sum::<f64>()
            / xs.len() as f64
    };
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let n = resample(num);
            let d = resample(den);
            if d > 0.0 { n / d } else { ratio }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Some(Interval {
        mean: ratio,
        lo: at(ALPHA / 2.0),
        hi: at(1.0 - ALPHA / 2.0),
    })
}

/// Holm–Bonferroni adjusted p-values, in the input's order: comparing many cells at α = 0.05
/// would otherwise call some cell of two identical sweeps changed most of the time (32 cells:
/// 1 − 0.95³² ≈ 81 %). Holm keeps the chance of any false call at α and is never weaker than
/// Bonferroni.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![1.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The three words a comparison ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Not significant, or within the noise threshold.
    #[serde(rename = "no change")]
    NoChange,
    /// B is significantly and noticeably faster than A.
    #[serde(rename = "faster")]
    Faster,
    /// B is significantly and noticeably slower than A.
    #[serde(rename = "slower")]
    Slower,
}

impl Verdict {
    /// The rule: p < α and |relative change| > [`NOISE`]; positive change is slower.
    pub fn of(relative_change: f64, p: f64) -> Verdict {
        if p >= ALPHA || relative_change.abs() <= NOISE || !relative_change.is_finite() {
            Verdict::NoChange
        } else if relative_change > 0.0 {
            Verdict::Slower
        } else {
            Verdict::Faster
        }
    }

    /// `no change`, `faster`, `slower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoChange => "no change",
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_interval_matches_a_hand_computation() {
        // mean 5, s = 1.5811, t(0.975, 4) = 2.7764: half = 2.7764 · 1.5811 / √5 = 1.9632.
        let ci = mean_interval(&[3.0, 4.0, 5.0, 6.0, 7.0]).unwrap();
        assert!((ci.mean - 5.0).abs() < 1e-12);
        assert!((ci.half_width() - 1.963_2).abs() < 1e-3, "{ci:?}");
        assert!(mean_interval(&[1.0]).is_none(), "one value has no interval");
    }

    #[test]
    fn welch_matches_a_known_example() {
        // Computed by hand (and scipy.stats.ttest_ind(equal_var=False)):
        // a = 1..=5 (mean 3, var 2.5), b = 3..=7 shifted by 2 → t = 2, df = 8, p = 0.0805.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [3.0, 4.0, 5.0, 6.0, 7.0];
        let d = welch(&a, &b).unwrap();
        assert!((d.diff.mean - 2.0).abs() < 1e-12);
        assert!((d.p - 0.080_5).abs() < 1e-3, "{}", d.p);
        // Interval: 2 ± t(0.975, 8) · 1 = 2 ± 2.306.
        assert!((d.diff.half_width() - 2.306).abs() < 1e-3, "{:?}", d.diff);
    }

    #[test]
    fn bootstrap_ratio_is_seeded_and_brackets_the_ratio() {
        let base = [1000.0, 1020.0, 990.0, 1010.0, 1005.0];
        let run = [250.0, 255.0, 245.0, 252.0, 248.0];
        let a = ratio_of_means(&base, &run).unwrap();
        let b = ratio_of_means(&base, &run).unwrap();
        assert_eq!(a, b, "same repeats, same interval");
        assert!((a.mean - 1005.0 / 250.0).abs() < 1e-9);
        assert!(a.lo < a.mean && a.mean < a.hi, "{a:?}");
        assert!(a.half_width() < 0.1, "{a:?}");
    }

    #[test]
    fn holm_adjusts_like_the_textbook() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert!(holm(&[]).is_empty());
        assert_eq!(holm(&[0.7]), vec![0.7]);
    }

    #[test]
    fn verdict_needs_significance_and_a_change_beyond_the_noise() {
        assert_eq!(Verdict::of(0.20, 0.001), Verdict::Slower);
        assert_eq!(Verdict::of(-0.20, 0.001), Verdict::Faster);
        assert_eq!(Verdict::of(0.20, 0.2), Verdict::NoChange);
        assert_eq!(Verdict::of(0.03, 1e-9), Verdict::NoChange);
        assert_eq!(
            serde_json::to_string(&Verdict::NoChange).unwrap(),
            "\"no change\""
        );
    }
}
