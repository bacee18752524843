//! Paired statistics: the Wilcoxon signed-rank test on paired differences and the
//! Hodges–Lehmann estimate of their median with its distribution-free 95 % interval (order
//! statistics of the Walsh averages).
//!
//! Why paired: when two runs send the same rows and the server's latency depends on the row,
//! each row's latency spread is shared by both runs and cancels in the difference; a rank test
//! between the two unpaired samples has to see the shift through that whole spread.
//!
//! Differences are whole microseconds (`i64`), so every Walsh sum is an integer and the
//! interval's order statistics are found exactly by a binary search over sums, counting the
//! sums below a bound in O(n) on the sorted differences: no n² list of averages is built.

use super::{Difference, Interval, normal_cdf};

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_964;

/// Wilcoxon signed-rank on paired differences: `(T+, p)`, T+ the rank sum of the positive
/// differences. Zero differences are dropped (Wilcoxon's rule), tied |d| share their mid
/// rank, p is two-sided from the normal approximation with tie and continuity correction.
/// None when no difference is non-zero.
pub fn wilcoxon_signed_rank(diffs: &[i64]) -> Option<(f64, f64)> {
    let mut abs: Vec<(u64, bool)> = diffs
        .iter()
        .filter(|&&d| d != 0)
        .map(|&d| (d.unsigned_abs(), d > 0))
        .collect();
    if abs.is_empty() {
        return None;
    }
    abs.sort_unstable_by_key(|a| a.0);
    let n = abs.len() as f64;
    let (mut t_plus, mut ties, mut i) = (0.0f64, 0.0f64, 0usize);
    while i < abs.len() {
        let j = i + abs[i..].iter().take_while(|a| a.0 == abs[i].0).count();
        let t = (j - i) as f64;
        // Ranks i+1 ..= j share their mean.
        let mid = (i + 1 + j) as f64 / 2.0;
        t_plus += mid * abs[i..j].iter().filter(|a| a.1).count() as f64;
        ties += t * t * t - t;
        i = j;
    }
    let mean = n * (n + 1.0) / 4.0;
    let var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - ties / 48.0;
    let d = t_plus - mean;
    if var <= 0.0 {
        return Some((t_plus, if d == 0.0 { 1.0 } else { 0.0 }));
    }
    let z = (d.abs() - 0.5).max(0.0) / var.sqrt();
    Some((t_plus, (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)))
}

/// Walsh sums `d_i + d_j` (i ≤ j) of the sorted `d` that are at most `s`.
fn sums_at_most(d: &[i64], s: i64) -> u64 {
    let mut count = 0u64;
    // For growing i the largest partner j with d_i + d_j ≤ s can only move down.
    let mut j = d.len();
    for (i, &x) in d.iter().enumerate() {
        while j > 0 && x + d[j - 1] > s {
            j -= 1;
        }
        if j <= i {
            break;
        }
        count += (j - i) as u64;
    }
    count
}

/// The k-th smallest (1-based) Walsh sum of the sorted `d`.
fn kth_sum(d: &[i64], k: u64) -> i64 {
    let (mut lo, mut hi) = (2 * d[0], 2 * d[d.len() - 1]);
    while lo < hi {
        let mid = lo + (hi - lo).div_euclid(2);
        if sums_at_most(d, mid) >= k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The Hodges–Lehmann estimate (median of the Walsh averages (d_i + d_j)/2, i ≤ j) with its
/// 95 % interval: the Walsh averages of ranks k and M + 1 − k of the M = n(n+1)/2, where
/// k = ⌊M/2 − 1.96·√(n(n+1)(2n+1)/24)⌋ (the signed-rank statistic's normal approximation).
/// None for no values.
pub fn hodges_lehmann(diffs: &[i64]) -> Option<Interval> {
    if diffs.is_empty() {
        return None;
    }
    let mut d = diffs.to_vec();
    d.sort_unstable();
    let n = d.len() as f64;
    let m = d.len() as u64 * (d.len() as u64 + 1) / 2;
    let median = if m % 2 == 1 {
        kth_sum(&d, m.div_ceil(2)) as f64
    } else {
        (kth_sum(&d, m / 2) + kth_sum(&d, m / 2 + 1)) as f64 / 2.0
    };
    let spread = Z95 * (n * (n + 1.0) * (2.0 * n + 1.0) / 24.0).sqrt();
    let k = ((m as f64 / 2.0 - spread).floor() as u64).max(1);
    Some(Interval {
        mean: median / 2.0,
        lo: kth_sum(&d, k) as f64 / 2.0,
        hi: kth_sum(&d, m + 1 - k) as f64 / 2.0,
    })
}

/// B − A over pairs, as `diffs` = b − a: the Hodges–Lehmann median difference with its 95 %
/// interval and the signed-rank p. None for no pairs; p = 1 when every difference is 0.
pub fn paired_difference(diffs: &[i64]) -> Option<Difference> {
    let diff = hodges_lehmann(diffs)?;
    let p = wilcoxon_signed_rank(diffs).map_or(1.0, |(_, p)| p);
    Some(Difference { diff, p })
}

#[cfg(test)]
#[path = "signed_rank_tests.rs"]
mod tests;
