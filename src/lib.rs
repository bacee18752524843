//! loadchain: benchmark and load-test concurrent API calls and multi-step LLM chains.
//!
//! A tour of the crate, in the direction data flows:
//! - [`cli`] → [`config`]: flags as typed, then checked settings (the embedded mock's
//!   defaults live in `config`).
//! - [`endpoint`]: what a call is (URL, format, auth) and the pooled/unpooled HTTP client.
//! - [`chain`]: steps whose prompts are templates over a row and the previous output.
//! - [`runner`]: one batch at one limit: semaphore, isolation, backoff, retry passes.
//! - [`record`] → [`metrics`]: raw records, then HdrHistogram summaries.
//! - [`manifest`]: CSV rows in, durable results.jsonl out, resume (for `loadchain run`).
//! - [`sweep`]: sizes × limits × pooling → [`sweep::SweepReport`].
//! - [`report`]: terminal tables, Markdown, CSV, JSON, `.hgrm` and PNG charts.
//! - [`threshold`]: `--fail-on` checks that turn a run into a CI pass/fail.
//! - [`lock`]: one loadchain process per output folder; [`files`]: the one schema version
//!   and the one atomic, fsynced file writer every output file goes through.
//! - [`app`], [`progress`], [`error`]: the binary's glue, progress bars and exit codes;
//!   [`docs`]: shell completions and man pages from the clap definition.

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
pub mod docs;
pub mod endpoint;
pub mod error;
pub mod files;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod progress;
pub mod record;
pub mod report;
pub mod runner;
pub mod sweep;
pub mod threshold;
