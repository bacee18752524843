//! The text form of a latency (`fixed:80ms`, `uniform:30ms..150ms`, `normal:90ms,20ms`,
//! `lognormal:90ms,0.5`) and of a duration (`80ms`, `1.5s`): parsing, printing, serde.
//!
//! One text form serves CLI flags, TOML, JSON and report headers, so `Display` is written to
//! round-trip through `FromStr` exactly (a duration prints in the largest exact unit).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Latency;

/// What the expected forms are, repeated in every parse error so a user can fix the input
/// without reading the docs.
const EXPECTED: &str = "expected fixed:D, uniform:A..B, normal:MEAN,SD or lognormal:MEDIAN,SIGMA, \
                        with durations like 80ms or 1.5s";

/// A latency string that does not match any accepted form; the message is one line that
/// names the bad part and the forms expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({EXPECTED})")]
pub struct LatencyParseError {
    message: String,
}

impl LatencyParseError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Formats a duration in the largest unit that represents it exactly, so that parsing the
/// result gives back the same value ("1500ms", "2s", "250us", "7ns").
fn fmt_duration(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let nanos = d.as_nanos();
    if nanos == 0 {
        f.write_str("0ms")
    } else if nanos.is_multiple_of(1_000_000_000) {
        write!(f, "{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        write!(f, "{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(f, "{}us", nanos / 1_000)
    } else {
        write!(f, "{nanos}ns")
    }
}

/// A [`Duration`] wrapper whose `Display` is the exact short form used in the text formats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShortDuration(pub Duration);

impl fmt::Display for ShortDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_duration(self.0, f)
    }
}

/// Parses a duration such as `80ms`, `1.5s` or `2m`; a bare `0` is accepted as zero. This is
/// also what [`Latency`] accepts inside its forms, so flags and latencies read durations alike.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    // humantime has no fractional seconds; "1.5s" is too common not to accept.
    if let Some(secs) = s
        .strip_suffix('s')
        .and_then(|n| n.trim().parse::<f64>().ok())
    {
        if secs.is_finite() && secs >= 0.0 {
            return Duration::try_from_secs_f64(secs)
                .map_err(|e| format!("bad duration {s:?}: {e}"));
        }
        return Err(format!(
            "bad duration {s:?}: must be finite and not negative"
        ));
    }
    humantime::parse_duration(s).map_err(|e| format!("bad duration {s:?}: {e}"))
}

fn parse_part(s: &str, what: &str) -> Result<Duration, LatencyParseError> {
    parse_duration(s).map_err(|e| LatencyParseError::new(format!("{what}: {e}")))
}

/// Splits `rest` at `sep`, or says which distribution lacks it.
fn split<'a>(
    rest: &'a str,
    sep: &str,
    kind: &str,
) -> Result<(&'a str, &'a str), LatencyParseError> {
    rest.split_once(sep)
        .ok_or_else(|| LatencyParseError::new(format!("{kind} latency {rest:?} has no \"{sep}\"")))
}

/// `A..B` (or `A..=B`) after `uniform:`.
fn parse_uniform(rest: &str) -> Result<Latency, LatencyParseError> {
    let (a, b) = split(rest, "..", "uniform")?;
    let min = parse_part(a, "uniform minimum")?;
    let max = parse_part(b.trim_start_matches('='), "uniform maximum")?;
    if min > max {
        return Err(LatencyParseError::new(format!(
            "uniform minimum {} is above maximum {}",
            ShortDuration(min),
            ShortDuration(max)
        )));
    }
    Ok(Latency::Uniform { min, max })
}

/// `MEDIAN,SIGMA` after `lognormal:`.
fn parse_lognormal(rest: &str) -> Result<Latency, LatencyParseError> {
    let (a, b) = split(rest, ",", "lognormal")?;
    let median = parse_part(a, "lognormal median")?;
    let sigma: f64 = b.trim().parse().map_err(|_| {
        LatencyParseError::new(format!("lognormal sigma {:?} is not a number", b.trim()))
    })?;
    if !sigma.is_finite() || sigma < 0.0 {
        return Err(LatencyParseError::new(format!(
            "lognormal sigma {sigma} must be finite and >= 0"
        )));
    }
    Ok(Latency::LogNormal { median, sigma })
}

impl FromStr for Latency {
    type Err = LatencyParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(LatencyParseError::new("empty latency"));
        }
        let Some((kind, rest)) = s.split_once(':') else {
            // A bare duration means fixed; give the general hint if it is not one.
            return parse_duration(s)
                .map(Latency::Fixed)
                .map_err(|_| LatencyParseError::new(format!("cannot read latency {s:?}")));
        };
        let rest = rest.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "fixed" => Ok(Latency::Fixed(parse_part(rest, "fixed latency")?)),
            "uniform" => parse_uniform(rest),
            "normal" => {
                let (a, b) = split(rest, ",", "normal")?;
                Ok(Latency::Normal {
                    mean: parse_part(a, "normal mean")?,
                    std_dev: parse_part(b, "normal standard deviation")?,
                })
            }
            "lognormal" => parse_lognormal(rest),
            other => Err(LatencyParseError::new(format!(
                "unknown latency distribution {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Latency::Fixed(d) => write!(f, "fixed:{}", ShortDuration(d)),
            Latency::Uniform { min, max } => {
                write!(f, "uniform:{}..{}", ShortDuration(min), ShortDuration(max))
            }
            Latency::Normal { mean, std_dev } => {
                write!(
                    f,
                    "normal:{},{}",
                    ShortDuration(mean),
                    ShortDuration(std_dev)
                )
            }
            // `{:?}` on f64 prints the shortest string that parses back to the same value.
            Latency::LogNormal { median, sigma } => {
                write!(f, "lognormal:{},{sigma:?}", ShortDuration(median))
            }
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// serde adapter for `Duration` fields written as strings like `"2ms"` (TOML and JSON).
pub(crate) mod duration_str {
    use super::{ShortDuration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&ShortDuration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_every_form() {
        assert_eq!("fixed:80ms".parse(), Ok(Latency::Fixed(ms(80))));
        assert_eq!("80ms".parse(), Ok(Latency::Fixed(ms(80))));
        assert_eq!("1.5s".parse(), Ok(Latency::Fixed(ms(1500))));
        assert_eq!(
            "uniform:30ms..150ms".parse(),
            Ok(Latency::Uniform {
                min: ms(30),
                max: ms(150)
            })
        );
        assert_eq!(
            "normal:90ms,20ms".parse(),
            Ok(Latency::Normal {
                mean: ms(90),
                std_dev: ms(20)
            })
        );
        assert_eq!(
            "lognormal:90ms,0.5".parse(),
            Ok(Latency::LogNormal {
                median: ms(90),
                sigma: 0.5
            })
        );
        assert_eq!(" Fixed : 0 ".parse(), Ok(Latency::Fixed(Duration::ZERO)));
    }

    #[test]
    fn display_round_trips_through_from_str() {
        for s in [
            "fixed:80ms",
            "fixed:0ms",
            "fixed:2s",
            "fixed:250us",
            "uniform:30ms..150ms",
            "uniform:1500ms..2s",
            "normal:90ms,20ms",
            "lognormal:90ms,0.5",
            "lognormal:3s,1.25",
        ] {
            let l: Latency = s.parse().unwrap();
            assert_eq!(l.to_string(), s);
            assert_eq!(l.to_string().parse::<Latency>().unwrap(), l);
        }
        let odd = Latency::Fixed(Duration::from_nanos(1_234_567));
        assert_eq!(odd.to_string().parse::<Latency>().unwrap(), odd);
    }

    #[test]
    fn errors_are_one_line_and_say_what_is_expected() {
        for (input, needle) in [
            ("foo:1ms", "unknown latency distribution \"foo\""),
            ("uniform:30ms", "has no \"..\""),
            ("uniform:150ms..30ms", "above maximum"),
            ("normal:90ms", "has no \",\""),
            ("lognormal:90ms,abc", "not a number"),
            ("lognormal:90ms,-1", "finite and >= 0"),
            ("fixed:abc", "fixed latency"),
            ("banana", "cannot read latency"),
            ("", "empty"),
        ] {
            let err = input.parse::<Latency>().unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?} -> {err}");
            assert!(err.contains("expected fixed:D, uniform:A..B"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn serde_uses_the_text_form() {
        let l: Latency = "uniform:30ms..150ms".parse().unwrap();
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, "\"uniform:30ms..150ms\"");
        assert_eq!(serde_json::from_str::<Latency>(&json).unwrap(), l);
    }
}
