//! Checked settings built from the command line: every rule that spans several flags, the
//! embedded mock's defaults, the target and the chain. Library code takes these, never `Cli`.

use std::path::Path;
use std::time::SystemTime;

use thiserror::Error;

mod command;
mod endpoint;
mod exec;
mod files;
mod limit;
mod mock;
mod openloop;
mod segment;
#[cfg(test)]
mod tests;

pub use command::redacted_command;
pub use endpoint::{api_key_warning, endpoint_from_args};
pub use files::{check_open_files, open_file_limit};
pub use limit::{AUTO_CEILING, auto_ceiling};
pub use mock::embedded_mock_defaults;

use crate::batch::RunConfig;
use crate::chain::{Chain, ChainError, Row};
use crate::cli::{
    CallArgs, ChainArgs, CommonArgs, LimitArg, PoolingArg, RunArgs, SweepArgs, TargetArgs,
};
use crate::endpoint::{ClientOptions, Endpoint, TargetError};
use crate::manifest::{Manifest, ManifestError};
use crate::record::Pooling;
use crate::runner::{RetryPolicy, Workload};
use crate::sweep::SweepConfig;

/// A combination of flags that cannot work. Always a usage error (exit 2).
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A flag's value is unusable.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// The target could not be built.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The chain file or step count is unusable.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The mock config file or a --mock-* value is unusable.
    #[error("{0}")]
    Mock(String),
    /// The manifest is missing, malformed or has duplicate ids.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// How errors name the chain: its file, or the default chain.
pub fn chain_origin(args: &ChainArgs) -> String {
    args.chain
        .as_ref()
        .map_or("default chain".to_string(), |p| {
            format!("chain file {}", p.display())
        })
}

/// The chain from --chain or --steps.
pub fn chain_from_args(args: &ChainArgs) -> Result<Chain, ConfigError> {
    Ok(match &args.chain {
        Some(path) => Chain::from_toml_file(path)?,
        None => Chain::default_steps(args.steps)?,
    })
}

/// Client options from the flags.
pub fn client_options(t: &TargetArgs, c: &CallArgs) -> ClientOptions {
    ClientOptions {
        timeout: c.timeout,
        connect_timeout: c.connect_timeout,
        insecure: t.insecure,
        http2_prior_knowledge: t.http2,
        max_response_bytes: t.max_response_bytes,
        follow_redirects: t.follow_redirects,
        pace: c.pace == crate::cli::OnOff::On,
        announced: crate::endpoint::AnnouncedLog::default(),
        idle_timeout: c.idle_timeout,
        stale_retry: !c.no_stale_retry,
    }
}

/// Retry settings from the flags.
pub fn retry_policy(c: &CallArgs) -> RetryPolicy {
    RetryPolicy {
        retry_passes: c.retry_passes,
        max_retries: c.max_retries,
        max_retry_wait: c.max_retry_wait,
        restart_chains: c.restart_chains,
        ..RetryPolicy::default()
    }
}

/// Checks `loadchain sweep` flags and builds its configuration.
pub fn sweep_config(args: &SweepArgs, command: String) -> Result<SweepConfig, ConfigError> {
    let auto = args.limits.contains(&LimitArg::Auto);
    let mut limits: Vec<usize> = args
        .limits
        .iter()
        .filter_map(|l| match l {
            LimitArg::Fixed(n) => Some(*n),
            LimitArg::Auto => None,
        })
        .collect();
    if limits.is_empty() && !auto {
        return Err(flag("--limits", "give at least one limit, e.g. 1,5,10"));
    }
    limits.sort_unstable();
    limits.dedup();
    let mut sizes = args.sizes.clone().unwrap_or_else(|| vec![args.n]);
    if sizes.is_empty() {
        return Err(flag("--sizes", "give at least one size, e.g. 10,25,50,100"));
    }
    sizes.sort_unstable();
    sizes.dedup();
    let segment = args
        .common
        .segment
        .segment
        .map(|segment| crate::sweep::SweepSegment {
            segment,
            whole_sizes: sizes.clone(),
        });
    if let Some(seg) = args.common.segment.segment {
        sizes = segment::split_counts(seg, "batch size", &sizes)?;
        limits = segment::split_counts(seg, "limit", &limits)?;
    }
    let mut pooling = match args.pooling {
        PoolingArg::On => vec![Pooling::On],
        PoolingArg::Off => vec![Pooling::Off],
        PoolingArg::Both => vec![Pooling::On, Pooling::Off],
    };
    let (endpoint, chain) = match &args.exec {
        Some(source) => {
            pooling = vec![Pooling::On];
            exec::sweep_exec(args, source)?
        }
        None => {
            let chain = chain_from_args(&args.common.chain)?;
            let origin = chain_origin(&args.common.chain);
            chain.check_columns(&Row::synthetic_columns(), &origin, "the sweep input")?;
            (
                endpoint_from_args(&args.common.target, &args.common.mock)?,
                chain,
            )
        }
    };
    // A limit never exceeds the batch size: at most that many connections are open.
    let widest = limits
        .last()
        .copied()
        .unwrap_or(1)
        .min(sizes.last().copied().unwrap_or(1));
    check_open_files("--limits", widest, &endpoint, open_file_limit())?;
    check_slo(&args.common, &args.output.fail_on)?;
    let auto_ceiling = auto.then(|| {
        auto_ceiling(
            sizes.last().copied().unwrap_or(1),
            &endpoint,
            open_file_limit(),
        )
    });
    let workload = workload(&args.common, chain, endpoint);
    check_cost_threshold(&args.output.fail_on, &workload)?;
    Ok(SweepConfig {
        auto_ceiling,
        sizes,
        limits,
        pooling,
        workload,
        warmup: args.warmup,
        command,
        repeat: args.repeat,
        rates: openloop::rate_sweep(args)?,
        // Without --rates, --duration makes every limit a closed-loop soak.
        soak: args
            .open_loop
            .rates
            .is_none()
            .then_some(args.open_loop.duration)
            .flatten(),
        segment,
    })
}

/// The part both commands share, once the chain and the endpoint are checked.
/// `--fail-on slo…` or `goodput…` without `--slo` would check nothing, and a `ttft`, `itl`
/// or `tpot` objective without `--stream` could never be met: both are usage errors.
fn check_slo(
    common: &CommonArgs,
    fail_on: &[crate::threshold::Threshold],
) -> Result<(), ConfigError> {
    let slo = common.target.slo;
    if let Some(t) = fail_on.iter().find(|t| t.metric.needs_slo())
        && slo.is_none()
    {
        return Err(flag(
            "--fail-on",
            format!("{t} needs --slo, e.g. --slo 'ttft<500ms,e2e<10s'"),
        ));
    }
    if slo.is_some_and(|s| s.needs_stream()) && !common.target.stream {
        return Err(flag(
            "--slo",
            "ttft, itl and tpot objectives need --stream (e2e alone does not)",
        ));
    }
    Ok(())
}

fn workload(common: &CommonArgs, chain: Chain, endpoint: Endpoint) -> Workload {
    // A chain file's price was checked when it was loaded.
    let chain_price = chain.price.as_deref().and_then(|p| p.parse().ok());
    let seg = common
        .segment
        .segment
        .unwrap_or(crate::segment::Segment::WHOLE);
    Workload {
        price: common.calls.price.or(chain_price),
        chain,
        endpoint,
        model: common.target.model.clone(),
        stream: common.target.stream,
        api: match common.target.api {
            crate::cli::ApiArg::Anthropic => crate::endpoint::ApiFormat::Anthropic,
            _ => crate::endpoint::ApiFormat::OpenAi,
        },
        client: client_options(&common.target, &common.calls),
        retry: retry_policy(&common.calls),
        rpm: segment::split_rate(seg, common.calls.rpm),
        tpm: segment::split_rate(seg, common.calls.tpm),
        slo: common.target.slo,
    }
}

/// Checks `loadchain run` flags and input files and builds its configuration: every input
/// error (flags, manifest, chain, mock settings) comes out of here, before anything is
/// written or sent.
pub fn run_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let mut chain = chain_from_args(&args.common.chain)?;
    let mut manifest = Manifest::load(&args.manifest, &args.id_column)?;
    if let Some(seg) = args.common.segment.segment {
        segment::split_rows(seg, &mut manifest);
    }
    let endpoint = match &args.exec {
        Some(source) => {
            let (endpoint, program) =
                exec::exec_endpoint(source, args.shell, &manifest.columns, &args.common)?;
            chain = program;
            endpoint
        }
        None => {
            chain.check_columns(
                &manifest.columns,
                &chain_origin(&args.common.chain),
                &manifest.path.display().to_string(),
            )?;
            endpoint_from_args(&args.common.target, &args.common.mock)?
        }
    };
    let rows = manifest.len().max(1);
    let (limit, auto) = match args.limit {
        LimitArg::Fixed(n) => (n, false),
        LimitArg::Auto => (auto_ceiling(rows, &endpoint, open_file_limit()), true),
    };
    check_open_files("--limit", limit.min(rows), &endpoint, open_file_limit())?;
    check_slo(&args.common, &args.fail_on)?;
    if args.resume && args.out.is_none() {
        return Err(flag(
            "--resume",
            "needs --out: the folder of the run to continue",
        ));
    }
    let workload = workload(&args.common, chain, endpoint);
    check_cost_threshold(&args.fail_on, &workload)?;
    let out = args.out.clone().unwrap_or_else(|| {
        crate::report::free_report_dir(Path::new("reports"), SystemTime::now(), "run")
    });
    Ok(RunConfig {
        manifest,
        limit,
        auto,
        out,
        resume: args.resume,
        workload,
        fail_on: args.fail_on.clone(),
        calls_csv: args.calls_csv == crate::cli::OnOff::On,
    })
}

/// `--fail-on cost>X` without a price would pass silently: refuse it up front.
fn check_cost_threshold(
    fail_on: &[crate::threshold::Threshold],
    workload: &Workload,
) -> Result<(), ConfigError> {
    let wants_cost = fail_on
        .iter()
        .any(|t| t.metric == crate::threshold::Metric::Cost);
    if wants_cost && workload.price.is_none() {
        return Err(flag(
            "--fail-on",
            "cost needs a price: --price 'in=0.15,out=0.60' (per 1M tokens) or price in the chain file",
        ));
    }
    Ok(())
}

pub(crate) fn flag(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        message: message.into(),
    }
}
