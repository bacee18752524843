//! One integration-test binary (faster to link than one per file). Every test starts its own
//! mock server on 127.0.0.1:0; nothing leaves the machine.

mod adaptive;
mod anthropic;
mod batch;
mod cli;
mod common;
mod cost;
#[cfg(unix)]
mod deploy;
mod docs;
#[cfg(unix)]
mod exec;
#[cfg(unix)]
mod exec_sweep;
mod guard;
mod headers;
#[cfg(unix)]
mod hostile;
mod hotpath;
mod keepalive;
mod llm;
mod mock_binary;
mod openloop;
mod pacing;
mod plan;
mod pooling;
mod quality;
mod repeat;
mod resume;
mod run;
mod run_report;
mod schema;
mod segment;
#[cfg(unix)]
mod streaming;
mod sweep;
mod tls;
mod ux;
mod wire;
