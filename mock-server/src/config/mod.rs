//! `MockConfig`: every knob of the mock server as one serde value, loadable from TOML.
//!
//! This module owns defaults, TOML loading and the checks that a config makes sense
//! ([`MockConfig::validate`]). It does not know about CLI flags; `cli.rs` merges flags on top.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fault::ByteRate;
use crate::latency::{Latency, duration_str};
use crate::ratelimit::QuotaWindow;

mod error;

pub use error::ConfigError;

/// Everything that shapes the mock's behaviour. Random choices are all derived from `seed`,
/// so two servers with the same config answer a sequential run identically.
///
/// In TOML, durations are strings (`token_time = "2ms"`) and latency uses the text form
/// (`latency = "uniform:30ms..150ms"`). Unknown keys are rejected so a typo cannot silently
/// leave a knob at its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Address to listen on. Default 127.0.0.1 (loopback only).
    pub bind: IpAddr,
    /// TCP port; 0 (the default) lets the OS pick a free one, see [`crate::MockServer::url`].
    pub port: u16,
    /// Base latency per request (time to first token). Default `fixed:0ms`.
    pub latency: Latency,
    /// Generation time per output token, added after `latency`. Default 0.
    #[serde(with = "duration_str")]
    pub token_time: Duration,
    /// Time to first token after `latency` (prefill), sampled per request. `None` (default):
    /// the first token takes one `token_time` like the others, as before this knob existed.
    /// When set, the first chunk comes after `latency + ttft` and later chunks one
    /// `token_time` apart, so a client's TTFT and ITL can be checked against what was set.
    pub ttft: Option<Latency>,
    /// Batching slowdown: each token takes `token_time × (1 + load_slowdown × requests in
    /// flight)`, the way a batching server's decode steps slow as its batch grows. Default 0.
    pub load_slowdown: f64,
    /// Completion length in tokens (words). Default 16. A request's `max_tokens` caps it.
    pub output_tokens: u32,
    /// Fraction of requests answered with a 5xx, in `[0, 1]`. Default 0.
    pub failure_rate: f64,
    /// Status codes a failing request picks from (seeded). Default `[500, 502, 503]`.
    pub failure_statuses: Vec<u16>,
    /// Token-bucket rate limit in requests per minute; `None` (default) means unlimited.
    pub rpm: Option<u32>,
    /// Bucket size of the `rpm` limiter: how many requests may arrive back to back before
    /// 429s start. `None` (default) = `rpm`, a whole minute's budget at once.
    pub rpm_burst: Option<u32>,
    /// Token rate limit per minute, charged each request's prompt (~4 characters a token)
    /// plus its `max_tokens` (or `output_tokens`); `None` (default) means unlimited.
    pub tpm: Option<u32>,
    /// How the `rpm` and `tpm` quotas refill: a continuous bucket (default) or a fixed
    /// per-minute window reset at once.
    pub quota_window: QuotaWindow,
    /// Extra wait on the first request of each new connection, modelling TCP+TLS set-up so
    /// that connection pooling shows a measurable effect on loopback. Default 0.
    #[serde(with = "duration_str")]
    pub conn_cost: Duration,
    /// Fraction of requests that never answer (until the client gives up or the server shuts
    /// down), in `[0, 1]`. Default 0.
    pub hang_rate: f64,
    /// At most this many requests are processed at once; the rest queue. `None` = no limit.
    pub capacity: Option<usize>,
    /// Seed for every random choice (latency, failure, hang, status pick) and for content.
    pub seed: u64,
    /// Request bodies above this size get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Fraction of successful chat responses that end in a TCP reset (RST) after the
    /// headers and part of the body, in `[0, 1]`. Default 0. On HTTP/2 the stream is reset.
    pub reset_rate: f64,
    /// Fraction of successful chat responses closed cleanly mid-body: half of a
    /// `Content-Length` body, or half of the token chunks and no `[DONE]`. Default 0.
    pub truncate_rate: f64,
    /// Send successful chat bodies at most this fast (TOML: `slow_body = "1kB/s"`);
    /// `None` (default) sends at once.
    pub slow_body: Option<ByteRate>,
    /// Vary the content per call (about one word in four, seeded by the seed and the
    /// request number), like a sampled model; off (default): same request, same text.
    pub vary: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            latency: Latency::default(),
            token_time: Duration::ZERO,
            ttft: None,
            load_slowdown: 0.0,
            output_tokens: 16,
            failure_rate: 0.0,
            failure_statuses: vec![500, 502, 503],
            rpm: None,
            rpm_burst: None,
            tpm: None,
            quota_window: QuotaWindow::Bucket,
            conn_cost: Duration::ZERO,
            hang_rate: 0.0,
            capacity: None,
            seed: 42,
            max_body_bytes: 1024 * 1024,
            reset_rate: 0.0,
            truncate_rate: 0.0,
            slow_body: None,
            vary: false,
        }
    }
}

impl MockConfig {
    /// Reads and validates a TOML file; errors name the file and line.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = parse_toml(&text, &path.display().to_string())?;
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Parses and validates TOML text (missing keys take their defaults).
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let config = parse_toml(s, "<string>")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that the types cannot express: rates in `[0, 1]`, `rpm > 0`,
    /// `capacity > 0`, failure statuses in `100..=599` and not empty when failures are on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, rate) in [
            ("failure_rate", self.failure_rate),
            ("hang_rate", self.hang_rate),
            ("reset_rate", self.reset_rate),
            ("truncate_rate", self.truncate_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{rate} is not a fraction between 0 and 1"),
                ));
            }
        }
        if self.rpm == Some(0) {
            return Err(ConfigError::invalid(
                "rpm",
                "must be at least 1 (omit it for no limit)".into(),
            ));
        }
        if self.rpm_burst == Some(0) {
            return Err(ConfigError::invalid(
                "rpm_burst",
                "must be at least 1 (omit it for a burst of rpm)".into(),
            ));
        }
        if self.tpm == Some(0) {
            return Err(ConfigError::invalid(
                "tpm",
                "must be at least 1 (omit it for no limit)".into(),
            ));
        }
        if self.capacity == Some(0) {
            return Err(ConfigError::invalid(
                "capacity",
                "must be at least 1 (omit it for no limit)".into(),
            ));
        }
        if let Some(bad) = self
            .failure_statuses
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(ConfigError::invalid(
                "failure_statuses",
                format!("{bad} is not an HTTP status code (100..=599)"),
            ));
        }
        if self.failure_statuses.is_empty() && self.failure_rate > 0.0 {
            return Err(ConfigError::invalid(
                "failure_statuses",
                "is empty but failure_rate is above 0".into(),
            ));
        }
        if !(self.load_slowdown.is_finite() && self.load_slowdown >= 0.0) {
            return Err(ConfigError::invalid(
                "load_slowdown",
                format!("{} is not a factor of 0 or more", self.load_slowdown),
            ));
        }
        if let Some(ttft) = self.ttft {
            check_latency(ttft)?;
        }
        check_latency(self.latency)
    }
}

/// The latency checks of [`MockConfig::validate`], for a [`Latency`] built in code: its text
/// form (flags, TOML) already refuses these.
fn check_latency(latency: Latency) -> Result<(), ConfigError> {
    if let Latency::LogNormal { sigma, .. } = latency
        && (!sigma.is_finite() || sigma < 0.0)
    {
        return Err(ConfigError::invalid(
            "latency",
            format!("lognormal sigma {sigma} must be finite and >= 0"),
        ));
    }
    if let Latency::Uniform { min, max } = latency
        && min > max
    {
        return Err(ConfigError::invalid(
            "latency",
            "uniform minimum is above maximum".into(),
        ));
    }
    Ok(())
}

fn parse_toml(text: &str, origin: &str) -> Result<MockConfig, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::toml(&err, text, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_docs() {
        let c = MockConfig::default();
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.port, 0);
        assert_eq!(c.output_tokens, 16);
        assert_eq!(c.failure_statuses, vec![500, 502, 503]);
        assert_eq!(c.seed, 42);
        assert_eq!(c.max_body_bytes, 1 << 20);
        c.validate().unwrap();
        assert_eq!(MockConfig::from_toml_str("").unwrap(), c);
    }

    #[test]
    fn toml_round_trips() {
        let text = r#"
            latency = "uniform:30ms..150ms"
            token_time = "2ms"
            conn_cost = "1500us"
            failure_rate = 0.05
            rpm = 600
            capacity = 8
            reset_rate = 0.01
            truncate_rate = 0.02
            slow_body = "1.5KiB/s"
        "#;
        let c = MockConfig::from_toml_str(text).unwrap();
        assert_eq!(c.token_time, Duration::from_millis(2));
        assert_eq!(c.conn_cost, Duration::from_micros(1500));
        assert_eq!(c.rpm, Some(600));
        assert_eq!(c.truncate_rate, 0.02);
        assert_eq!(c.slow_body.map(ByteRate::bytes_per_sec), Some(1536));
        let again = toml::to_string(&c).unwrap();
        assert_eq!(MockConfig::from_toml_str(&again).unwrap(), c);
    }

    #[test]
    fn toml_errors_name_the_line_and_key() {
        let err = MockConfig::from_toml_str("seed = 1\nlatncy = \"fixed:1ms\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("<string>: line 2, column 1:"), "{msg}");
        assert!(msg.contains("latncy"), "{msg}");
        let err = MockConfig::from_toml_str("\n\nlatency = \"foo:1\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("unknown latency distribution"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let cases: [(MockConfig, &str); 7] = [
            (
                MockConfig {
                    reset_rate: 1.01,
                    ..Default::default()
                },
                "--reset-rate",
            ),
            (
                MockConfig {
                    truncate_rate: f64::NAN,
                    ..Default::default()
                },
                "--truncate-rate",
            ),
            (
                MockConfig {
                    failure_rate: 1.5,
                    ..Default::default()
                },
                "--failure-rate",
            ),
            (
                MockConfig {
                    hang_rate: -0.1,
                    ..Default::default()
                },
                "--hang-rate",
            ),
            (
                MockConfig {
                    rpm: Some(0),
                    ..Default::default()
                },
                "--rpm",
            ),
            (
                MockConfig {
                    capacity: Some(0),
                    ..Default::default()
                },
                "--capacity",
            ),
            (
                MockConfig {
                    failure_statuses: vec![500, 700],
                    ..Default::default()
                },
                "700",
            ),
        ];
        for (config, needle) in cases {
            let msg = config.validate().unwrap_err().to_string();
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
