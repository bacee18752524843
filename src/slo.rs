//! `--slo 'ttft<500ms,itl<50ms,e2e<10s'`: service-level objectives a request must meet to
//! count towards goodput, as LLM serving benchmarks (vLLM, DistServe) define it.
//!
//! A request (one HTTP call, retries counted apart) meets the SLO when it succeeded and
//! every objective given holds: `ttft` its time to first token, `itl` its largest gap
//! between consecutive content chunks (a user sees the worst stall, not the average),
//! `tpot` its time per output token, `e2e` its latency from send to last byte. An
//! objective the request has no figure for (`ttft` on a call that was not streamed, `tpot`
//! with fewer than 2 tokens) is not met. `slo_attainment` is the share of requests meeting
//! every objective; `goodput` is how many met it per second of the run's wall time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The objectives given with `--slo`; each is an upper bound (strictly below).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slo {
    /// Time to first token.
    pub ttft: Option<Duration>,
    /// Largest gap between consecutive content chunks of the request.
    pub itl: Option<Duration>,
    /// Time per output token: (e2e − TTFT) / (output tokens − 1).
    pub tpot: Option<Duration>,
    /// Whole request, send to last byte.
    pub e2e: Option<Duration>,
}

/// One request's figures, as far as they are known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestTiming {
    /// Whether the call succeeded: a failed call never meets an SLO.
    pub ok: bool,
    /// Send to last byte.
    pub e2e: Duration,
    /// Time to first token (streamed calls).
    pub ttft: Option<Duration>,
    /// Largest gap between content chunks (streamed calls with 2+ chunks; 0 with one).
    pub max_itl: Option<Duration>,
    /// Time per output token (2+ tokens).
    pub tpot: Option<Duration>,
}

impl Slo {
    /// Whether a request meets every objective given.
    pub fn met(&self, r: &RequestTiming) -> bool {
        let holds = |bound: Option<Duration>, value: Option<Duration>| match bound {
            None => true,
            Some(b) => value.is_some_and(|v| v < b),
        };
        r.ok && holds(self.ttft, r.ttft)
            && holds(self.itl, r.max_itl)
            && holds(self.tpot, r.tpot)
            && holds(self.e2e, Some(r.e2e))
    }

    /// Whether the SLO needs figures only streamed calls have.
    pub fn needs_stream(&self) -> bool {
        self.ttft.is_some() || self.itl.is_some() || self.tpot.is_some()
    }
}

/// `(slo_attainment, goodput)` of a run: the share of `requests` that met the SLO (None
/// when there were none) and those meeting it per second of `wall`.
pub fn attainment(met: u64, requests: u64, wall: Duration) -> (Option<f64>, f64) {
    let share = (requests > 0).then(|| met as f64 / requests as f64);
    let secs = wall.as_secs_f64();
    let goodput = if secs > 0.0 { met as f64 / secs } else { 0.0 };
    (share, goodput)
}

impl FromStr for Slo {
    type Err = String;

    fn from_str(s: &str) -> Result<Slo, String> {
        let expected = "expected NAME<DURATION, comma-separated, e.g. \
                        'ttft<500ms,itl<50ms,e2e<10s' (names: ttft itl tpot e2e)";
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim) {
            let (name, raw) = part
                .split_once('<')
                .ok_or_else(|| format!("{part:?}: {expected}"))?;
            let (name, raw) = (name.trim(), raw.trim());
            let bound = humantime::parse_duration(raw)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("{part:?}: {raw:?} is not a duration above 0"))?;
            let slot = match name {
                "ttft" => &mut slo.ttft,
                "itl" => &mut slo.itl,
                "tpot" => &mut slo.tpot,
                "e2e" => &mut slo.e2e,
                _ => return Err(format!("{part:?}: unknown objective {name:?}; {expected}")),
            };
            if slot.replace(bound).is_some() {
                return Err(format!("{part:?}: {name} is given twice"));
            }
        }
        Ok(slo)
    }
}

impl fmt::Display for Slo {
    /// The canonical form, `ttft<500ms,itl<50ms,e2e<10s`, for settings and reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("ttft", self.ttft),
            ("itl", self.itl),
            ("tpot", self.tpot),
            ("e2e", self.e2e),
        ]
        .iter()
        .filter_map(|(n, d)| d.map(|d| format!("{n}<{}", humantime::format_duration(d))))
        .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_objectives_and_prints_them_back() {
        let slo: Slo = " ttft<500ms, itl<50ms,e2e<10s".parse().unwrap();
        assert_eq!(slo.ttft, Some(ms(500)));
        assert_eq!(slo.itl, Some(ms(50)));
        assert_eq!(slo.tpot, None);
        assert_eq!(slo.e2e, Some(ms(10_000)));
        assert_eq!(slo.to_string(), "ttft<500ms,itl<50ms,e2e<10s");
        assert!(slo.needs_stream());
        assert!(!"e2e<1s".parse::<Slo>().unwrap().needs_stream());
    }

    #[test]
    fn bad_objectives_say_why() {
        for (bad, says) in [
            ("", "expected"),
            ("ttft>1s", "expected"),
            ("p99<1s", "unknown objective"),
            ("ttft<soon", "not a duration"),
            ("ttft<0ms", "not a duration"),
            ("e2e<1s,e2e<2s", "twice"),
        ] {
            let err = bad.parse::<Slo>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_request_meets_the_slo_only_when_every_objective_holds() {
        let slo: Slo = "ttft<100ms,itl<20ms,e2e<1s".parse().unwrap();
        let good = RequestTiming {
            ok: true,
            e2e: ms(500),
            ttft: Some(ms(90)),
            max_itl: Some(ms(19)),
            tpot: Some(ms(10)),
        };
        assert!(slo.met(&good));
        assert!(!slo.met(&RequestTiming { ok: false, ..good }));
        assert!(!slo.met(&RequestTiming {
            ttft: Some(ms(100)),
            ..good
        }));
        assert!(!slo.met(&RequestTiming {
            max_itl: Some(ms(25)),
            ..good
        }));
        assert!(!slo.met(&RequestTiming {
            e2e: ms(1000),
            ..good
        }));
        // No figure for a bound that is asked for: not met. Not asked for: ignored.
        assert!(!slo.met(&RequestTiming { ttft: None, ..good }));
        assert!("e2e<1s".parse::<Slo>().unwrap().met(&RequestTiming {
            ttft: None,
            max_itl: None,
            ..good
        }));
    }

    #[test]
    fn goodput_is_requests_meeting_the_slo_per_second() {
        // 150 of 200 requests met it in 2.5 s: 75 %, 60 requests/s.
        let (share, goodput) = attainment(150, 200, Duration::from_millis(2500));
        assert_eq!(share, Some(0.75));
        assert!((goodput - 60.0).abs() < 1e-9, "{goodput}");
        assert_eq!(attainment(0, 0, ms(0)), (None, 0.0));
    }
}
