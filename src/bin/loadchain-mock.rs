//! `loadchain-mock`: the mock server as a stand-alone binary. All logic lives in the library
//! ([`loadchain_mock::run_cli`]); this file parses flags and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use loadchain_mock::{MockArgs, exit_code, run_cli};

/// A configurable OpenAI-compatible mock API server for load tests.
// The about text is spelled out: a bare `about` would take the description of the package
// that builds this binary, which is loadchain's.
#[derive(Debug, Parser)]
#[command(
    name = "loadchain-mock",
    version,
    about = "A configurable OpenAI-compatible mock API server for load tests"
)]
struct Cli {
    #[command(flatten)]
    args: MockArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("Error: cannot start the tokio runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_cli(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
