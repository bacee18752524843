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
        target: cfg.workload.endpoint.label(),
        api: target.api_name().to_string(),
        model: target.model().to_string(),
        steps: cfg.workload.chain.step_names(),
        stream: cfg.workload.stream,
        retry_passes: cfg.workload.retry.retry_passes,
        restart_chains: cfg.workload.retry.restart_chains,
        max_retries: cfg.workload.retry.max_retries,
        timeout_ms: cfg.workload.client.timeout.as_millis() as u64,
        max_retry_wait_ms: cfg.workload.retry.max_retry_wait.as_millis() as u64,
        max_response_bytes: cfg.workload.client.max_response_bytes,
        follow_redirects: cfg.workload.client.follow_redirects,
        rpm: cfg.workload.rpm,
        tpm: cfg.workload.tpm,
        mock: cfg.workload.endpoint.mock_toml(),
        machine: crate::sweep::machine(),
        pace: cfg.workload.client.pace,
        // Filled in once the run is over (see `batch::run`).
        announced_quota: None,
    }
}
