//! `loadchain plan` flags: a quota and a chain's shape in, a limit out (see `crate::plan`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{parse_count, parse_count_u32, parse_positive_duration};

/// `loadchain plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The provider's quota in requests per minute.
    #[arg(long, value_name = "N", value_parser = parse_count_u32)]
    pub rpm: Option<u32>,
    /// The provider's quota in tokens per minute (needs --tokens-per-call or --from).
    #[arg(long, value_name = "N", value_parser = parse_count_u32)]
    pub tpm: Option<u32>,
    /// Calls per chain [default: 3, or measured with --from].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub steps: Option<usize>,
    /// Time one chain takes, first send to last byte, e.g. 25s [or measured with --from].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub chain_time: Option<Duration>,
    /// Tokens per call, prompt + completion [or the completion tokens measured with --from].
    #[arg(long, value_name = "N", value_parser = parse_count_u32)]
    pub tokens_per_call: Option<u32>,
    /// Chains in the batch, for the expected wall time.
    #[arg(short = 'n', long = "n", value_name = "N", value_parser = parse_count, default_value = "100")]
    pub n: usize,
    /// A limit to check: the RPM/TPM it demands and whether that is over the quota.
    #[arg(long, short = 'c', value_name = "N", value_parser = parse_count)]
    pub limit: Option<usize>,
    /// A previous sweep or run report folder: its measured chain time, calls and tokens per
    /// chain (flags given too override them).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Print max_limit, expected_wall_ms, demand_rpm, demand_tpm and exceeds as JSON.
    #[arg(long)]
    pub json: bool,
}
