//! Drawing one latency from an RNG: the only randomness in [`Latency`], kept apart from the
//! text form so the numeric edge cases (u128 spans, negative or NaN draws) are in one place.

use std::time::Duration;

use rand_distr::{Distribution, LogNormal, Normal};

use super::Latency;

impl Latency {
    /// Draws one latency. Uses only `rng`, so a seeded RNG gives a repeatable sequence.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => {
                if max <= min {
                    return min;
                }
                let span = (max - min).as_nanos();
                // u128 keeps durations beyond u64 nanoseconds (584 years) from overflowing.
                let offset = uniform_u128(rng, span);
                min + duration_from_nanos(offset)
            }
            Latency::Normal { mean, std_dev } => {
                match Normal::new(mean.as_secs_f64(), std_dev.as_secs_f64()) {
                    Ok(dist) => secs_to_duration(dist.sample(rng)),
                    Err(_) => mean,
                }
            }
            Latency::LogNormal { median, sigma } => {
                if median.is_zero() {
                    return Duration::ZERO;
                }
                match LogNormal::new(median.as_secs_f64().ln(), sigma) {
                    Ok(dist) => secs_to_duration(dist.sample(rng)),
                    Err(_) => median,
                }
            }
        }
    }
}

/// Uniform integer in `0..=span` without `RngExt` range machinery (u128 is not supported there).
fn uniform_u128(rng: &mut impl rand::Rng, span: u128) -> u128 {
    if let Ok(span64) = u64::try_from(span) {
        if span64 == u64::MAX {
            return u128::from(rng.next_u64());
        }
        // Lemire's multiply-shift: the bias is below 2^-64 * span, invisible at our scales.
        let r = u128::from(rng.next_u64());
        return (r * (u128::from(span64) + 1)) >> 64;
    }
    let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    r % (span + 1)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is < 1e9, so it always fits in u32.
    let sub = (nanos % 1_000_000_000) as u32;
    Duration::new(secs, sub)
}

/// Converts seconds to a Duration, clamping negatives and NaN to zero and overflow to MAX.
pub(super) fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn samples_stay_within_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        let uniform = Latency::Uniform {
            min: ms(30),
            max: ms(150),
        };
        let normal = Latency::Normal {
            mean: ms(10),
            std_dev: ms(50),
        };
        let lognormal = Latency::LogNormal {
            median: ms(90),
            sigma: 0.5,
        };
        let (mut below_median, mut clamped) = (0, 0);
        for _ in 0..10_000 {
            let u = uniform.sample(&mut rng);
            assert!(u >= ms(30) && u <= ms(150), "{u:?}");
            // Clamped: a draw below zero becomes zero, never a panic (P(Z < -0.2) = 0.42).
            if normal.sample(&mut rng).is_zero() {
                clamped += 1;
            }
            if lognormal.sample(&mut rng) < ms(90) {
                below_median += 1;
            }
        }
        assert!((4_500..5_500).contains(&below_median), "{below_median}");
        assert!((3_700..4_700).contains(&clamped), "{clamped}");
        assert_eq!(Latency::Fixed(ms(80)).sample(&mut rng), ms(80));
    }

    #[test]
    fn sampling_is_repeatable_with_a_seed() {
        let l: Latency = "uniform:30ms..150ms".parse().unwrap();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..10).map(|_| l.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
