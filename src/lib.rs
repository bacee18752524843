//! loadchain: benchmark and load-test concurrent API calls and multi-step LLM chains.
//!
//! A tour of the crate, in the direction data flows:
//! - [`record`]: raw per-call and per-chain records the runner emits.
//! - [`metrics`]: HdrHistogram recording and the summaries reports are built from.
//! - [`manifest`]: `loadchain run`'s durable files: CSV manifest in, results.jsonl (resumable),
//!   failed.csv and summary.json out.
//! - [`sweep`]: sizes × limits × pooling → runs → [`sweep::SweepReport`].
//! - [`report`]: terminal tables, Markdown, CSV, JSON, `.hgrm` and PNG charts.

pub mod chain;
pub mod manifest;
pub mod metrics;
pub mod record;
pub mod report;
pub mod sweep;
