//! Command-line types (clap derive) and value parsers. No I/O: `config` turns these into
//! checked settings.

// The doc comments below are clap's help text, written for a terminal: `[[steps]]`,
// `<UTC time>` and bare URLs are meant literally there, not as rustdoc markup.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use loadchain_mock::{ByteRate, Latency, MockArgs, parse_duration, parse_fraction, parse_status};

mod exec;
mod limit;
mod parse;
mod plan;

pub use limit::{LimitArg, parse_limit};
pub use parse::{parse_count, parse_size};
pub use plan::PlanArgs;

use crate::threshold::Threshold;
use parse::{parse_count_u32, parse_positive_duration};

/// Benchmark and load-test concurrent API calls and multi-step LLM chains.
#[derive(Debug, Parser)]
#[command(name = "loadchain", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run N chains at several concurrency limits, pooled and unpooled, and report speedup.
    Sweep(SweepArgs),
    /// Run a CSV manifest of rows through a chain: resumable, retries only failed rows.
    Run(RunArgs),
    /// Work out the largest concurrency limit a rate quota allows (Little's law), before paying.
    Plan(PlanArgs),
    /// Start the mock API server on its own (same as the loadchain-mock binary).
    Mock(MockArgs),
    /// Re-render a report folder from its report.json, or compare two report folders.
    Report(ReportArgs),
    /// Merge the report folders of `--segment i/n` sweeps into one report of the whole load.
    Merge(MergeArgs),
    /// Print a shell completion script on stdout (e.g. `loadchain completions bash >
    /// ~/.local/share/bash-completion/completions/loadchain`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: `loadchain man | man -l -`.
    Man(ManArgs),
}

/// `loadchain completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `loadchain man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's own page instead (sweep, run, …): its flags in full.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// `loadchain sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Concurrency limits to measure, comma-separated (1 = sequential); `auto` adds a run whose
    /// limit adapts to the endpoint's quota and reports the recommended limit.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_limit, default_value = "1,5,10,25")]
    pub limits: Vec<LimitArg>,
    /// Batch size: chains per run (accepts 10k). Ignored when --sizes is given.
    #[arg(short = 'n', long = "n", value_name = "N", value_parser = parse_count, default_value = "100")]
    pub n: usize,
    /// Several batch sizes, comma-separated, e.g. 10,25,50,100 (the course table).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_count)]
    pub sizes: Option<Vec<usize>>,
    /// Measure with a pooled client, a fresh connection per call, or both.
    #[arg(long, value_enum, default_value_t = PoolingArg::Both)]
    pub pooling: PoolingArg,
    /// Run this program once per chain instead of the HTTP chain, e.g. 'python3 chain.py
    /// --topic {{topic}}' ({{id}}, {{topic}}; env LOADCHAIN_ROW_ID = 1..N): a speedup table
    /// of your own program. Measures pooling on only (a program has no pool to switch off).
    #[arg(long, value_name = "COMMAND", conflicts_with_all = exec::SWEEP_EXEC_CONFLICTS)]
    pub exec: Option<String>,
    /// With --exec: run the command through `sh -c` (placeholders substituted first).
    #[arg(long, requires = "exec")]
    pub shell: bool,
    /// Chain, target, retries and mock settings.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Before each run, open min(limit, n) connections with discarded calls, so the timed
    /// batch starts with a warm pool (each warm-up call costs like a real one).
    #[arg(long)]
    pub warmup: bool,
    /// Run every cell K times, interleaved (each round in a rotated order); tables then show
    /// the mean and its 95 % confidence interval.
    #[arg(long, value_name = "K", value_parser = parse_count, default_value = "1")]
    pub repeat: usize,
    /// Open loop: chain arrivals per second to offer, comma-separated (replaces --limits).
    #[command(flatten)]
    pub open_loop: OpenLoopArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Open-loop load: chains arrive on a schedule, measured from their intended start.
#[derive(Debug, Args)]
pub struct OpenLoopArgs {
    /// Chain arrivals per second, comma-separated (e.g. 25,50,100); one run per rate,
    /// measured from each chain's intended start. Replaces --limits.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse::parse_rate)]
    pub rates: Option<Vec<f64>>,
    /// How arrivals are spaced: constant, poisson (seeded) or gamma:CV (CV > 1 is burstier).
    #[arg(long, value_name = "PROCESS", default_value = "poisson")]
    pub arrivals: crate::runner::Arrivals,
    /// Generate arrivals for this long at each rate (e.g. 30s) instead of --n of them.
    #[arg(long, value_name = "D", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// With --rates: at most N chains in flight; later arrivals wait, and the wait counts.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_concurrency: Option<usize>,
}

/// `loadchain run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// CSV file with a header row; one chain per row.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Name of the column that identifies a row.
    #[arg(long, value_name = "NAME", default_value = "id")]
    pub id_column: String,
    /// Maximum chains in flight (1 = sequential); `auto` finds the largest limit the
    /// endpoint's quota allows as the run goes.
    #[arg(long, short = 'c', value_name = "N", value_parser = parse_limit, default_value = "10")]
    pub limit: LimitArg,
    /// Output folder for results.jsonl, failed.csv and summary.json [default: reports/<UTC time>-run].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue a run in --out: skip rows that already succeeded, retry the rest.
    #[arg(long)]
    pub resume: bool,
    /// Write calls.csv (one row per call, streamed as calls finish); off for long soaks.
    #[arg(long, value_enum, value_name = "ON|OFF", default_value_t = OnOff::On)]
    pub calls_csv: OnOff,
    /// Run this program once per row instead of the HTTP chain, e.g. 'python3 chain.py
    /// --topic {{topic}}': its stdout is the output, a non-zero exit fails the row.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// With --exec: run the command through `sh -c` (placeholders substituted first).
    #[arg(long, requires = "exec")]
    pub shell: bool,
    /// Chain, target, retries and mock settings.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Hide the settings banner and the progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print summary.json's content on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 if the run breaks one of these checks, e.g. 'p99>30s,errors>5%,failed>0'.
    #[arg(long = "fail-on", value_name = "CHECKS", value_delimiter = ',')]
    pub fail_on: Vec<Threshold>,
}

/// `loadchain report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report folder (or its report.json) to re-render; give two to compare them.
    #[arg(value_name = "DIR", num_args = 1..=2, required = true)]
    pub dirs: Vec<PathBuf>,
    /// With two folders: print the per-cell comparison (change, interval, verdict) as JSON.
    #[arg(long)]
    pub json: bool,
    /// With two folders: exit 1 when more than N cells are significantly slower in the
    /// second, e.g. 'regressed>0' (a CI check against a baseline folder).
    #[arg(long = "fail-on", value_name = "regressed>N", value_parser = crate::report::parse_regressed)]
    pub fail_on: Option<usize>,
}

/// `loadchain merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Segment report folders (from `sweep --segment i/n --out DIR`).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged report folder to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Exit 1 if a merged run breaks one of these checks (the same as sweep's and run's
    /// --fail-on), evaluated on the merged histograms, e.g. 'p99>2s,errors>1%,failed>0'.
    #[arg(long = "fail-on", value_name = "CHECKS", value_delimiter = ',')]
    pub fail_on: Vec<crate::threshold::Threshold>,
}

/// What `sweep` and `run` share: the chain, the target, retries and the embedded mock.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Chain shape and calls.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Target and protocol.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Retries, timeouts and rate limits.
    #[command(flatten)]
    pub calls: CallArgs,
    /// Embedded mock settings.
    #[command(flatten)]
    pub mock: MockFlags,
    /// Execution segment and synchronised start.
    #[command(flatten)]
    pub segment: SegmentArgs,
}

/// Splitting one run over several processes or machines (see `crate::segment`).
#[derive(Debug, Args, Default)]
pub struct SegmentArgs {
    /// Run only segment i of n of the load (run: its share of the rows; sweep: its share of
    /// each size, limit and rate cap); `loadchain merge` joins the n report folders.
    #[arg(long, value_name = "i/n")]
    pub segment: Option<crate::segment::Segment>,
    /// Wait until this RFC 3339 time (e.g. 2026-11-28T09:00:00Z), then start, so that all
    /// segments start together.
    #[arg(long, value_name = "TIME", value_parser = crate::segment::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// Which pooling modes a sweep measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolingArg {
    /// One shared client, connections reused.
    On,
    /// A fresh connection for every call.
    Off,
    /// Both, side by side.
    Both,
}

/// Request/response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// OpenAI chat completions.
    Openai,
    /// Plain HTTP: the body template is sent as is, the response body is the output.
    Raw,
    /// Anthropic Messages API (POST {target}/v1/messages, x-api-key, anthropic-version).
    Anthropic,
}

/// Chain shape.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Dependent calls per chain: step k's prompt carries step k-1's output.
    #[arg(long, value_name = "N", value_parser = parse_count, default_value = "3")]
    pub steps: usize,
    /// TOML chain file ([[steps]] with name, prompt, optional system, max_tokens); replaces --steps.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
}

/// Where calls go.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Endpoint URL (OpenAI: base like https://api.openai.com/v1). Without it, the embedded mock.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Request format.
    #[arg(long, value_enum, default_value_t = ApiArg::Openai)]
    pub api: ApiArg,
    /// Model name sent with each OpenAI request.
    #[arg(long, value_name = "NAME", default_value = "gpt-4o-mini")]
    pub model: String,
    /// Environment variable holding the API key (sent as a Bearer token, or x-api-key for
    /// --api anthropic; unset = no header). Default OPENAI_API_KEY, or ANTHROPIC_API_KEY.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// HTTP method (raw mode).
    #[arg(long, value_name = "METHOD", default_value = "POST")]
    pub method: String,
    /// Body template for raw mode ({{column}}, {{previous}}); default: the step's prompt.
    #[arg(long, value_name = "TEMPLATE")]
    pub body: Option<String>,
    /// Accept invalid TLS certificates (self-signed test servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Speak HTTP/2 without negotiation (h2c); default HTTP/1.1 or ALPN.
    #[arg(long)]
    pub http2: bool,
    /// Ask for streamed responses (OpenAI "stream": true) and measure time to first token.
    #[arg(long)]
    pub stream: bool,
    /// Service-level objectives per request, e.g. 'ttft<500ms,itl<50ms,e2e<10s' (also tpot):
    /// reports slo_attainment and goodput (requests/s meeting all of them).
    #[arg(long, value_name = "SLOS")]
    pub slo: Option<crate::slo::Slo>,
    /// Follow 3xx redirects (at most 10 hops). The API key and -H headers are sent to the
    /// target's own origin only. Default: a 3xx fails the call as `redirect`.
    #[arg(long)]
    pub follow_redirects: bool,
    /// Largest response body read per call (bytes, or 64KiB, 16MiB, 1MB); a larger body fails
    /// the call as `body` and is not kept.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16MiB")]
    pub max_response_bytes: u64,
}

impl TargetArgs {
    /// The variable the API key is read from: `--api-key-env`, else the API's usual one.
    pub fn key_env(&self) -> &str {
        match (&self.api_key_env, self.api) {
            (Some(var), _) => var,
            (None, ApiArg::Anthropic) => "ANTHROPIC_API_KEY",
            (None, _) => "OPENAI_API_KEY",
        }
    }
}

/// Retries, timeouts and client-side rate limits.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Passes over the failed rows after the first pass.
    #[arg(long, value_name = "N", default_value = "1")]
    pub retry_passes: u32,
    /// A failed chain's retry (a retry pass, or `run --resume`) starts again at step 1.
    /// Default: it resumes at the step that failed, with the saved outputs of the steps
    /// before it (reports count the calls saved).
    #[arg(long)]
    pub restart_chains: bool,
    /// Backoff retries per call after 429, 503 or 529 (exponential, full jitter, honours Retry-After).
    #[arg(long, value_name = "N", default_value = "3")]
    pub max_retries: u32,
    /// Longest wait a server may ask for in Retry-After / retry-after-ms; a call asked to wait
    /// longer fails at once as `rate_limited`, saying what the server asked.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub max_retry_wait: Duration,
    /// Per-call timeout, send to last byte (e.g. 30s, 500ms, 1.5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "60s")]
    pub timeout: Duration,
    /// Connection set-up timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "10s")]
    pub connect_timeout: Duration,
    /// Close a kept connection idle this long instead of reusing it: below the server's
    /// keep-alive timeout (uvicorn 5s), the client retires it first. A shorter
    /// `Keep-Alive: timeout=N` from the server wins.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, default_value = "4s")]
    pub idle_timeout: Duration,
    /// Never send a request again when its reused connection closes before any byte of the
    /// answer (default: it goes once more on a fresh connection, counted as `stale_retries`).
    #[arg(long)]
    pub no_stale_retry: bool,
    /// Client-side cap on requests per minute (sends are paced evenly).
    #[arg(long, value_name = "N", value_parser = parse_count_u32)]
    pub rpm: Option<u32>,
    /// Client-side cap on tokens per minute (prompt bytes / 4 + max_tokens, estimated).
    #[arg(long, value_name = "N", value_parser = parse_count_u32)]
    pub tpm: Option<u32>,
    /// Pace sends by the quota the server announces (x-ratelimit-*, anthropic-ratelimit-*,
    /// retry-after-ms): when little is left, spread the rest until the reset instead of
    /// sending into 429s.
    #[arg(long, value_enum, value_name = "ON|OFF", default_value_t = OnOff::On)]
    pub pace: OnOff,
    /// Price per 1M tokens, 'in=0.15,out=0.60': reports then say what each run, step and
    /// chain cost, and what retries cost (overrides the chain file's `price`).
    #[arg(long, value_name = "PRICES", value_parser = parse_price)]
    pub price: Option<crate::cost::Price>,
}

fn parse_price(s: &str) -> Result<crate::cost::Price, String> {
    s.parse()
}

/// Overrides of the embedded mock's defaults: the mock's own flags with a `mock-` prefix.
#[derive(Debug, Args, Default)]
pub struct MockFlags {
    /// Mock per-call latency: fixed:80ms, uniform:30ms..150ms, normal:90ms,20ms, lognormal:90ms,0.5.
    #[arg(long, value_name = "DIST", help_heading = "Embedded mock")]
    pub mock_latency: Option<Latency>,
    /// Mock time per output token.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Embedded mock")]
    pub mock_token_time: Option<Duration>,
    /// Mock time to first token after the latency (same DIST forms); later tokens --mock-token-time apart.
    #[arg(long, value_name = "DIST", help_heading = "Embedded mock")]
    pub mock_ttft: Option<Latency>,
    /// Mock batching slowdown F: per-token time x (1 + F x requests in flight).
    #[arg(long, value_name = "F", value_parser = loadchain_mock::parse_slowdown, help_heading = "Embedded mock")]
    pub mock_load_slowdown: Option<f64>,
    /// Mock completion length in tokens.
    #[arg(long, value_name = "N", help_heading = "Embedded mock")]
    pub mock_output_tokens: Option<u32>,
    /// Mock fraction of calls answered with a 5xx (0..1).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction, help_heading = "Embedded mock")]
    pub mock_failure_rate: Option<f64>,
    /// Mock status codes for injected failures, comma-separated.
    #[arg(long, value_name = "CODES", value_delimiter = ',', value_parser = parse_status, help_heading = "Embedded mock")]
    pub mock_failure_statuses: Option<Vec<u16>>,
    /// Mock rate limit in requests per minute (excess gets 429 + Retry-After).
    #[arg(long, value_name = "N", value_parser = parse_count_u32, help_heading = "Embedded mock")]
    pub mock_rpm: Option<u32>,
    /// Mock requests allowed back to back before 429s start [default: the --mock-rpm value].
    #[arg(long, value_name = "N", value_parser = parse_count_u32, help_heading = "Embedded mock")]
    pub mock_rpm_burst: Option<u32>,
    /// Mock rate limit in tokens per minute (prompt/4 + max_tokens per call; its own bucket).
    #[arg(long, value_name = "N", value_parser = parse_count_u32, help_heading = "Embedded mock")]
    pub mock_tpm: Option<u32>,
    /// How the mock's quotas refill: bucket (continuously) or fixed (each whole minute).
    #[arg(long, value_enum, value_name = "KIND", help_heading = "Embedded mock")]
    pub mock_quota_window: Option<loadchain_mock::QuotaWindow>,
    /// Mock extra wait on each new connection's first request (TCP+TLS set-up).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Embedded mock")]
    pub mock_conn_cost: Option<Duration>,
    /// Mock fraction of calls that never answer (0..1).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction, help_heading = "Embedded mock")]
    pub mock_hang_rate: Option<f64>,
    /// Mock maximum requests processed at once; the rest queue.
    #[arg(long, value_name = "N", value_parser = parse_count, help_heading = "Embedded mock")]
    pub mock_capacity: Option<usize>,
    /// Mock seed for every random choice.
    #[arg(long, value_name = "N", help_heading = "Embedded mock")]
    pub mock_seed: Option<u64>,
    /// Mock fraction of calls cut by a TCP reset mid-body (0..1).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction, help_heading = "Embedded mock")]
    pub mock_reset_rate: Option<f64>,
    /// Mock fraction of calls closed mid-body or mid-stream (0..1).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction, help_heading = "Embedded mock")]
    pub mock_truncate_rate: Option<f64>,
    /// Mock body trickle rate: 512B/s, 1kB/s, 1KiB/s, 2MB/s, or bytes per second.
    #[arg(long, value_name = "RATE", help_heading = "Embedded mock")]
    pub mock_slow_body: Option<ByteRate>,
    /// Mock content varies per call (about one word in four, seeded), like a sampled model.
    #[arg(long, help_heading = "Embedded mock")]
    pub mock_vary: bool,
    /// Mock TOML config file; --mock-* flags override it.
    #[arg(long, value_name = "FILE", help_heading = "Embedded mock")]
    pub mock_config: Option<PathBuf>,
}

/// Sweep output.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Report folder [default: reports/<UTC time>-sweep].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write no report folder.
    #[arg(long, conflicts_with = "out")]
    pub no_report: bool,
    /// Print the full result as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write calls.csv (one row per call, streamed as calls finish); off for long soaks.
    #[arg(long, value_enum, value_name = "ON|OFF", default_value_t = OnOff::On)]
    pub calls_csv: OnOff,
    /// Hide progress bars and the settings banner.
    #[arg(short, long)]
    pub quiet: bool,
    /// Exit 1 if any run breaks one of these checks, e.g. 'p99>2s,errors>1%,failed>0,efficiency<0.8'.
    #[arg(long = "fail-on", value_name = "CHECKS", value_delimiter = ',')]
    pub fail_on: Vec<Threshold>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sweep_defaults_are_the_main_job() {
        let cli = Cli::try_parse_from(["loadchain", "sweep"]).unwrap();
        let Command::Sweep(args) = cli.command else {
            panic!("not a sweep")
        };
        assert_eq!(args.limits, [1, 5, 10, 25].map(LimitArg::Fixed).to_vec());
        assert_eq!(args.n, 100);
        assert_eq!(args.pooling, PoolingArg::Both);
        assert_eq!(args.common.chain.steps, 3);
    }
}
