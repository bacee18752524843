//! The subcommands as the binary runs them: flags → config → library → output. Prints; the
//! library below it does not.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, ReportArgs, SweepArgs};
use crate::config::{redacted_command, sweep_config};
use crate::error::{InputError, Interrupted};
use crate::progress::Progress;
use crate::report::{self, RunCalls};
use crate::runner::StopSignal;
use crate::sweep::{Endpoint, SweepConfig, run_sweep};
use crate::threshold::Measured;

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sweep(args) => sweep(args).await,
        Command::Run(args) => crate::batch::run(args).await,
        Command::Mock(args) => loadchain_mock::run_cli(args).await,
        Command::Report(args) => report_cmd(&args),
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
        eprintln!(
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

async fn sweep(args: SweepArgs) -> Result<()> {
    let mut cfg = sweep_config(&args, redacted_command(std::env::args()))?;
    let out = if args.output.no_report {
        None
    } else {
        let dir = match &args.output.out {
            Some(d) => d.clone(),
            None => report::free_report_dir(Path::new("reports"), SystemTime::now(), "sweep"),
        };
        Some(prepare_out_dir(&dir)?)
    };
    let quiet = args.output.quiet;
    if !quiet {
        eprintln!("{}", banner(&cfg));
    }
    cfg.stop = Some(stop_on_ctrl_c());
    let ui = Progress::new(quiet, cfg.chain.step_names());
    let outcome = run_sweep(&cfg, &ui).await?;
    drop(ui);
    if let Some(dir) = &out {
        let calls: Vec<RunCalls<'_>> = outcome
            .calls
            .iter()
            .map(|l| RunCalls {
                size: l.size,
                limit: l.limit,
                pooling: l.pooling,
                calls: &l.calls,
            })
            .collect();
        report::write_report(dir, &outcome.report, &calls)
            .with_context(|| format!("writing the report to {}", dir.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.output.json {
        serde_json::to_writer_pretty(&mut stdout, &outcome.report)?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", report::render_terminal(&outcome.report))?;
        if let Some(dir) = &out {
            writeln!(stdout, "\nReport: {}/", dir.display())?;
        }
    }
    let broken: Vec<String> = outcome
        .report
        .runs
        .iter()
        .flat_map(|r| {
            let measured = Measured {
                call: &r.call_latency,
                errors: &r.errors,
                calls: r.calls,
                failed: r.chains_failed,
                efficiency: r.efficiency,
                differ: Some(r.outputs_differ),
            };
            let cell = format!("n={} c={} pool={}", r.size, r.limit, r.pooling);
            args.output
                .fail_on
                .iter()
                .filter_map(move |t| t.check(&measured).map(|m| format!("{cell}: {m}")))
                .collect::<Vec<_>>()
        })
        .collect();
    if outcome.report.interrupted {
        let planned = cfg.sizes.len() * cfg.limits.len() * cfg.pooling.len();
        return Err(Interrupted(format!(
            "interrupted by Ctrl-C: {} of {planned} runs completed and were reported",
            outcome.report.runs.len()
        ))
        .into());
    }
    fail_if_broken(&broken)
}

/// The `--fail-on` verdict: exit 1 with every broken check on one line.
pub fn fail_if_broken(broken: &[String]) -> Result<()> {
    match broken {
        [] => Ok(()),
        lines => Err(anyhow::anyhow!(
            "{} --fail-on check(s) broken: {}",
            lines.len(),
            lines.join("; ")
        )),
    }
}

/// Fails early, before any call, when the report folder cannot be used.
fn prepare_out_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        return Err(InputError(format!(
            "--out: {} already exists; choose a new folder",
            dir.display()
        ))
        .into());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("--out: cannot create {}", parent.display()))?;
    }
    Ok(dir.to_path_buf())
}

fn report_cmd(args: &ReportArgs) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match args.dirs.as_slice() {
        [dir] => {
            report::rerender(dir)?;
            let r = report::read_report(dir)?;
            write!(stdout, "{}", report::render_terminal(&r))?;
            writeln!(stdout, "\nRe-rendered {}", dir.display())?;
        }
        [a, b] => {
            let ra = report::read_report(a)?;
            let rb = report::read_report(b)?;
            write!(stdout, "{}", report::compare(&ra, &rb))?;
        }
        _ => unreachable!("clap allows one or two folders"),
    }
    Ok(())
}

/// The effective settings, so a run can be repeated exactly.
fn banner(cfg: &SweepConfig) -> String {
    let target = match &cfg.endpoint {
        Endpoint::Embedded(m) => format!(
            "embedded mock (127.0.0.1, ephemeral port)\n{}",
            loadchain_mock::describe(m)
        ),
        Endpoint::Running(m) => format!("mock at {}", m.url()),
        Endpoint::Remote(t) => format!(
            "{} ({} format, model {}; {})",
            t.url,
            t.format.as_str(),
            t.model,
            if t.headers.contains_key(reqwest::header::AUTHORIZATION) {
                "Authorization: Bearer <key>"
            } else {
                "no Authorization header"
            }
        ),
    };
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let pooling: Vec<&str> = cfg.pooling.iter().map(|p| p.as_str()).collect();
    format!(
        "loadchain {} sweep\n  target: {target}\n  chain: {} ({} steps)\n  sizes: {}  limits: {}  pooling: {}\n  retry passes: {}  max retries (429/503): {}  timeout: {}",
        env!("CARGO_PKG_VERSION"),
        cfg.chain.step_names().join(" → "),
        cfg.chain.steps.len(),
        list(&cfg.sizes),
        list(&cfg.limits),
        pooling.join(","),
        cfg.spec.retry_passes,
        cfg.spec.max_retries,
        humantime::format_duration(cfg.client.timeout),
    )
}
