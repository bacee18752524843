//! Sweeps: every batch size at every concurrency limit and pooling mode.

mod result;

pub use result::{RunSummary, Settings, SCHEMA_VERSION, SweepReport};
