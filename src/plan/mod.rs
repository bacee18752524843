//! `loadchain plan`: Little's-law arithmetic that answers "what limit should I use against my
//! quota?" before any call is paid for.
//!
//! A chain in flight holds one slot for its chain time `T` and sends `c` calls meanwhile, so
//! `L` chains in flight demand `L × c × 60 / T` requests per minute (and that times the tokens
//! per call in tokens per minute). The largest limit within an RPM quota is therefore
//! `⌊RPM × T / (60 × c)⌋`, and likewise for TPM; the smaller of the two binds. The course's
//! example (60 RPM, 3 calls, 25 s chains) gives 8, and its "10 keeps you at 30 active
//! requests" demands 72 RPM. Pure arithmetic here; `from` reads the inputs from a report
//! folder and `app` prints.

mod from;
mod text;

use std::time::Duration;

use serde::Serialize;

pub use from::{Measured, read_measured};
pub use text::render;

/// A problem with the plan's input, always the user's (exit 2); it names the flag.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A needed flag is missing or contradicts another.
    #[error("{0}")]
    Input(String),
    /// `--from DIR` could not be read or holds no usable run.
    #[error("--from {dir}: {why}")]
    From {
        /// The folder given.
        dir: String,
        /// What was wrong with it.
        why: String,
    },
}

/// The inputs of a plan, from flags and/or a report folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// Requests per minute the provider allows.
    pub rpm: Option<u32>,
    /// Tokens per minute the provider allows.
    pub tpm: Option<u32>,
    /// Calls per chain (steps, plus the retries a run measured).
    pub calls_per_chain: f64,
    /// Time one chain takes from its first send to its last byte.
    pub chain_time: Duration,
    /// Tokens one call uses (prompt + completion); needed with `tpm`.
    pub tokens_per_call: Option<f64>,
    /// Chains in the batch to plan the wall time of.
    pub n: usize,
    /// A limit to check against the quota.
    pub limit: Option<usize>,
}

/// What `plan` prints; `--json` prints exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The largest limit whose demand stays within every quota given (0: even one chain
    /// at a time is over it, and the quota, not the limit, sets the pace).
    pub max_limit: usize,
    /// Expected wall time of `n` chains at `max_limit` (the quota's pace when that is slower).
    pub expected_wall_ms: u64,
    /// Requests per minute demanded at `--limit` (at `max_limit`, at least 1, without it).
    pub demand_rpm: f64,
    /// Tokens per minute demanded at that limit; null without a token count.
    pub demand_tpm: Option<f64>,
    /// Whether that demand is over a quota.
    pub exceeds: bool,
}

impl PlanInput {
    /// Checks the cross-flag rules the types cannot express.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.rpm.is_none() && self.tpm.is_none() {
            return Err(PlanError::Input(
                "give the quota to plan against: --rpm N and/or --tpm N".into(),
            ));
        }
        if self.chain_time.is_zero() {
            return Err(PlanError::Input(
                "--chain-time must be above 0 (or measure it: --from DIR)".into(),
            ));
        }
        if !(self.calls_per_chain.is_finite() && self.calls_per_chain > 0.0) {
            return Err(PlanError::Input("--steps must be at least 1".into()));
        }
        if self.tpm.is_some() && !self.tokens_per_call.is_some_and(|t| t > 0.0) {
            return Err(PlanError::Input(
                "--tpm needs --tokens-per-call N (prompt + completion tokens of one call)".into(),
            ));
        }
        Ok(())
    }

    /// Chains per second that keep `limit` chains in flight.
    fn chains_per_s(&self, limit: f64) -> f64 {
        limit / self.chain_time.as_secs_f64()
    }

    /// Requests per minute demanded at `limit` chains in flight.
    pub fn demand_rpm(&self, limit: usize) -> f64 {
        self.chains_per_s(limit as f64) * self.calls_per_chain * 60.0
    }

    /// Tokens per minute demanded at `limit`, when a token count is known.
    pub fn demand_tpm(&self, limit: usize) -> Option<f64> {
        self.tokens_per_call.map(|t| self.demand_rpm(limit) * t)
    }

    /// The largest limit within the RPM quota (None without one), unrounded.
    pub fn rpm_bound(&self) -> Option<f64> {
        self.rpm.map(|rpm| {
            f64::from(rpm) * self.chain_time.as_secs_f64() / (60.0 * self.calls_per_chain)
        })
    }

    /// The largest limit within the TPM quota (None without one or without a token count).
    pub fn tpm_bound(&self) -> Option<f64> {
        let per_chain = self.calls_per_chain * self.tokens_per_call?;
        self.tpm
            .map(|tpm| f64::from(tpm) * self.chain_time.as_secs_f64() / (60.0 * per_chain))
    }

    /// Works the plan out; call [`PlanInput::validate`] first.
    pub fn plan(&self) -> Plan {
        let bound = [self.rpm_bound(), self.tpm_bound()]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        // A hair of slack so 8.000000001 from float error still rounds to 8.
        let max_limit = if bound.is_finite() {
            (bound + 1e-9).floor().max(0.0) as usize
        } else {
            0
        };
        // With no safe limit, show what even one chain at a time demands.
        let checked = self.limit.unwrap_or(max_limit.max(1));
        let demand_rpm = self.demand_rpm(checked);
        let demand_tpm = self.demand_tpm(checked);
        let over =
            |demand: f64, quota: Option<u32>| quota.is_some_and(|q| demand > f64::from(q) + 1e-9);
        let exceeds = over(demand_rpm, self.rpm) || demand_tpm.is_some_and(|d| over(d, self.tpm));
        Plan {
            max_limit,
            expected_wall_ms: self.expected_wall(max_limit).as_millis() as u64,
            demand_rpm: round2(demand_rpm),
            demand_tpm: demand_tpm.map(round2),
            exceeds,
        }
    }

    /// Wall time of `n` chains at `limit`: whole waves of `limit` chains, or the quota's pace
    /// (calls or tokens per minute) when that is slower.
    pub fn expected_wall(&self, limit: usize) -> Duration {
        let t = self.chain_time.as_secs_f64();
        let n = self.n as f64;
        let waves = n / limit.max(1) as f64;
        let mut secs = waves.ceil() * t;
        if let Some(rpm) = self.rpm {
            secs = secs.max(n * self.calls_per_chain * 60.0 / f64::from(rpm));
        }
        if let (Some(tpm), Some(tok)) = (self.tpm, self.tokens_per_call) {
            secs = secs.max(n * self.calls_per_chain * tok * 60.0 / f64::from(tpm));
        }
        Duration::from_secs_f64(secs)
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
