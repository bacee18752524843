//! `loadchain sweep` as the binary runs it: check the flags, make the report folder ready,
//! print the banner, run the library's sweep under Ctrl-C, write the report, print the
//! tables, decide the exit code.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use std::sync::Arc;

use crate::cli::{OnOff, SweepArgs};
use crate::config::{redacted_command, sweep_config};
use crate::endpoint::Endpoint;
use crate::error::Interrupted;
use crate::progress::Progress;
use crate::record::{Pooling, RunKey};
use crate::report::{self, CallsCsv};
use crate::runner::{Observer, Tee};
use crate::sweep::{self, RunSummary, SweepConfig, SweepOutcome, SweepUi};

/// Runs `loadchain sweep`.
pub async fn run(args: SweepArgs) -> Result<()> {
    let cfg = sweep_config(&args, redacted_command(std::env::args()))?;
    // Made ready (and locked) before the first call, so a bad --out fails now, not after a
    // long sweep.
    let out = if args.output.no_report {
        None
    } else {
        Some(match &args.output.out {
            Some(dir) => report::ReportDir::create(dir)
                .with_context(|| format!("--out {}", dir.display()))?,
            // A default name is never refused: a taken one moves on to `-2`, `-3`, …
            None => {
                report::ReportDir::create_free(Path::new("reports"), SystemTime::now(), "sweep")
                    .context("creating the report folder under reports/")?
            }
        })
    };
    super::warn_if_no_api_key(&args.common.target);
    let quiet = args.output.quiet;
    if !quiet {
        crate::stderr_line!("{}", banner(&cfg));
    }
    super::wait_for_start(&args.common.segment, quiet).await;
    let calls = match (&out, args.output.calls_csv) {
        (Some(dir), OnOff::On) => Some(dir.calls_csv()?),
        _ => None,
    };
    let ui = SweepScreen {
        progress: Progress::new(quiet, cfg.workload.chain.step_names()),
        calls: calls.as_ref(),
        cfg: &cfg,
    };
    let outcome = sweep::run(&cfg, &ui, Some(super::stop_on_ctrl_c())).await?;
    drop(ui);
    if let Some(calls) = calls {
        calls.finish()?;
    }
    let out = match out {
        Some(dir) => {
            let path = dir.out().to_path_buf();
            dir.write(&outcome.report)
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
    if outcome.report.interrupted {
        return Err(Interrupted(interrupted_message(&cfg, &outcome)).into());
    }
    Ok(outcome.verdict(&args.output.fail_on).into_result()?)
}

/// Progress bars, and each run's calls streamed to calls.csv.
struct SweepScreen<'a> {
    progress: Progress,
    calls: Option<&'a CallsCsv>,
    /// Numbers the rows of calls.csv as the whole run numbers them (`--segment`).
    cfg: &'a SweepConfig,
}

impl SweepUi for SweepScreen<'_> {
    fn run_started(&self, size: usize, limit: usize, pooling: Pooling) -> Arc<dyn Observer> {
        let bar = self.progress.run_started(size, limit, pooling);
        match self.calls {
            Some(calls) => Arc::new(Tee(vec![
                bar,
                calls.sink_numbered(
                    RunKey {
                        size,
                        limit,
                        pooling,
                    },
                    self.cfg.numbering(size),
                ),
            ])),
            None => bar,
        }
    }

    fn run_finished(&self, summary: &RunSummary) {
        self.progress.run_finished(summary);
    }
}

/// What a Ctrl-C left: the runs reported, and the one it cut short.
fn interrupted_message(cfg: &SweepConfig, outcome: &SweepOutcome) -> String {
    let planned = cfg.sizes.len() * cfg.limits.len() * cfg.pooling.len();
    let runs = &outcome.report.runs;
    let partial = runs.iter().find(|r| r.partial).map_or(String::new(), |r| {
        format!(
            "; the run it cut short ({}) is reported as partial: {} chains finished, {} not run",
            r.key,
            r.chains_ok + r.chains_failed,
            r.chains_not_run
        )
    });
    format!(
        "interrupted by Ctrl-C: {} of {planned} runs completed and were reported{partial}",
        runs.iter().filter(|r| !r.partial).count()
    )
}

/// The effective settings, so a run can be repeated exactly.
fn banner(cfg: &SweepConfig) -> String {
    let target = match &cfg.workload.endpoint {
        Endpoint::Embedded(m) => format!(
            "embedded mock (127.0.0.1, ephemeral port)\n{}",
            loadchain_mock::describe(m)
        ),
        Endpoint::Running(m) => format!("mock at {}", m.url()),
        Endpoint::Exec(e) => format!("exec: {}", e.source),
        Endpoint::Remote(t) => format!(
            "{} ({} format, model {}; {})",
            t.display_url(),
            t.format().as_str(),
            t.model(),
            if t.sends_authorization() {
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
        cfg.workload.chain.step_names().join(" → "),
        cfg.workload.chain.steps.len(),
        list(&cfg.sizes),
        list(&cfg.limits),
        pooling.join(",")
            + if matches!(cfg.workload.endpoint, Endpoint::Exec(_)) {
                " (--exec: a program has no pool to switch off)"
            } else {
                ""
            },
        cfg.workload.retry.retry_passes,
        cfg.workload.retry.max_retries,
        humantime::format_duration(cfg.workload.client.timeout),
    )
}
