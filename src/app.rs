//! The subcommands as the binary runs them: flags → config → library → output. Prints; the
//! library below it does not.

use std::io::Write;
use std::path::Path;
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

async fn sweep(args: SweepArgs) -> Result<()> {
    let mut cfg = sweep_config(&args, redacted_command(std::env::args()))?;
    // Made ready (and locked) before the first call, so a bad --out fails now, not after a
    // long sweep.
    let out = if args.output.no_report {
        None
    } else {
        let dir = match &args.output.out {
            Some(d) => d.clone(),
            None => report::free_report_dir(Path::new("reports"), SystemTime::now(), "sweep"),
        };
        Some(report::ReportDir::create(&dir).with_context(|| format!("--out {}", dir.display()))?)
    };
    warn_if_no_api_key(&args.common.target);
    let quiet = args.output.quiet;
    if !quiet {
        crate::stderr_line!("{}", banner(&cfg));
    }
    cfg.stop = Some(stop_on_ctrl_c());
    let ui = Progress::new(quiet, cfg.chain.step_names());
    let outcome = run_sweep(&cfg, &ui).await?;
    drop(ui);
    let out = match out {
        Some(dir) => {
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
            let path = dir.out().to_path_buf();
            dir.write(&outcome.report, &calls)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    if args.output.json {
        serde_json::to_writer_pretty(&mut stdout, &outcome.report)?;
        writeln!(stdout)?;
    } else {
        write!(
            stdout,
            "{}",
            report::render_terminal_results(&outcome.report)
        )?;
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
    let all_failed: Vec<String> = outcome
        .report
        .runs
        .iter()
        .filter(|r| r.chains_ok == 0 && r.chains_failed > 0)
        .map(|r| {
            format!(
                "n={} c={} pool={} ({} chains)",
                r.size, r.limit, r.pooling, r.chains_failed
            )
        })
        .collect();
    if outcome.report.interrupted {
        let planned = cfg.sizes.len() * cfg.limits.len() * cfg.pooling.len();
        let runs = &outcome.report.runs;
        let partial = runs.iter().find(|r| r.partial).map_or(String::new(), |r| {
            format!(
                "; the run it cut short (n={} c={} pool={}) is reported as partial: {} chains \
                 finished, {} not run",
                r.size,
                r.limit,
                r.pooling,
                r.chains_ok + r.chains_failed,
                r.chains_not_run
            )
        });
        return Err(Interrupted(format!(
            "interrupted by Ctrl-C: {} of {planned} runs completed and were reported{partial}",
            runs.iter().filter(|r| !r.partial).count()
        ))
        .into());
    }
    verdict(&all_failed, &broken)
}

/// The exit verdict after every report is written: exit 1 when some run had chains and all
/// of them failed (a load test of nothing but errors is not a pass), naming each such run,
/// then the `--fail-on` checks as [`fail_if_broken`] reports them.
pub fn verdict(all_failed: &[String], broken: &[String]) -> Result<()> {
    if all_failed.is_empty() {
        return fail_if_broken(broken);
    }
    let mut msg = format!("every chain failed in {}", all_failed.join(", "));
    if let Err(e) = fail_if_broken(broken) {
        msg.push_str(&format!("; also {e}"));
    }
    Err(anyhow::anyhow!(msg))
}

/// Prints [`crate::config::api_key_warning`] on stderr, `-q` or not: it is a warning.
pub fn warn_if_no_api_key(t: &crate::cli::TargetArgs) {
    let key = std::env::var(&t.api_key_env).ok();
    if let Some(w) = crate::config::api_key_warning(t, key.as_deref()) {
        crate::stderr_line!("{w}");
    }
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
            t.display_url(),
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

/// `run`'s settings, printed on stderr before the first call as `sweep` prints its banner
/// (hidden by `-q`): what runs, against what, and where the results go.
pub fn run_banner(
    args: &crate::cli::RunArgs,
    target: &crate::target::Target,
    embedded: bool,
    steps: &[String],
    (to_run, skipped): (usize, usize),
    out: &Path,
) -> String {
    let target = if embedded {
        format!("embedded mock at {}", target.url)
    } else {
        format!(
            "{} ({} format, model {})",
            target.display_url(),
            target.format.as_str(),
            target.model
        )
    };
    let calls = &args.common.calls;
    format!(
        "loadchain {} run\n  manifest: {} ({to_run} rows to run, {skipped} already done)\n  \
         target: {target}\n  chain: {} ({} steps)\n  limit: {}  retry passes: {}  \
         max retries (429/503): {}  timeout: {}\n  results: {}/",
        env!("CARGO_PKG_VERSION"),
        args.manifest.display(),
        steps.join(" → "),
        steps.len(),
        args.limit,
        calls.retry_passes,
        calls.max_retries,
        humantime::format_duration(calls.timeout),
        out.display(),
    )
}
