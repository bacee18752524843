//! Rank statistics from histograms: the Mann–Whitney U test and the median's interval,
//! computed from `(value, count)` buckets, so a report.json's percentile rows (or a merged
//! HdrHistogram) suffice and no per-call latency has to be kept.

use super::{Difference, Interval, normal_cdf};
use crate::metrics::DistributionRow;

/// A histogram as ascending `(value, count)` buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

impl Buckets {
    /// Plain values, one count each (tests, wall times).
    pub fn from_values(values: &[f64]) -> Buckets {
        let mut v: Vec<(f64, u64)> = values.iter().map(|&x| (x, 1)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Buckets(v)
    }

    /// From a report's percentile rows (cumulative counts): each row's new values are put at
    /// the row's value, so the resolution is that of the rows.
    pub fn from_distribution(rows: &[DistributionRow]) -> Buckets {
        let mut out: Vec<(f64, u64)> = Vec::new();
        let mut seen = 0u64;
        for r in rows {
            let n = r.total_count.saturating_sub(seen);
            seen = seen.max(r.total_count);
            if n == 0 {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.0 == r.value_us as f64 => last.1 += n,
                _ => out.push((r.value_us as f64, n)),
            }
        }
        Buckets(out)
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|b| b.1).sum()
    }

    /// The value at rank `q` (0..=1) of the distribution; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.count();
        let target = (q.clamp(0.0, 1.0) * n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(v, c) in &self.0 {
            seen += c;
            if seen >= target {
                return v;
            }
        }
        self.0.last().map_or(0.0, |b| b.0)
    }
}

/// Mann–Whitney U of B against A: the difference is in U_B − n_a·n_b/2 (positive: B tends
/// larger), p two-sided from the normal approximation with tie and continuity correction.
/// None when either side is empty.
pub fn mann_whitney(a: &Buckets, b: &Buckets) -> Option<(f64, f64)> {
    let (na, nb) = (a.count() as f64, b.count() as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    // Walk both bucket lists in value order; each distinct value is one tie group.
    let (mut i, mut j) = (0, 0);
    let (mut below, mut rank_sum_b, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    while i < a.0.len() || j < b.0.len() {
        let v = match (a.0.get(i), b.0.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        let mut ca = 0.0;
        let mut cb = 0.0;
        while let Some(x) = a.0.get(i).filter(|x| x.0 == v) {
            ca += x.1 as f64;
            i += 1;
        }
        while let Some(y) = b.0.get(j).filter(|y| y.0 == v) {
            cb += y.1 as f64;
            j += 1;
        }
        let t = ca + cb;
        let mid_rank = below + (t + 1.0) / 2.0;
        rank_sum_b += cb * mid_rank;
        ties += t * t * t - t;
        below += t;
    }
    let n = na + nb;
    let u_b = rank_sum_b - nb * (nb + 1.0) / 2.0;
    let centre = na * nb / 2.0;
    let var = na * nb / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let d = u_b - centre;
    if var <= 0.0 {
        return Some((u_b, if d == 0.0 { 1.0 } else { 0.0 }));
    }
    let z = ((d.abs() - 0.5).max(0.0)) / var.sqrt();
    Some((u_b, (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)))
}

/// The 95 % interval of a median from order statistics: the values at ranks
/// n/2 ± 1.96·√n/2 (the binomial's normal approximation).
pub fn median_interval(h: &Buckets) -> Option<Interval> {
    let n = h.count() as f64;
    if n == 0.0 {
        return None;
    }
    let z = 1.959_964;
    let spread = z * n.sqrt() / 2.0 / n;
    Some(Interval {
        mean: h.quantile(0.5),
        lo: h.quantile(0.5 - spread),
        hi: h.quantile(0.5 + spread),
    })
}

/// B's median against A's: the difference B − A with an interval combining the two medians'
/// intervals (half-widths in quadrature), and Mann–Whitney's p.
pub fn median_difference(a: &Buckets, b: &Buckets) -> Option<Difference> {
    let (ia, ib) = (median_interval(a)?, median_interval(b)?);
    let (_, p) = mann_whitney(a, b)?;
    let d = ib.mean - ia.mean;
    let half = (ia.half_width().powi(2) + ib.half_width().powi(2)).sqrt();
    Some(Difference {
        diff: Interval {
            mean: d,
            lo: d - half,
            hi: d + half,
        },
        p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_matches_the_textbook_example() {
        // A classic example: U = 3 for the smaller sample; normal approximation with
        // continuity correction: z = (7 − 0.5) / √16.667 = 1.592, p = 0.111.
        let a = Buckets::from_values(&[19.0, 22.0, 16.0, 29.0, 24.0]);
        let b = Buckets::from_values(&[20.0, 11.0, 17.0, 12.0]);
        let (u_b, p) = mann_whitney(&a, &b).unwrap();
        assert_eq!(u_b, 3.0);
        assert!((p - 0.111_3).abs() < 1e-3, "{p}");
    }

    #[test]
    fn mann_whitney_handles_ties_in_buckets() {
        // Same distribution in buckets: no difference at all.
        let a = Buckets(vec![(10.0, 40), (20.0, 60)]);
        let (u, p) = mann_whitney(&a, &a.clone()).unwrap();
        assert_eq!(u, 100.0 * 100.0 / 2.0);
        assert_eq!(p, 1.0);
        // B shifted up a bucket: overwhelmingly significant.
        let b = Buckets(vec![(20.0, 40), (30.0, 60)]);
        let (u, p) = mann_whitney(&a, &b).unwrap();
        assert!(u > 5000.0 && p < 1e-6, "{u} {p}");
    }

    #[test]
    fn buckets_from_distribution_rows_undo_the_cumulative_counts() {
        let rows =
            [(100, 0.5, 5), (100, 0.6, 6), (200, 1.0, 10)].map(|(v, p, c)| DistributionRow {
                value_us: v,
                percentile: p,
                total_count: c,
            });
        let b = Buckets::from_distribution(&rows);
        assert_eq!(b.0, vec![(100.0, 6), (200.0, 4)]);
        assert_eq!(b.quantile(0.5), 100.0);
        assert_eq!(b.quantile(0.7), 200.0);
    }

    #[test]
    fn median_interval_narrows_with_more_values() {
        let small: Vec<f64> = (1..=20).map(f64::from).collect();
        let large: Vec<f64> = (1..=2000).map(|x| f64::from(x) / 100.0).collect();
        let s = median_interval(&Buckets::from_values(&small)).unwrap();
        let l = median_interval(&Buckets::from_values(&large)).unwrap();
        assert_eq!(s.mean, 10.0);
        assert!(s.lo <= 10.0 && s.hi >= 11.0, "{s:?}");
        assert!(l.half_width() < s.half_width() / 3.0, "{l:?} vs {s:?}");
    }
}
