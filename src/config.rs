//! Checked settings built from the command line: every rule that spans several flags, the
//! embedded mock's defaults, the target and the chain. Library code takes these, never `Cli`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use loadchain_mock::{Latency, MockConfig};
use thiserror::Error;

use crate::batch::RunConfig;
use crate::chain::{Chain, ChainError, Row, Template};
use crate::cli::{
    ApiArg, CallArgs, ChainArgs, MockFlags, PoolingArg, RunArgs, SweepArgs, TargetArgs,
};
use crate::endpoint::{ApiFormat, ClientOptions, Endpoint, Target, TargetError};
use crate::manifest::{Manifest, ManifestError};
use crate::record::Pooling;
use crate::runner::RetryPolicy;
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
            || self.mock_output_tokens.is_some()
            || self.mock_failure_rate.is_some()
            || self.mock_failure_statuses.is_some()
            || self.mock_rpm.is_some()
            || self.mock_rpm_burst.is_some()
            || self.mock_conn_cost.is_some()
            || self.mock_hang_rate.is_some()
            || self.mock_capacity.is_some()
            || self.mock_seed.is_some()
            || self.mock_reset_rate.is_some()
            || self.mock_truncate_rate.is_some()
            || self.mock_slow_body.is_some()
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
        c.validate().map_err(|e| ConfigError::Mock(e.to_string()))?;
        Ok(c)
    }
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

/// The endpoint: a real target from --target, or the embedded mock.
pub fn endpoint_from_args(t: &TargetArgs, mock: &MockFlags) -> Result<Endpoint, ConfigError> {
    if t.stream && t.api == ApiArg::Raw {
        return Err(flag(
            "--stream",
            "streaming is an OpenAI-format feature; drop --api raw",
        ));
    }
    let Some(url) = &t.target else {
        if t.api == ApiArg::Raw {
            return Err(flag(
                "--api",
                "raw needs --target (the embedded mock speaks OpenAI)",
            ));
        }
        if t.body.is_some() {
            return Err(flag("--body", "needs --target and --api raw"));
        }
        return Ok(Endpoint::Embedded(mock.to_config()?));
    };
    if mock.any() {
        return Err(flag(
            "--mock-*",
            "mock settings apply only to the embedded mock; drop them or drop --target",
        ));
    }
    let format = match t.api {
        ApiArg::Openai => ApiFormat::OpenAi,
        ApiArg::Raw => ApiFormat::Raw,
    };
    let method = reqwest::Method::from_bytes(t.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| flag("--method", format!("{:?} is not an HTTP method", t.method)))?;
    if format == ApiFormat::OpenAi && method != reqwest::Method::POST {
        return Err(flag(
            "--method",
            "OpenAI chat completions are POST; use --api raw",
        ));
    }
    let body = match &t.body {
        Some(_) if format == ApiFormat::OpenAi => {
            return Err(flag("--body", "only with --api raw"));
        }
        Some(b) => Some(Template::parse(b).map_err(|e| flag("--body", e.to_string()))?),
        None => None,
    };
    let mut target = match format {
        ApiFormat::OpenAi => Target::openai(url, t.model.clone())?,
        ApiFormat::Raw => Target::raw(url, method)?,
    }
    .with_headers(&t.headers)?
    .streaming(t.stream);
    if let Some(body) = body {
        target = target.with_body(body);
    }
    if let Ok(key) = std::env::var(&t.api_key_env)
        && !key.trim().is_empty()
    {
        target = target.with_api_key(&t.api_key_env, key.trim())?;
    }
    Ok(Endpoint::Remote(target))
}

/// One warning line when a real `--target` is given but the variable `--api-key-env` names is
/// unset or empty: the calls would go out without a key and fail as 401s (or, worse, succeed
/// against the wrong account), so say it before the first call. Names the variable, never a
/// value. None when an `-H` header already carries credentials.
pub fn api_key_warning(t: &TargetArgs, key: Option<&str>) -> Option<String> {
    t.target.as_ref()?;
    if key.is_some_and(|k| !k.trim().is_empty()) {
        return None;
    }
    let carries_credentials = t.headers.iter().any(|h| {
        let name = h.split_once(':').map_or(h.as_str(), |(n, _)| n).trim();
        let name = name.to_ascii_lowercase();
        name == "authorization" || name.contains("key") || name.contains("token")
    });
    if carries_credentials {
        return None;
    }
    let state = if key.is_some() {
        "is empty"
    } else {
        "is not set"
    };
    Some(format!(
        "WARNING: ${} {state}: requests to --target go without an API key \
         (set it, or name the right variable with --api-key-env)",
        t.api_key_env
    ))
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
    }
}

/// Retry settings from the flags.
pub fn retry_policy(c: &CallArgs) -> RetryPolicy {
    RetryPolicy {
        retry_passes: c.retry_passes,
        max_retries: c.max_retries,
        max_retry_wait: c.max_retry_wait,
        ..RetryPolicy::default()
    }
}

/// Checks `loadchain sweep` flags and builds its configuration.
pub fn sweep_config(args: &SweepArgs, command: String) -> Result<SweepConfig, ConfigError> {
    let mut limits = args.limits.clone();
    if limits.is_empty() {
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
    let pooling = match args.pooling {
        PoolingArg::On => vec![Pooling::On],
        PoolingArg::Off => vec![Pooling::Off],
        PoolingArg::Both => vec![Pooling::On, Pooling::Off],
    };
    let endpoint = endpoint_from_args(&args.common.target, &args.common.mock)?;
    let chain = chain_from_args(&args.common.chain)?;
    let origin = chain_origin(&args.common.chain);
    chain.check_columns(&Row::synthetic_columns(), &origin, "the sweep input")?;
    // A limit never exceeds the batch size: at most that many connections are open.
    let widest = limits
        .last()
        .copied()
        .unwrap_or(1)
        .min(sizes.last().copied().unwrap_or(1));
    check_open_files("--limits", widest, &endpoint, open_file_limit())?;
    Ok(SweepConfig {
        sizes,
        limits,
        pooling,
        chain,
        endpoint,
        model: args.common.target.model.clone(),
        stream: args.common.target.stream,
        client: client_options(&args.common.target, &args.common.calls),
        retry: retry_policy(&args.common.calls),
        rpm: args.common.calls.rpm,
        tpm: args.common.calls.tpm,
        warmup: args.warmup,
        command,
    })
}

/// Checks `loadchain run` flags and input files and builds its configuration: every input
/// error (flags, manifest, chain, mock settings) comes out of here, before anything is
/// written or sent.
pub fn run_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let chain = chain_from_args(&args.common.chain)?;
    let manifest = Manifest::load(&args.manifest, &args.id_column)?;
    chain.check_columns(
        &manifest.columns,
        &chain_origin(&args.common.chain),
        &manifest.path.display().to_string(),
    )?;
    let endpoint = endpoint_from_args(&args.common.target, &args.common.mock)?;
    let widest = args.limit.min(manifest.rows.len().max(1));
    check_open_files("--limit", widest, &endpoint, open_file_limit())?;
    if args.resume && args.out.is_none() {
        return Err(flag(
            "--resume",
            "needs --out: the folder of the run to continue",
        ));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        crate::report::free_report_dir(Path::new("reports"), SystemTime::now(), "run")
    });
    Ok(RunConfig {
        manifest,
        limit: args.limit,
        out,
        resume: args.resume,
        chain,
        endpoint,
        model: args.common.target.model.clone(),
        stream: args.common.target.stream,
        client: client_options(&args.common.target, &args.common.calls),
        retry: retry_policy(&args.common.calls),
        rpm: args.common.calls.rpm,
        tpm: args.common.calls.tpm,
        fail_on: args.fail_on.clone(),
    })
}

/// File descriptors kept free for everything that is not a connection (stdio, report files,
/// the runtime, the mock's listener).
const SPARE_FILES: u64 = 64;

/// This process's open-file limit (after `main` raised the soft limit to the hard one), or
/// None where there is no such limit to read.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Refuses a limit that would run out of file descriptors: every connection is one, two
/// with the embedded mock in the same process. Without this check, `--limits 5000` under
/// `ulimit -n 1024` turned into thousands of failed calls that looked like the server's fault.
pub fn check_open_files(
    flag: &'static str,
    limit: usize,
    endpoint: &Endpoint,
    available: Option<u64>,
) -> Result<(), ConfigError> {
    let Some(available) = available else {
        return Ok(());
    };
    let per_connection: u64 = if matches!(endpoint, Endpoint::Embedded(_)) {
        2
    } else {
        1
    };
    let needed = limit as u64 * per_connection + SPARE_FILES;
    if needed <= available {
        return Ok(());
    }
    Err(self::flag(
        flag,
        format!(
            "{limit} concurrent connections need about {needed} open files{} but this \
             process may open only {available}; raise the limit with `ulimit -n {needed}` \
             (past the hard limit that needs root) or choose a lower limit",
            if per_connection == 2 {
                " (two per connection with the embedded mock)"
            } else {
                ""
            }
        ),
    ))
}

/// The command line as typed, with header values redacted (they often carry keys).
pub fn redacted_command(args: impl IntoIterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let shown = if redact_next {
            redact_next = false;
            redact_header_value(&arg)
        } else if arg == "-H" || arg == "--header" {
            redact_next = true;
            arg
        } else if let Some(v) = arg.strip_prefix("--header=") {
            format!("--header={}", redact_header_value(v))
        } else if let Some(v) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
            format!("-H{}", redact_header_value(v))
        } else if i == 0 {
            Path::new(&arg)
                .file_name()
                .map_or(arg.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            crate::endpoint::redact::redact_urls(&arg).into_owned()
        };
        out.push(shell_quote(&shown));
    }
    out.join(" ")
}

fn redact_header_value(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_string(),
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn flag(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn sweep(args: &[&str]) -> Result<SweepConfig, ConfigError> {
        let mut all = vec!["loadchain", "sweep"];
        all.extend_from_slice(args);
        let Command::Sweep(a) = Cli::try_parse_from(all).unwrap().command else {
            panic!("not a sweep")
        };
        sweep_config(&a, String::new())
    }

    #[test]
    fn limits_and_sizes_are_sorted_and_deduplicated() {
        let c = sweep(&["--limits", "10,1,5,5", "--sizes", "50,10"]).unwrap();
        assert_eq!(c.limits, vec![1, 5, 10]);
        assert_eq!(c.sizes, vec![10, 50]);
        assert!(matches!(c.endpoint, Endpoint::Embedded(_)));
    }

    #[test]
    fn mock_flags_override_the_embedded_defaults() {
        let c = sweep(&["--mock-latency", "fixed:5ms", "--mock-failure-rate", "0"]).unwrap();
        let Endpoint::Embedded(m) = c.endpoint else {
            panic!("not embedded")
        };
        assert_eq!(m.latency, Latency::Fixed(Duration::from_millis(5)));
        assert_eq!(m.failure_rate, 0.0);
        assert_eq!(m.conn_cost, Duration::from_micros(1500));
        let c = sweep(&[
            "--mock-reset-rate",
            "0.1",
            "--mock-truncate-rate",
            "0.2",
            "--mock-slow-body",
            "1kB/s",
        ])
        .unwrap();
        let Endpoint::Embedded(m) = c.endpoint else {
            panic!("not embedded")
        };
        assert_eq!((m.reset_rate, m.truncate_rate), (0.1, 0.2));
        assert_eq!(m.slow_body.map(|r| r.bytes_per_sec()), Some(1000));
        let err = sweep(&[
            "--target",
            "http://127.0.0.1:1/v1",
            "--mock-slow-body",
            "1kB/s",
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("--mock-*"), "{err}");
    }

    #[test]
    fn mock_flags_with_a_target_are_rejected() {
        let err = sweep(&["--target", "http://127.0.0.1:1/v1", "--mock-seed", "1"]).unwrap_err();
        assert!(err.to_string().starts_with("--mock-*"), "{err}");
    }

    #[test]
    fn raw_mode_needs_a_target() {
        let err = sweep(&["--api", "raw"]).unwrap_err();
        assert!(err.to_string().starts_with("--api"), "{err}");
    }

    #[test]
    fn header_values_are_redacted_in_the_command() {
        let cmd = redacted_command(
            [
                "/usr/bin/loadchain",
                "sweep",
                "-H",
                "Authorization: Bearer sk-1",
                "--n",
                "5",
            ]
            .map(String::from),
        );
        assert_eq!(cmd, "loadchain sweep -H 'Authorization: <redacted>' --n 5");
    }

    #[test]
    fn a_limit_past_the_open_file_limit_is_refused_with_the_ulimit_to_use() {
        let embedded = Endpoint::Embedded(embedded_mock_defaults());
        let err = check_open_files("--limits", 5000, &embedded, Some(1024)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("--limits: 5000 concurrent"), "{text}");
        assert!(text.contains("`ulimit -n 10064`"), "{text}");
        assert!(check_open_files("--limits", 480, &embedded, Some(1024)).is_ok());
        assert!(check_open_files("--limits", 5000, &embedded, None).is_ok());
    }

    #[test]
    fn url_credentials_are_redacted_in_the_command() {
        let cmd = redacted_command(
            [
                "loadchain",
                "sweep",
                "--target",
                "http://user:pw-canary@127.0.0.1:9/v1?key=q-canary",
                "--target=https://u:p-canary@h/v1",
            ]
            .map(String::from),
        );
        assert!(!cmd.contains("canary"), "{cmd}");
        assert!(cmd.contains("127.0.0.1:9/v1?key=<redacted>"), "{cmd}");
    }
}
