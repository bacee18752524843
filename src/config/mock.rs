//! The embedded mock's settings: the course's defaults and the `--mock-*` flags on top.

use std::time::Duration;

use loadchain_mock::{Latency, MockConfig};

use super::ConfigError;
use crate::cli::MockFlags;

/// The embedded default: the course's world at 1/100 time scale. A 3–15 s call becomes
/// 30–150 ms, the 100–200 ms TCP+TLS set-up becomes 1.5 ms on a connection's first request,
/// and 2 % of calls fail with a 5xx so the retry pass has work to do. Fixed seed.
pub fn embedded_mock_defaults() -> MockConfig {
    MockConfig {
        latency: Latency::Uniform {
            min: Duration::from_millis(30),
            max: Duration::from_millis(150),
        },
        conn_cost: Duration::from_micros(1500),
        failure_rate: 0.02,
        failure_statuses: vec![500, 502],
        seed: 42,
        ..MockConfig::default()
    }
}

impl MockFlags {
    /// Whether any --mock-* flag was given.
    pub fn any(&self) -> bool {
        self.mock_latency.is_some()
            || self.mock_token_time.is_some()
            || self.mock_ttft.is_some()
            || self.mock_load_slowdown.is_some()
            || self.mock_output_tokens.is_some()
            || self.mock_failure_rate.is_some()
            || self.mock_failure_statuses.is_some()
            || self.mock_rpm.is_some()
            || self.mock_rpm_burst.is_some()
            || self.mock_tpm.is_some()
            || self.mock_quota_window.is_some()
            || self.mock_conn_cost.is_some()
            || self.mock_hang_rate.is_some()
            || self.mock_capacity.is_some()
            || self.mock_seed.is_some()
            || self.mock_reset_rate.is_some()
            || self.mock_truncate_rate.is_some()
            || self.mock_slow_body.is_some()
            || self.mock_vary
            || self.mock_config.is_some()
    }

    /// The embedded defaults (or --mock-config) with every given flag applied on top.
    pub fn to_config(&self) -> Result<MockConfig, ConfigError> {
        let mut c = match &self.mock_config {
            Some(path) => {
                MockConfig::from_toml_file(path).map_err(|e| ConfigError::Mock(e.to_string()))?
            }
            None => embedded_mock_defaults(),
        };
        if let Some(v) = self.mock_latency {
            c.latency = v;
        }
        if let Some(v) = self.mock_token_time {
            c.token_time = v;
        }
        if self.mock_ttft.is_some() {
            c.ttft = self.mock_ttft;
        }
        if let Some(v) = self.mock_load_slowdown {
            c.load_slowdown = v;
        }
        if let Some(v) = self.mock_output_tokens {
            c.output_tokens = v;
        }
        if let Some(v) = self.mock_failure_rate {
            c.failure_rate = v;
        }
        if let Some(v) = &self.mock_failure_statuses {
            c.failure_statuses = v.clone();
        }
        if let Some(v) = self.mock_rpm {
            c.rpm = Some(v);
        }
        if let Some(v) = self.mock_rpm_burst {
            c.rpm_burst = Some(v);
        }
        if let Some(v) = self.mock_tpm {
            c.tpm = Some(v);
        }
        if let Some(v) = self.mock_quota_window {
            c.quota_window = v;
        }
        if let Some(v) = self.mock_conn_cost {
            c.conn_cost = v;
        }
        if let Some(v) = self.mock_hang_rate {
            c.hang_rate = v;
        }
        if let Some(v) = self.mock_capacity {
            c.capacity = Some(v);
        }
        if let Some(v) = self.mock_seed {
            c.seed = v;
        }
        if let Some(v) = self.mock_reset_rate {
            c.reset_rate = v;
        }
        if let Some(v) = self.mock_truncate_rate {
            c.truncate_rate = v;
        }
        if self.mock_slow_body.is_some() {
            c.slow_body = self.mock_slow_body;
        }
        if self.mock_vary {
            c.vary = true;
        }
        c.validate().map_err(|e| ConfigError::Mock(e.to_string()))?;
        Ok(c)
    }
}
