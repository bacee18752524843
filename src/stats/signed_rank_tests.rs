//! Tests of [`super`] against values computed with SciPy 1.17
//! (`scipy.stats.wilcoxon(d, correction=True, method="approx")`, and the Walsh averages
//! sorted in NumPy for the Hodges–Lehmann interval).

use super::*;

/// A small sample with a zero and tied |d| (5, 5).
const SMALL: [i64; 10] = [15, -7, 5, 20, 0, -9, 17, -12, 5, -10];

/// 40 differences with a shift of about +270 and a tie in |d| (642, −642).
const SHIFTED: [i64; 40] = [
    861, 350, 444, 785, 275, 591, 683, -290, -562, -170, -194, 747, 810, -642, 149, 663, -440, 625,
    -460, 98, 656, -166, -104, -205, 501, -243, 934, 62, 115, 157, 282, 235, 165, 942, 642, 618,
    470, 345, -105, 932,
];

#[test]
fn signed_rank_matches_scipy_with_a_zero_and_ties() {
    let (t_plus, p) = wilcoxon_signed_rank(&SMALL).unwrap();
    assert_eq!(t_plus, 27.0);
    assert!((p - 0.635_289).abs() < 1e-5, "{p}");
}

#[test]
fn signed_rank_matches_scipy_on_a_shifted_sample() {
    let (t_plus, p) = wilcoxon_signed_rank(&SHIFTED).unwrap();
    // SciPy reports min(T+, T−) = 176.5; T+ + T− = 40·41/2 = 820.
    assert_eq!(t_plus, 820.0 - 176.5);
    assert!((p - 0.001_737_04).abs() < 1e-7, "{p}");
}

#[test]
fn signed_rank_has_nothing_to_test_without_a_non_zero_difference() {
    assert_eq!(wilcoxon_signed_rank(&[0, 0, 0]), None);
    assert_eq!(wilcoxon_signed_rank(&[]), None);
    let d = paired_difference(&[0, 0, 0]).unwrap();
    assert_eq!(
        (d.diff.mean, d.diff.lo, d.diff.hi, d.p),
        (0.0, 0.0, 0.0, 1.0)
    );
}

#[test]
fn hodges_lehmann_matches_the_sorted_walsh_averages() {
    let hl = hodges_lehmann(&SMALL).unwrap();
    assert_eq!((hl.mean, hl.lo, hl.hi), (2.5, -8.5, 12.5));
    let hl = hodges_lehmann(&SHIFTED).unwrap();
    assert_eq!((hl.mean, hl.lo, hl.hi), (267.25, 113.5, 423.5));
}

#[test]
fn hodges_lehmann_of_one_value_is_that_value() {
    let hl = hodges_lehmann(&[7]).unwrap();
    assert_eq!((hl.mean, hl.lo, hl.hi), (7.0, 7.0, 7.0));
    assert_eq!(hodges_lehmann(&[]), None);
}

#[test]
fn walsh_sums_are_counted_without_listing_them() {
    let mut d = SHIFTED.to_vec();
    d.sort_unstable();
    let brute = |s: i64| {
        let mut c = 0u64;
        for i in 0..d.len() {
            for j in i..d.len() {
                c += u64::from(d[i] + d[j] <= s);
            }
        }
        c
    };
    for s in [-2000, -642, 0, 535, 1284, 5000] {
        assert_eq!(sums_at_most(&d, s), brute(s), "s = {s}");
    }
}

#[test]
fn a_shift_inside_a_wide_spread_is_seen_once_the_spread_cancels() {
    // Pairs share a row's latency (30–150 ms); the second of each pays 1.5 ms more, ± 0.3.
    let mut state = 0x2545_f491_u64;
    let mut next = |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let diffs: Vec<i64> = (0..150)
        .map(|_| {
            let base = 30_000 + next(120_000) as i64;
            let b = base + 1_500 + next(600) as i64 - 300;
            b - base
        })
        .collect();
    let d = paired_difference(&diffs).unwrap();
    assert!(d.p < 1e-6, "{d:?}");
    assert!(d.diff.lo > 1_350.0 && d.diff.hi < 1_650.0, "{d:?}");
    assert!(d.diff.lo < 1_500.0 && d.diff.hi > 1_500.0, "{d:?}");
}
