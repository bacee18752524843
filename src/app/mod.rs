//! The subcommands as the binary runs them: flags → config → library → output. Prints; the
//! library below it does not.

use anyhow::Result;
use std::io::Write;

use crate::cli::{Cli, Command, ReportArgs};
use crate::error::InputError;
use crate::report;
use crate::runner::StopSignal;

mod batch;
mod plan;
mod sweep;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sweep(args) => sweep::run(args).await,
        Command::Run(args) => batch::run(args).await,
        Command::Plan(args) => plan::run(&args),
        Command::Mock(args) => loadchain_mock::run_cli(args).await,
        Command::Report(args) => report_cmd(&args),
        Command::Merge(args) => merge_cmd(&args),
        Command::Completions(args) => print_bytes(&crate::docs::completions(args.shell)?),
        Command::Man(args) => print_bytes(
            &crate::docs::man_page(args.command.as_deref())
                .map_err(|e| InputError(e.to_string()))?,
        ),
    }
}

/// Writes generated text to stdout; a closed pipe comes back as an error main treats as done.
fn print_bytes(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Ctrl-C once: start nothing new, let the chains in flight finish, write what completed.
/// Twice: exit at once with 130.
pub fn stop_on_ctrl_c() -> StopSignal {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return; // no signal handling on this platform: Ctrl-C keeps its default
        }
        crate::stderr_line!(
            "\nCtrl-C: finishing the chains in flight, then writing what completed \
             (Ctrl-C again to abort)"
        );
        let _ = tx.send(true);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(crate::error::INTERRUPTED));
        }
    });
    rx
}

/// Prints [`crate::config::api_key_warning`] on stderr, `-q` or not: it is a warning.
pub fn warn_if_no_api_key(t: &crate::cli::TargetArgs) {
    let key = std::env::var(t.key_env()).ok();
    if let Some(w) = crate::config::api_key_warning(t, key.as_deref()) {
        crate::stderr_line!("{w}");
    }
}

/// `--start-at`: sleeps until the given wall-clock time so that all segments start together
/// (at once if it has passed). Says so on stderr unless quiet.
pub async fn wait_for_start(args: &crate::cli::SegmentArgs, quiet: bool) {
    let Some(at) = args.start_at else { return };
    let wait = crate::segment::wait_until(at, std::time::SystemTime::now());
    if !quiet && !wait.is_zero() {
        crate::stderr_line!(
            "--start-at: waiting {} before the first call",
            humantime::format_duration(std::time::Duration::from_secs(wait.as_secs()))
        );
    }
    tokio::time::sleep(wait).await;
}

fn merge_cmd(args: &crate::cli::MergeArgs) -> Result<()> {
    let (merged, verdict) = crate::merge::merge_into(&args.dirs, &args.out, &args.fail_on)
        .map_err(|e| {
            if e.is_input() {
                anyhow::Error::new(InputError(e.to_string()))
            } else {
                anyhow::Error::new(e)
            }
        })?;
    let mut stdout = std::io::stdout().lock();
    match &merged {
        crate::merge::Merged::Sweep(r) => write!(stdout, "{}", report::render_terminal(r))?,
        crate::merge::Merged::Run(s) => writeln!(stdout, "{}", report::run_text(s, &args.out))?,
    }
    writeln!(
        stdout,
        "\nMerged {} folders into {}",
        args.dirs.len(),
        args.out.display()
    )?;
    Ok(verdict.into_result()?)
}

fn report_cmd(args: &ReportArgs) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match args.dirs.as_slice() {
        [dir] => {
            match report::rerender(dir)? {
                report::Rerendered::Sweep(r) => write!(stdout, "{}", report::render_terminal(&r))?,
                report::Rerendered::Run(s) => writeln!(stdout, "{}", report::run_text(&s, dir))?,
            }
            writeln!(stdout, "\nRe-rendered {}", dir.display())?;
        }
        [a, b] => {
            let ra = report::read_report(a)?;
            let rb = report::read_report(b)?;
            let comparison = report::comparison(&ra, &rb);
            if args.json {
                serde_json::to_writer_pretty(&mut stdout, &comparison)?;
                writeln!(stdout)?;
            } else {
                write!(stdout, "{}", report::compare(&ra, &rb))?;
            }
            if let Some(max) = args.fail_on {
                report::regressed_verdict(&comparison, max).into_result()?;
            }
        }
        _ => unreachable!("clap allows one or two folders"),
    }
    Ok(())
}
