//! The `loadchain` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use loadchain::cli::Cli;
use loadchain::error::{FAILURE, exit_code};

/// mimalloc: fewer cycles per allocation than glibc's on the hot path (see README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            loadchain::stderr_line!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(FAILURE);
        }
    };
    // On a worker thread, not the blocking main thread: the spawning loop of a batch then
    // queues chain tasks locally and is woken without a cross-thread unpark per call.
    let app = runtime.block_on(async { tokio::spawn(loadchain::app::run(cli)).await });
    let result = match app {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => {
            loadchain::stderr_line!("Error: the run was cancelled: {join}");
            return ExitCode::from(FAILURE);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            loadchain::stderr_line!("Error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// `loadchain sweep | head` must not end in an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Every connection is a file descriptor; a limit of 1,000 needs about 2,000 (client and
/// in-process mock) while many systems default to a soft limit of 1,024. Raise the soft limit
/// to the hard one, as oha and wrk do; if that fails, connect errors will say so.
fn raise_open_file_limit() {
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
