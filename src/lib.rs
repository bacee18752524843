//! loadchain: benchmark and load-test concurrent API calls and multi-step LLM chains.
//!
//! A tour of the crate, in the direction data flows
//! (CLI → config → endpoint set-up → runner → records → metrics → report):
//! - [`cli`] → [`config`]: flags as typed, then checked settings: [`sweep::SweepConfig`] and
//!   [`batch::RunConfig`], every cross-flag rule and input error ([`config::ConfigError`])
//!   in one place; the embedded mock's defaults live in `config`.
//! - [`endpoint`]: what calls go to. [`endpoint::Target`] (URL, format, auth; built by named
//!   constructors, never patched), the pooled/unpooled [`endpoint::HttpClient`] that times
//!   one call, SSE, secret redaction, and [`endpoint::Session`]: one set-up for both
//!   commands (start the embedded mock or take a URL, then a preflight call).
//! - [`chain`]: steps whose prompts are templates over a row and the previous output.
//! - [`runner`]: one batch at one limit: semaphore, isolation, backoff, retry passes;
//!   [`runner::RunnerFactory`] makes the runner of each (limit, pooling). Never prints.
//! - [`record`] → [`metrics`]: raw records ([`record::RunKey`] names a run), then
//!   HdrHistogram summaries ([`metrics::RunSummary`], shared by both commands).
//! - [`sweep`]: sizes × limits × pooling → [`sweep::SweepReport`]; entry point
//!   [`sweep::run`]`(&SweepConfig, ui, stop)`.
//! - [`batch`] and [`manifest`]: `loadchain run`: CSV rows in, durable results.jsonl out,
//!   resume; entry point [`batch::run`]`(&RunConfig, ui, stop)`.
//! - [`report`]: terminal tables, Markdown, CSV, JSON, `.hgrm` and PNG charts, for sweep and
//!   run folders alike; never touches the network.
//! - [`plan`]: `loadchain plan`, the Little's-law limit for a quota, before any call.
//! - [`threshold`]: `--fail-on` checks and the exit [`threshold::Verdict`].
//! - [`lock`]: one loadchain process per output folder; [`files`]: the one schema version
//!   and the one atomic, fsynced file writer every output file goes through.
//! - [`app`]: the command layer: owns Ctrl-C (the stop signal the library takes as a
//!   parameter), prints, maps errors to exit codes ([`error`]); [`progress`] draws bars;
//!   [`docs`]: shell completions and man pages from the clap definition.
//!
//! Nothing below `app` imports `app`: the module graph has no cycles.

/// `eprintln!` that never panics: a closed stderr (`2>&-`) loses the line, never the run.
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod app;
pub mod batch;
pub mod chain;
pub mod cli;
pub mod config;
pub mod cost;
pub mod docs;
pub mod endpoint;
pub mod error;
pub mod exec;
pub mod files;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod runner;
pub mod segment;
pub mod slo;
pub mod stats;
pub mod sweep;
pub mod threshold;
