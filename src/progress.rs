//! Progress on stderr with indicatif: one bar per run, hidden when stderr is not a terminal
//! (indicatif's stderr target draws nothing then) or with --quiet. Failures are logged with
//! row id, step and error kind, a bounded number per run so a failing target cannot flood
//! the terminal; every failure is in the report anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::chain::Row;
use crate::record::{ChainRecord, Pooling};
use crate::runner::Observer;
use crate::sweep::{RunSummary, SweepUi};

/// Failure lines printed per run before the rest are only counted.
const MAX_LOGGED_FAILURES: u64 = 10;

/// Progress bars and failure log for sweeps and runs.
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
    step_names: Arc<[String]>,
}

impl Progress {
    /// A progress display; `quiet` hides bars and failure lines.
    pub fn new(quiet: bool, step_names: Vec<String>) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            quiet,
            step_names: step_names.into(),
        }
    }

    /// A bar for `len` chains with a label.
    pub fn bar(&self, len: u64, label: String) -> Arc<BarObserver> {
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>22} [{bar:30}] {pos}/{len} chains {per_sec:>10}  {msg}  {elapsed_precise} eta {eta}",
            )
            .expect("static template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(200));
        Arc::new(BarObserver {
            bar,
            multi: self.multi.clone(),
            quiet: self.quiet,
            failed: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            step_names: Arc::clone(&self.step_names),
        })
    }
}

impl SweepUi for Progress {
    fn run_started(&self, size: usize, limit: usize, pooling: Pooling) -> Arc<dyn Observer> {
        self.bar(size as u64, format!("n={size} c={limit} pool={pooling}"))
    }

    /// Without a terminal the bars are hidden: a line per finished run keeps logs useful.
    fn run_finished(&self, summary: &RunSummary) {
        if !self.quiet && self.multi.is_hidden() {
            eprintln!("{}", run_line(summary));
        }
    }
}

/// Observer that moves one bar and logs failures.
pub struct BarObserver {
    bar: ProgressBar,
    multi: MultiProgress,
    quiet: bool,
    failed: AtomicU64,
    logged: AtomicU64,
    step_names: Arc<[String]>,
}

impl BarObserver {
    /// Stops the bar, leaving its last state on screen.
    pub fn finish(&self) {
        self.bar.finish();
    }

    /// Sets the text beside the bar.
    pub fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Counts one finished row and logs it if it failed.
    pub fn record_done(&self, row_id: &str, chain: &ChainRecord) {
        self.bar.inc(1);
        let Some(f) = &chain.failure else { return };
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.set_message(format!("{failed} failed"));
        if self.quiet || self.logged.fetch_add(1, Ordering::Relaxed) >= MAX_LOGGED_FAILURES {
            return;
        }
        let step = self
            .step_names
            .get(usize::from(f.step))
            .map_or("?", String::as_str);
        let line = format!(
            "row {row_id} failed at step {} ({step}): {} — {}",
            f.step + 1,
            f.kind,
            f.message
        );
        // Without a terminal the bars are hidden and so would be println: log plainly.
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

impl Drop for BarObserver {
    fn drop(&mut self) {
        self.bar.finish();
    }
}

impl Observer for BarObserver {
    fn pass_started(&self, pass: u16, rows: usize) {
        if pass > 0 {
            self.bar.set_length(self.bar.position() + rows as u64);
            self.bar
                .set_message(format!("retry pass {pass}: {rows} rows"));
        }
    }

    fn chain_done(&self, row: &Row, chain: &ChainRecord, _is_final: bool) {
        self.record_done(&row.id, chain);
    }
}

/// Prints one line per finished run when bars are hidden, so logs still show progress.
pub fn run_line(s: &RunSummary) -> String {
    format!(
        "n={} c={} pool={}: {:.0} ms wall, {} ok, {} failed",
        s.size, s.limit, s.pooling, s.wall_ms, s.chains_ok, s.chains_failed
    )
}
