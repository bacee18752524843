//! Open-loop arrival processes: when each chain of a rate step is *meant* to start.
//!
//! The schedule is fixed before anything is sent and never waits for the server, so a slow
//! server cannot slow the offered load (that is what makes the loop open). Seeded: the same
//! seed, rate and process give the same arrival times, as vLLM's `bench serve` does.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp, Gamma};
use thiserror::Error;

/// The process that spaces arrivals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// Exactly 1/rate apart (wrk2, k6 constant-arrival-rate).
    Constant,
    /// Exponential gaps of mean 1/rate: independent users.
    Poisson,
    /// Gamma gaps of mean 1/rate and coefficient of variation `cv` (1 = Poisson, > 1 burstier).
    Gamma {
        /// Standard deviation of a gap over its mean.
        cv: f64,
    },
}

/// A bad `--arrivals` value.
#[derive(Debug, Error, PartialEq)]
pub enum ArrivalsError {
    /// Not one of the known forms.
    #[error("--arrivals: expected constant, poisson or gamma:CV, got {0:?}")]
    Unknown(String),
    /// A CV that is not a positive finite number.
    #[error("--arrivals: gamma:CV needs a positive CV, got {0:?}")]
    BadCv(String),
}

impl std::str::FromStr for Arrivals {
    type Err = ArrivalsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "constant" => Ok(Arrivals::Constant),
            "poisson" => Ok(Arrivals::Poisson),
            _ => match s.strip_prefix("gamma:") {
                Some(cv) => match cv.parse::<f64>() {
                    Ok(cv) if cv.is_finite() && cv > 0.0 => Ok(Arrivals::Gamma { cv }),
                    _ => Err(ArrivalsError::BadCv(cv.to_string())),
                },
                None => Err(ArrivalsError::Unknown(s.to_string())),
            },
        }
    }
}

impl std::fmt::Display for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arrivals::Constant => f.write_str("constant"),
            Arrivals::Poisson => f.write_str("poisson"),
            Arrivals::Gamma { cv } => write!(f, "gamma:{cv}"),
        }
    }
}

/// The arrival times of one rate step, as offsets from its start: an endless iterator (the
/// caller stops at `--n` arrivals or at `--duration`).
#[derive(Debug)]
pub struct Schedule {
    gaps: Gaps,
    rate: f64,
    index: u64,
    /// Sum of the gaps so far, seconds (f64 keeps sub-ns gaps from rounding away).
    elapsed: f64,
}

#[derive(Debug)]
enum Gaps {
    Constant,
    Exp(StdRng, Exp<f64>),
    Gamma(StdRng, Gamma<f64>),
}

impl Schedule {
    /// The schedule of `rate` arrivals per second (> 0) under `arrivals`, seeded by `seed`.
    /// The first arrival is at 0 for a constant process, one random gap in otherwise.
    pub fn new(arrivals: Arrivals, rate: f64, seed: u64) -> Schedule {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let rng = StdRng::seed_from_u64(seed);
        let gaps = match arrivals {
            Arrivals::Constant => Gaps::Constant,
            Arrivals::Poisson => match Exp::new(rate) {
                Ok(exp) => Gaps::Exp(rng, exp),
                Err(_) => Gaps::Constant,
            },
            Arrivals::Gamma { cv } => {
                // Mean shape × scale = 1/rate; CV² = 1/shape.
                let shape = 1.0 / (cv * cv);
                match Gamma::new(shape, 1.0 / (rate * shape)) {
                    Ok(g) => Gaps::Gamma(rng, g),
                    Err(_) => Gaps::Constant,
                }
            }
        };
        Schedule {
            gaps,
            rate,
            index: 0,
            elapsed: 0.0,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let at = match &mut self.gaps {
            // From the index, not a running sum: no drift over millions of arrivals.
            Gaps::Constant => self.index as f64 / self.rate,
            Gaps::Exp(rng, d) => {
                self.elapsed += d.sample(rng);
                self.elapsed
            }
            Gaps::Gamma(rng, d) => {
                self.elapsed += d.sample(rng);
                self.elapsed
            }
        };
        self.index += 1;
        Some(Duration::from_secs_f64(at.clamp(0.0, 1e9)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(a: Arrivals, rate: f64, n: usize) -> Vec<f64> {
        let times: Vec<f64> = Schedule::new(a, rate, 7)
            .take(n + 1)
            .map(|d| d.as_secs_f64())
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn mean_cv(g: &[f64]) -> (f64, f64) {
        let n = g.len() as f64;
        let mean = g.iter().sum::<f64>() / n;
        let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn parses_every_form_and_refuses_the_rest() {
        assert_eq!("constant".parse(), Ok(Arrivals::Constant));
        assert_eq!("poisson".parse(), Ok(Arrivals::Poisson));
        assert_eq!("gamma:2.5".parse(), Ok(Arrivals::Gamma { cv: 2.5 }));
        assert!(matches!(
            "gamma:0".parse::<Arrivals>(),
            Err(ArrivalsError::BadCv(_))
        ));
        assert!(matches!(
            "uniform".parse::<Arrivals>(),
            Err(ArrivalsError::Unknown(_))
        ));
    }

    #[test]
    fn constant_arrivals_are_exactly_one_over_rate_apart() {
        let times: Vec<Duration> = Schedule::new(Arrivals::Constant, 4.0, 1).take(5).collect();
        let ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 250, 500, 750, 1000]);
    }

    #[test]
    fn same_seed_same_schedule() {
        let a: Vec<_> = Schedule::new(Arrivals::Poisson, 50.0, 3)
            .take(100)
            .collect();
        let b: Vec<_> = Schedule::new(Arrivals::Poisson, 50.0, 3)
            .take(100)
            .collect();
        let c: Vec<_> = Schedule::new(Arrivals::Poisson, 50.0, 4)
            .take(100)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn gamma_gaps_have_the_asked_mean_and_cv() {
        let (mean, cv) = mean_cv(&gaps(Arrivals::Gamma { cv: 2.0 }, 100.0, 50_000));
        assert!((mean - 0.01).abs() < 0.0005, "mean {mean}");
        assert!((cv - 2.0).abs() < 0.1, "cv {cv}");
        let (_, cv) = mean_cv(&gaps(Arrivals::Gamma { cv: 0.5 }, 100.0, 50_000));
        assert!((cv - 0.5).abs() < 0.03, "cv {cv}");
    }

    /// Kolmogorov–Smirnov: Poisson gaps against the exponential CDF 1 − e^(−rate·x).
    /// p > 0.01 needs D·√n below 1.628 (the asymptotic critical value at α = 0.01).
    #[test]
    fn poisson_gaps_pass_kolmogorov_smirnov_against_the_exponential() {
        let rate = 200.0;
        let mut g = gaps(Arrivals::Poisson, rate, 5_000);
        g.sort_by(f64::total_cmp);
        let n = g.len() as f64;
        let d = g
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let cdf = 1.0 - (-rate * x).exp();
                (cdf - i as f64 / n)
                    .abs()
                    .max(((i + 1) as f64 / n - cdf).abs())
            })
            .fold(0.0, f64::max);
        let statistic = d * n.sqrt();
        // Asymptotic p-value: 2 Σ (−1)^(k−1) e^(−2k²λ²).
        let p: f64 = 2.0
            * (1..100)
                .map(|k: i32| {
                    let k = f64::from(k);
                    (-1f64).powf(k - 1.0) * (-2.0 * k * k * statistic * statistic).exp()
                })
                .sum::<f64>();
        assert!(p > 0.01, "KS D={d:.4} λ={statistic:.3} p={p:.4}");
        // And a constant schedule fails it: the test has teeth.
        let mut c = gaps(Arrivals::Constant, rate, 5_000);
        c.sort_by(f64::total_cmp);
        let d_const = c
            .iter()
            .enumerate()
            .map(|(i, &x)| ((1.0 - (-rate * x).exp()) - i as f64 / n).abs())
            .fold(0.0, f64::max);
        assert!(d_const * n.sqrt() > 1.628, "{d_const}");
    }
}
