//! `loadchain run` as the binary runs it: check flags and files, run the library's batch under
//! Ctrl-C with a banner and a progress bar, print the summary, decide the exit code.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};

use crate::batch::{self, BatchUi, RunConfig, RunPlan};
use crate::chain::Row;
use crate::cli::RunArgs;
use crate::config::run_config;
use crate::error::Interrupted;
use crate::progress::{BarObserver, Progress};
use crate::record::ChainRecord;

/// Runs `loadchain run`.
pub async fn run(args: RunArgs) -> Result<()> {
    let mut cfg = run_config(&args)?;
    if args.out.is_none() {
        // Claimed, not guessed: two runs started in the same second get two folders.
        let base = cfg.out.parent().unwrap_or(std::path::Path::new("reports"));
        cfg.out = crate::report::claim_free_dir(base, std::time::SystemTime::now(), "run")
            .with_context(|| format!("creating a run folder under {}", base.display()))?;
    }
    super::warn_if_no_api_key(&args.common.target);
    super::wait_for_start(&args.common.segment, args.quiet).await;
    let ui = Arc::new(RunUi {
        progress: Progress::new(args.quiet, cfg.workload.chain.step_names()),
        quiet: args.quiet,
        bar: OnceLock::new(),
        banner: BannerFacts::of(&cfg, args.manifest.clone()),
    });
    let outcome = batch::run(&cfg, ui.clone(), Some(super::stop_on_ctrl_c())).await;
    if let Some(bar) = ui.bar.get() {
        bar.finish();
    }
    drop(ui);
    if outcome.is_err() && args.out.is_none() {
        // The claimed folder, if nothing was written into it (fails harmlessly otherwise).
        let _ = std::fs::remove_dir(&cfg.out);
    }
    let outcome = outcome?;
    // Not println!: a closed stdout (`| head -c0`) is an error to end on quietly, not a panic.
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &outcome.summary)?;
        writeln!(stdout)?;
    } else {
        let text = crate::report::run_text(&outcome.summary, &outcome.out);
        writeln!(stdout, "{text}")?;
    }
    if outcome.interrupted {
        return Err(Interrupted(format!(
            "interrupted by Ctrl-C: {} rows not run; run the same command with --resume to \
             finish them",
            outcome.summary.not_run
        ))
        .into());
    }
    Ok(outcome.verdict(&cfg.fail_on).into_result()?)
}

/// The banner's facts that come from the configuration.
struct BannerFacts {
    manifest: PathBuf,
    limit: usize,
    retry_passes: u32,
    max_retries: u32,
    timeout: std::time::Duration,
    out: PathBuf,
}

impl BannerFacts {
    fn of(cfg: &RunConfig, manifest: PathBuf) -> BannerFacts {
        BannerFacts {
            manifest,
            limit: cfg.limit,
            retry_passes: cfg.workload.retry.retry_passes,
            max_retries: cfg.workload.retry.max_retries,
            timeout: cfg.workload.client.timeout,
            out: cfg.out.clone(),
        }
    }
}

/// A banner and one progress bar on stderr (hidden by `-q`); notes always.
struct RunUi {
    progress: Progress,
    quiet: bool,
    bar: OnceLock<Arc<BarObserver>>,
    banner: BannerFacts,
}

impl BatchUi for RunUi {
    fn started(&self, plan: &RunPlan<'_>) {
        if !self.quiet {
            crate::stderr_line!("{}", banner(&self.banner, plan));
        }
        let bar = self
            .progress
            .bar(plan.to_run as u64, format!("run c={}", self.banner.limit));
        let _ = self.bar.set(bar);
    }

    fn retry_pass(&self, pass: u16, rows: usize) {
        if let Some(bar) = self.bar.get() {
            bar.set_pass(pass, rows);
        }
    }

    fn row_saved(&self, row: &Row, chain: &ChainRecord) {
        if let Some(bar) = self.bar.get() {
            bar.record_done(&row.id, chain);
        }
    }

    fn note(&self, text: &str) {
        crate::stderr_line!("{text}");
    }
}

/// `run`'s settings, printed on stderr before the first call as `sweep` prints its banner
/// (hidden by `-q`): what runs, against what, and where the results go.
fn banner(facts: &BannerFacts, plan: &RunPlan<'_>) -> String {
    let target = match (&plan.mock_url, plan.target.exec()) {
        (_, Some(exec)) => format!("exec: {}", exec.source),
        (Some(url), None) => format!("embedded mock at {url}"),
        (None, None) => format!(
            "{} ({} format, model {})",
            plan.target.display_url(),
            plan.target.format().as_str(),
            plan.target.model()
        ),
    };
    format!(
        "loadchain {} run\n  manifest: {} ({} rows to run, {} already done)\n  \
         target: {target}\n  chain: {} ({} steps)\n  limit: {}  retry passes: {}  \
         max retries (429/503): {}  timeout: {}\n  results: {}/",
        env!("CARGO_PKG_VERSION"),
        facts.manifest.display(),
        plan.to_run,
        plan.skipped,
        plan.steps.join(" → "),
        plan.steps.len(),
        facts.limit,
        facts.retry_passes,
        facts.max_retries,
        humantime::format_duration(facts.timeout),
        facts.out.display(),
    )
}
