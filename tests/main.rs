//! One integration-test binary (faster to link than one per file). Every test starts its own
//! mock server on 127.0.0.1:0; nothing leaves the machine.

mod batch;
mod cli;
mod common;
mod docs;
mod guard;
#[cfg(unix)]
mod hostile;
mod mock_binary;
mod openloop;
mod run;
mod run_report;
mod schema;
#[cfg(unix)]
mod streaming;
mod sweep;
mod tls;
mod ux;
