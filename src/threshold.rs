//! `--fail-on` thresholds: turn a finished sweep or run into a pass/fail check for CI, e.g.
//! `--fail-on 'p99>2s,errors>1%,failed>0'`. A run that breaks one is reported and the command
//! exits 1 after every report is written.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::metrics::{ErrorCounts, LatencySummary};

/// What a threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Call latency percentiles and maximum (successful calls).
    P50,
    /// 90th percentile call latency.
    P90,
    /// 99th percentile call latency.
    P99,
    /// Slowest successful call.
    Max,
    /// Failed calls as a fraction of all calls.
    Errors,
    /// Chains (rows) still failed after every pass.
    Failed,
    /// Speedup / its ideal (sweeps only).
    Efficiency,
    /// Rows whose output differs from the first run of their size (sweeps only).
    Differ,
    /// What the run cost, in the currency of `--price` (needs a price).
    Cost,
    /// Share of requests meeting every `--slo` objective (`slo_attainment`).
    Slo,
    /// Requests meeting every `--slo` objective per second.
    Goodput,
}

impl Metric {
    /// Whether the metric exists only with `--slo`.
    pub fn needs_slo(self) -> bool {
        matches!(self, Metric::Slo | Metric::Goodput)
    }
}

/// Which side of the value is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Fails when the measured value is above the limit.
    Above,
    /// Fails when the measured value is below the limit.
    Below,
}

/// One parsed `--fail-on` expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// What is measured.
    pub metric: Metric,
    /// Which side fails.
    pub op: Op,
    /// The limit: ms for latencies, a fraction for errors and efficiency, a count otherwise.
    pub value: f64,
}

/// The figures of one run that thresholds can look at.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// Successful call latency.
    pub call: &'a LatencySummary,
    /// Failed calls per kind.
    pub errors: &'a ErrorCounts,
    /// Calls sent.
    pub calls: u64,
    /// Chains still failed after every pass.
    pub failed: usize,
    /// Efficiency, when there is a baseline.
    pub efficiency: Option<f64>,
    /// Rows whose output differs, for sweeps.
    pub differ: Option<usize>,
    /// What the run cost, when priced.
    pub cost: Option<f64>,
    /// `slo_attainment`, with `--slo`.
    pub slo_attainment: Option<f64>,
    /// `goodput`, with `--slo`.
    pub goodput: Option<f64>,
}

impl Threshold {
    /// The measured value, or None when this run does not have it.
    fn value_of(&self, m: &Measured<'_>) -> Option<f64> {
        let ms = |us: u64| us as f64 / 1000.0;
        Some(match self.metric {
            Metric::P50 => ms(m.call.p50_us),
            Metric::P90 => ms(m.call.p90_us),
            Metric::P99 => ms(m.call.p99_us),
            Metric::Max => ms(m.call.max_us),
            Metric::Errors if m.calls == 0 => 0.0,
            Metric::Errors => m.errors.total() as f64 / m.calls as f64,
            Metric::Failed => m.failed as f64,
            Metric::Efficiency => m.efficiency?,
            Metric::Differ => m.differ? as f64,
            Metric::Cost => m.cost?,
            Metric::Slo => m.slo_attainment?,
            Metric::Goodput => m.goodput?,
        })
    }

    /// A line describing the violation, or None when the run passes.
    pub fn check(&self, m: &Measured<'_>) -> Option<String> {
        let v = self.value_of(m)?;
        let broken = match self.op {
            Op::Above => v > self.value,
            Op::Below => v < self.value,
        };
        broken.then(|| format!("{self} broken: measured {}", self.format_value(v)))
    }

    fn format_value(&self, v: f64) -> String {
        match self.metric {
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::Max => format!("{v:.1} ms"),
            Metric::Errors | Metric::Slo => format!("{:.2}%", v * 100.0),
            Metric::Goodput => format!("{v:.2}/s"),
            Metric::Efficiency => format!("{v:.3}"),
            Metric::Failed | Metric::Differ => format!("{v:.0}"),
            Metric::Cost => crate::cost::money(v),
        }
    }
}

/// The exit verdict of a finished sweep or run, decided after every report is written: a
/// run whose chains all failed is not a pass (a load test of nothing but errors), and a
/// broken `--fail-on` check is a failure.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Verdict {
    /// Runs in which every chain failed, named.
    pub all_failed: Vec<String>,
    /// Broken `--fail-on` checks, each naming its run and the measured value.
    pub broken: Vec<String>,
}

/// A failed [`Verdict`], as one line: exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerdictError(pub String);

impl Verdict {
    /// Adds another run's verdict.
    pub fn extend(&mut self, other: Verdict) {
        self.all_failed.extend(other.all_failed);
        self.broken.extend(other.broken);
    }

    /// Ok when nothing failed; otherwise one message with every reason.
    pub fn into_result(self) -> Result<(), VerdictError> {
        let broken = (!self.broken.is_empty()).then(|| {
            format!(
                "{} --fail-on check(s) broken: {}",
                self.broken.len(),
                self.broken.join("; ")
            )
        });
        match (self.all_failed.is_empty(), broken) {
            (true, None) => Ok(()),
            (true, Some(b)) => Err(VerdictError(b)),
            (false, b) => {
                let mut msg = format!("every chain failed in {}", self.all_failed.join(", "));
                if let Some(b) = b {
                    msg.push_str(&format!("; also {b}"));
                }
                Err(VerdictError(msg))
            }
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.metric {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::Max => "max",
            Metric::Errors => "errors",
            Metric::Failed => "failed",
            Metric::Efficiency => "efficiency",
            Metric::Differ => "differ",
            Metric::Cost => "cost",
            Metric::Slo => "slo",
            Metric::Goodput => "goodput",
        };
        let op = match self.op {
            Op::Above => '>',
            Op::Below => '<',
        };
        write!(f, "{name}{op}{}", self.format_value(self.value))
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Threshold, String> {
        let s = s.trim();
        let expected = "expected METRIC>VALUE or METRIC<VALUE, e.g. p99>2s, errors>1%, \
                        failed>0, efficiency<0.8, cost>5 (metrics: p50 p90 p99 max errors \
                        failed efficiency differ cost slo goodput)";
        let (at, op) = s
            .char_indices()
            .find_map(|(i, c)| match c {
                '>' => Some((i, Op::Above)),
                '<' => Some((i, Op::Below)),
                _ => None,
            })
            .ok_or_else(|| format!("{s:?}: {expected}"))?;
        let (name, raw) = (s[..at].trim(), s[at + 1..].trim());
        let metric = match name {
            "p50" => Metric::P50,
            "p90" => Metric::P90,
            "p99" => Metric::P99,
            "max" => Metric::Max,
            "errors" => Metric::Errors,
            "failed" => Metric::Failed,
            "efficiency" => Metric::Efficiency,
            "differ" => Metric::Differ,
            "cost" => Metric::Cost,
            "slo" => Metric::Slo,
            "goodput" => Metric::Goodput,
            _ => return Err(format!("{s:?}: unknown metric {name:?}; {expected}")),
        };
        let bad = || format!("{s:?}: {raw:?} is not a valid value for {name}");
        let value = match metric {
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::Max => {
                let d: Duration = humantime::parse_duration(raw).map_err(|_| bad())?;
                crate::record::ms(d)
            }
            Metric::Errors | Metric::Slo => match raw.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
                None => raw.parse::<f64>().map_err(|_| bad())?,
            },
            _ => raw.parse::<f64>().map_err(|_| bad())?,
        };
        if !value.is_finite() || value < 0.0 {
            return Err(bad());
        }
        Ok(Threshold { metric, op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured<'a>(call: &'a LatencySummary, errors: &'a ErrorCounts) -> Measured<'a> {
        Measured {
            call,
            errors,
            calls: 200,
            failed: 1,
            efficiency: Some(0.85),
            differ: None,
            cost: Some(6.25),
            slo_attainment: Some(0.9),
            goodput: Some(12.5),
        }
    }

    #[test]
    fn parses_each_metric_with_units() {
        let t: Threshold = "p99>2s".parse().unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::P99, Op::Above, 2000.0));
        let t: Threshold = " errors > 1.5% ".parse().unwrap();
        assert_eq!((t.metric, t.value), (Metric::Errors, 0.015));
        let t: Threshold = "efficiency<0.8".parse().unwrap();
        assert_eq!((t.metric, t.op), (Metric::Efficiency, Op::Below));
        assert_eq!("p50>250ms".parse::<Threshold>().unwrap().value, 250.0);
        assert_eq!(
            "failed>0".parse::<Threshold>().unwrap().to_string(),
            "failed>0"
        );
    }

    #[test]
    fn bad_expressions_say_what_is_expected() {
        for bad in ["p99", "p98>1s", "p99>soon", "errors>lots", "failed>-1", ""] {
            let err = bad.parse::<Threshold>().unwrap_err();
            assert!(
                err.contains("expected") || err.contains("not a valid"),
                "{err}"
            );
        }
    }

    #[test]
    fn checks_report_only_broken_thresholds() {
        let call = LatencySummary {
            p50_us: 80_000,
            p99_us: 150_000,
            ..LatencySummary::default()
        };
        let errors = ErrorCounts {
            server_error: 4, // 2 % of 200 calls
            ..ErrorCounts::default()
        };
        let m = measured(&call, &errors);
        let check = |e: &str| e.parse::<Threshold>().unwrap().check(&m);
        assert_eq!(
            check("p99>100ms").as_deref(),
            Some("p99>100.0 ms broken: measured 150.0 ms")
        );
        assert_eq!(check("p99>1s"), None);
        assert!(check("errors>1%").unwrap().contains("2.00%"));
        assert_eq!(check("errors>5%"), None);
        assert!(check("failed>0").is_some());
        assert!(check("efficiency<0.9").is_some());
        assert_eq!(check("efficiency<0.8"), None);
        // Sweeps only: a run without the figure passes.
        assert_eq!(check("differ>0"), None);
        assert_eq!(
            check("cost>5").as_deref(),
            Some("cost>5.000000 broken: measured 6.250000")
        );
        assert_eq!(check("cost>10"), None);
        assert_eq!(
            check("slo<95%").as_deref(),
            Some("slo<95.00% broken: measured 90.00%")
        );
        assert_eq!(check("slo<0.9"), None);
        assert_eq!(
            check("goodput<20").as_deref(),
            Some("goodput<20.00/s broken: measured 12.50/s")
        );
        assert_eq!(check("goodput<10"), None);
    }
}
