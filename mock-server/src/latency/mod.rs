//! Latency distributions: the [`Latency`] type, its mean, and where the rest lives.
//!
//! - `text`: the `fixed:80ms` / `uniform:30ms..150ms` / `normal:90ms,20ms` /
//!   `lognormal:90ms,0.5` text form, its parser and printer, and the serde adapters. The text
//!   form is the single representation used everywhere (CLI flags, TOML, serde, report
//!   headers), so `Display` must round-trip through `FromStr` exactly.
//! - `sample`: drawing one latency from a seeded RNG. Sampling never yields a negative
//!   duration: a normal draw below zero is clamped to zero, which shifts the mean of a wide
//!   normal slightly upwards (documented on [`Latency::mean`]).

mod sample;
mod text;

use std::time::Duration;

pub use text::{LatencyParseError, parse_duration};
pub(crate) use text::{ShortDuration, duration_str};

/// The base latency of a request (time to first token), drawn per request.
///
/// Durations are whole time values; `LogNormal::sigma` is the shape parameter of the
/// underlying normal (0.5 gives a moderate right tail, 1.0 a heavy one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Every request waits exactly this long.
    Fixed(Duration),
    /// Uniform between `min` and `max` (inclusive); `min <= max`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Normal with the given mean and standard deviation, clamped at zero.
    Normal {
        /// Mean of the distribution.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Log-normal with the given median; models the long right tail of real LLM APIs.
    LogNormal {
        /// Median (50th percentile) of the distribution.
        median: Duration,
        /// Standard deviation of `ln(latency)`; finite and `>= 0`.
        sigma: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(Duration::ZERO)
    }
}

impl Latency {
    /// The distribution's mean, for estimating run times and printing settings.
    ///
    /// For `Normal` this is the configured mean; the zero clamp makes the true mean slightly
    /// higher when `std_dev` is a sizeable fraction of `mean`.
    pub fn mean(&self) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => min + (max.saturating_sub(min)) / 2,
            Latency::Normal { mean, .. } => mean,
            Latency::LogNormal { median, sigma } => {
                sample::secs_to_duration(median.as_secs_f64() * (sigma * sigma / 2.0).exp())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn mean_matches_the_distribution() {
        assert_eq!(
            "uniform:30ms..150ms".parse::<Latency>().unwrap().mean(),
            ms(90)
        );
        let ln = Latency::LogNormal {
            median: ms(100),
            sigma: 0.0,
        };
        assert_eq!(ln.mean(), ms(100));
    }
}
