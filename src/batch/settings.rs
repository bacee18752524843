//! The settings a `run` session records in summary.json, so summary.md says what was measured
//! and can be rebuilt from the file alone.

use std::time::SystemTime;

use super::RunConfig;
use crate::endpoint::Target;
use crate::manifest::RunSettings;

/// The effective settings of `cfg` against `target`, stamped with the current time.
pub(super) fn settings(cfg: &RunConfig, target: &Target) -> RunSettings {
    RunSettings {
        tool: format!("loadchain {}", env!("CARGO_PKG_VERSION")),
        started_utc: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        manifest: cfg.manifest.path.display().to_string(),
        target: cfg.endpoint.label(),
        api: target.format().as_str().to_string(),
        model: target.model().to_string(),
        steps: cfg.chain.step_names(),
        stream: cfg.stream,
        retry_passes: cfg.retry.retry_passes,
        max_retries: cfg.retry.max_retries,
        timeout_ms: cfg.client.timeout.as_millis() as u64,
        max_retry_wait_ms: cfg.retry.max_retry_wait.as_millis() as u64,
        max_response_bytes: cfg.client.max_response_bytes,
        follow_redirects: cfg.client.follow_redirects,
        rpm: cfg.rpm,
        tpm: cfg.tpm,
        mock: cfg.endpoint.mock_toml(),
        machine: crate::sweep::machine(),
    }
}
