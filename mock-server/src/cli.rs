//! Command-line flags shared by `loadchain-mock` and `loadchain mock` (via
//! `#[command(flatten)]`), their value parsers, and [`run_cli`], the body of both commands.
//!
//! Flags are all `Option`s: a given flag overrides the value from `--config FILE`, which
//! overrides the built-in default. Value parsers reject bad input with a one-line message
//! (clap then exits with status 2); cross-field rules are checked once, after merging.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{ConfigError, MockConfig};
use crate::fault::ByteRate;
use crate::latency::{Latency, ShortDuration, parse_duration};
use crate::ratelimit::QuotaWindow;
use crate::server::MockServer;

/// Mock server flags. Flatten into a clap command; convert with [`MockArgs::into_config`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MockArgs {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,

    /// TCP port; 0 picks a free port (the URL is printed) [default: 0]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Base latency per request (time to first token): fixed:80ms, uniform:30ms..150ms,
    /// normal:90ms,20ms, lognormal:90ms,0.5 (median, sigma), or a bare duration [default: fixed:0ms]
    #[arg(long, value_name = "DIST")]
    pub latency: Option<Latency>,

    /// Extra time per output token, e.g. 2ms (streamed responses emit one chunk per token) [default: 0ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub token_time: Option<Duration>,

    /// Time to first token after --latency, same DIST forms (first chunk after latency +
    /// ttft, later chunks --token-time apart) [default: one --token-time]
    #[arg(long, value_name = "DIST")]
    pub ttft: Option<Latency>,

    /// Batching slowdown F: per-token time x (1 + F x requests in flight) [default: 0]
    #[arg(long, value_name = "F", value_parser = parse_slowdown)]
    pub load_slowdown: Option<f64>,

    /// Completion length in tokens (words); a request's max_tokens caps it [default: 16]
    #[arg(long, value_name = "N")]
    pub output_tokens: Option<u32>,

    /// Fraction of requests answered with a 5xx error, 0 to 1 [default: 0]
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub failure_rate: Option<f64>,

    /// Status codes a failing request picks from, comma-separated [default: 500,502,503]
    #[arg(long, value_name = "CODES", value_delimiter = ',', value_parser = parse_status)]
    pub failure_statuses: Option<Vec<u16>>,

    /// Rate limit in requests per minute (token bucket); excess gets 429 [default: unlimited]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,

    /// How many requests may arrive back to back before 429s start [default: the rpm value].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm_burst: Option<u32>,

    /// Rate limit in tokens per minute, charged prompt/4 + max_tokens per request (its own
    /// bucket); excess gets 429 [default: unlimited]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tpm: Option<u32>,

    /// How --rpm/--tpm refill: bucket (continuously) or fixed (all at once each minute)
    /// [default: bucket]
    #[arg(long, value_enum, value_name = "KIND")]
    pub quota_window: Option<QuotaWindow>,

    /// Extra wait on the first request of each new connection (models TCP+TLS set-up),
    /// e.g. 1.5ms [default: 0ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub conn_cost: Option<Duration>,

    /// Fraction of requests that never answer, 0 to 1 [default: 0]
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub hang_rate: Option<f64>,

    /// At most N requests processed at once, the rest queue [default: unlimited]
    #[arg(long, value_name = "N", value_parser = parse_capacity)]
    pub capacity: Option<usize>,

    /// Seed for every random choice and for the generated content [default: 42]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Request bodies larger than this many bytes get 413 [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Fraction of successful chat responses cut by a TCP reset (RST) after the headers and
    /// half the body, 0 to 1; on HTTP/2 the stream is reset [default: 0]
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub reset_rate: Option<f64>,

    /// Fraction of successful chat responses closed cleanly mid-body (half of Content-Length,
    /// or half the stream, never the closing DONE event), 0 to 1 [default: 0]
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub truncate_rate: Option<f64>,

    /// Trickle successful chat bodies at this rate: 512B/s, 1kB/s (1,000 bytes), 1KiB/s
    /// (1,024), 2MB/s, 1MiB/s, or bytes per second [default: at once]
    #[arg(long, value_name = "RATE")]
    pub slow_body: Option<ByteRate>,

    /// Vary the content per call (about one word in four, seeded), like a sampled model
    #[arg(long)]
    pub vary: bool,

    /// Keep every CPU out of its idle state with lowest-priority (SCHED_IDLE) spinners, so a
    /// client's measured overhead excludes the wake-up of idle (virtual) CPUs; Linux only
    #[arg(long)]
    pub keep_cpus_awake: bool,

    /// TOML file with the same settings (keys in snake_case); flags given here override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl MockArgs {
    /// Loads `--config FILE` if given (or the defaults), applies the flags on top, and
    /// validates the result.
    pub fn into_config(self) -> Result<MockConfig, ConfigError> {
        let mut c = match &self.config {
            Some(path) => MockConfig::from_toml_file(path)?,
            None => MockConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(
            bind,
            port,
            latency,
            token_time,
            load_slowdown,
            output_tokens,
            failure_rate,
            failure_statuses,
            conn_cost,
            hang_rate,
            seed,
            max_body_bytes,
            reset_rate,
            truncate_rate
        );
        if self.vary {
            c.vary = true;
        }
        if self.slow_body.is_some() {
            c.slow_body = self.slow_body;
        }
        if self.ttft.is_some() {
            c.ttft = self.ttft;
        }
        if self.rpm.is_some() {
            c.rpm = self.rpm;
        }
        if self.rpm_burst.is_some() {
            c.rpm_burst = self.rpm_burst;
        }
        if self.tpm.is_some() {
            c.tpm = self.tpm;
        }
        if let Some(w) = self.quota_window {
            c.quota_window = w;
        }
        if self.capacity.is_some() {
            c.capacity = self.capacity;
        }
        c.validate()?;
        Ok(c)
    }
}

/// A fraction in `[0, 1]` (`--failure-rate`, `--hang-rate`, `--reset-rate`, `--truncate-rate`).
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number (expected a fraction from 0 to 1)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a fraction from 0 to 1"))
    }
}

/// An HTTP status code in `100..=599`.
pub fn parse_status(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(v) if (100..=599).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not an HTTP status code (100..=599)")),
    }
}

/// A slowdown factor of 0 or more (`--load-slowdown`).
pub fn parse_slowdown(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a factor of 0 or more")),
    }
}

fn parse_capacity(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

/// The effective settings, one `key: value` per line, for the start-up banner.
pub fn describe(config: &MockConfig) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
    let statuses: Vec<String> = config.failure_statuses.iter().map(u16::to_string).collect();
    format!(
        "  latency:          {}\n  ttft:             {}\n  token_time:       {}\n  load_slowdown:    {}\n  output_tokens:    {}\n  failure_rate:     {} (statuses {})\n  rpm:              {} (burst {})\n  tpm:              {} ({} window)\n  conn_cost:        {}\n  hang_rate:        {}\n  capacity:         {}\n  seed:             {}\n  max_body_bytes:   {}\n  reset_rate:       {}\n  truncate_rate:    {}\n  slow_body:        {}",
        config.latency,
        config
            .ttft
            .map_or_else(|| "one token_time".to_string(), |t| t.to_string()),
        ShortDuration(config.token_time),
        config.load_slowdown,
        config.output_tokens,
        config.failure_rate,
        statuses.join(","),
        opt(config.rpm.map(|v| v.to_string())),
        opt(config.rpm_burst.or(config.rpm).map(|v| v.to_string())),
        opt(config.tpm.map(|v| v.to_string())),
        config.quota_window,
        ShortDuration(config.conn_cost),
        config.hang_rate,
        opt(config.capacity.map(|v| v.to_string())),
        config.seed,
        config.max_body_bytes,
        config.reset_rate,
        config.truncate_rate,
        config
            .slow_body
            .map_or_else(|| "off".to_string(), |r| r.to_string()),
    )
}

/// Runs the mock until Ctrl-C or SIGTERM: start, print the URL and settings on stdout,
/// wait for the signal, shut down gracefully. Errors from the config are [`ConfigError`]s
/// in the chain (exit code 2 in both binaries); the rest are runtime failures.
pub async fn run_cli(args: MockArgs) -> anyhow::Result<()> {
    let origin = args.config.clone();
    // Held until the server has shut down; dropping it stops the spinners.
    let _awake = match args.keep_cpus_awake {
        true => Some(crate::awake::KeepAwake::start().map_err(|e| {
            anyhow::Error::new(ConfigError::Invalid {
                origin: String::new(),
                key: "keep_cpus_awake",
                flag: "keep-cpus-awake",
                message: format!("cannot run threads at SCHED_IDLE: {e}"),
            })
        })?),
        false => None,
    };
    let config = args.into_config().map_err(|e| {
        let err = anyhow::Error::new(e);
        match origin {
            Some(path) => err.context(format!("invalid mock configuration ({})", path.display())),
            None => err.context("invalid mock configuration"),
        }
    })?;
    // Install the handlers before announcing the URL: whoever reads that line may signal
    // at once, and an uninstalled SIGTERM would kill the process instead of draining it.
    let shutdown = ShutdownSignal::install()?;
    let server = MockServer::start(config)
        .await
        .context("cannot start the mock server")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "loadchain-mock listening on {}", server.url())
            .and_then(|()| writeln!(out, "{}", describe(server.config())))
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    shutdown.recv().await;
    eprintln!("loadchain-mock: shutting down");
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what `kill` and container runtimes send).
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            // If Ctrl-C cannot be awaited there is no way to be told to stop: stop now.
            let _ = tokio::signal::ctrl_c().await;
            let _ = &mut self;
        }
    }
}

/// Exit status for an error from [`run_cli`]: 2 when a [`ConfigError`] is in the chain
/// (bad input), 1 otherwise (runtime failure).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let is_config = err.chain().any(|e| {
        e.is::<ConfigError>()
            || e.downcast_ref::<crate::server::MockError>()
                .is_some_and(|m| matches!(m, crate::server::MockError::Config(_)))
    });
    if is_config { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MockArgs,
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn parse(argv: &[&str]) -> Result<MockArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_override_defaults() {
        let c = parse(&[
            "--latency",
            "uniform:30ms..150ms",
            "--token-time",
            "2ms",
            "--failure-statuses",
            "500,503",
            "--rpm",
            "60",
            "--conn-cost",
            "1.5ms",
            "--reset-rate",
            "0.1",
            "--truncate-rate",
            "0.2",
            "--slow-body",
            "2kB/s",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(c.latency.to_string(), "uniform:30ms..150ms");
        assert_eq!(c.token_time, Duration::from_millis(2));
        assert_eq!(c.failure_statuses, vec![500, 503]);
        assert_eq!(c.rpm, Some(60));
        assert_eq!(c.conn_cost, Duration::from_micros(1500));
        assert_eq!(c.seed, 42);
        assert_eq!(c.reset_rate, 0.1);
        assert_eq!(c.truncate_rate, 0.2);
        assert_eq!(c.slow_body.map(ByteRate::bytes_per_sec), Some(2000));
        let text = describe(&c);
        assert!(text.contains("reset_rate:       0.1"), "{text}");
        assert!(text.contains("slow_body:        2kB/s"), "{text}");
    }

    #[test]
    fn bad_values_are_one_line_usage_errors() {
        for argv in [
            &["--latency", "foo:1ms"][..],
            &["--failure-rate", "1.5"],
            &["--hang-rate", "x"],
            &["--failure-statuses", "500,99"],
            &["--rpm", "0"],
            &["--tpm", "0"],
            &["--quota-window", "sliding"],
            &["--capacity", "0"],
            &["--token-time", "soon"],
            &["--reset-rate", "2"],
            &["--truncate-rate", "1.2"],
            &["--slow-body", "fast"],
            &["--slow-body", "0B/s"],
            &["--ttft", "soon"],
            &["--load-slowdown", "lots"],
        ] {
            let err = parse(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
            let first = err.to_string();
            let first = first.lines().next().unwrap();
            assert!(first.contains(argv[0]), "{argv:?}: {first}");
        }
    }

    #[test]
    fn load_slowdown_is_a_factor_of_zero_or_more() {
        assert_eq!(parse_slowdown("0.5"), Ok(0.5));
        assert!(parse_slowdown("-1").is_err());
        assert!(parse_slowdown("inf").is_err());
    }

    #[test]
    fn config_file_errors_map_to_exit_code_two() {
        let err = anyhow::Error::new(ConfigError::Invalid {
            origin: String::new(),
            key: "rpm",
            flag: "rpm",
            message: "x".into(),
        })
        .context("wrapped");
        assert_eq!(exit_code(&err), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), 1);
    }
}
