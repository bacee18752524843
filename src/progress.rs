//! Progress on stderr with indicatif: one bar per run, hidden when stderr is not a terminal
//! (indicatif's stderr target draws nothing then) or with --quiet. Without a terminal (CI
//! logs, `2> file`), a heartbeat line every [`HEARTBEAT`] stands in for the bar, so a long
//! run never looks hung. Failures are logged with row id, step and error kind, a bounded
//! number per run so a failing target cannot flood the terminal; every failure is in the
//! report anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::chain::Row;
use crate::record::{ChainRecord, Pooling};
use crate::runner::Observer;
use crate::sweep::{RunSummary, SweepUi};

/// Failure lines printed per run before the rest are only counted.
const MAX_LOGGED_FAILURES: u64 = 10;

/// How often a progress line is printed when stderr is not a terminal.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Where heartbeat lines go (stderr in the binary; a buffer in tests).
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Progress bars and failure log for sweeps and runs.
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
    step_names: Arc<[String]>,
    heartbeat: Option<(Duration, LineSink)>,
}

impl Progress {
    /// A progress display; `quiet` hides bars and failure lines.
    pub fn new(quiet: bool, step_names: Vec<String>) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let sink: LineSink = Arc::new(|line: &str| crate::stderr_line!("{line}"));
        Progress {
            heartbeat: (!quiet && multi.is_hidden()).then_some((HEARTBEAT, sink)),
            multi,
            quiet,
            step_names: step_names.into(),
        }
    }

    /// Sends a heartbeat line to `sink` every `every` while a bar runs, terminal or not
    /// (tests; embedders that log progress their own way).
    pub fn with_heartbeat(mut self, every: Duration, sink: LineSink) -> Progress {
        self.heartbeat = Some((every, sink));
        self
    }

    /// A bar for `len` chains with a label.
    pub fn bar(&self, len: u64, label: String) -> Arc<BarObserver> {
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>22} [{bar:30}] {pos}/{len} chains {rate:>8}  {msg}  {elapsed_precise} eta {eta}",
            )
            .expect("static template is valid")
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&format_rate(s.per_sec()));
            })
            .progress_chars("=> "),
        );
        bar.set_prefix(label);
        bar.enable_steady_tick(Duration::from_millis(200));
        let observer = Arc::new(BarObserver {
            bar,
            multi: self.multi.clone(),
            quiet: self.quiet,
            failed: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            step_names: Arc::clone(&self.step_names),
            pass: Mutex::new(String::new()),
        });
        if let (Some((every, sink)), Ok(rt)) = (
            self.heartbeat.clone(),
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(heartbeat(Arc::downgrade(&observer), every, sink));
        }
        observer
    }
}

impl SweepUi for Progress {
    fn run_started(&self, size: usize, limit: usize, pooling: Pooling) -> Arc<dyn Observer> {
        self.bar(size as u64, format!("n={size} c={limit} pool={pooling}"))
    }

    /// Without a terminal the bars are hidden: a line per finished run keeps logs useful.
    fn run_finished(&self, summary: &RunSummary) {
        if !self.quiet && self.multi.is_hidden() {
            crate::stderr_line!("{}", run_line(summary));
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
    /// "retry pass k: N rows" once a retry pass began, so a growing total is explained.
    pass: Mutex<String>,
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

    /// Notes that retry pass `pass` (1-based) began with `rows` rows, beside the bar.
    pub fn set_pass(&self, pass: u16, rows: usize) {
        if let Ok(mut p) = self.pass.lock() {
            *p = format!("retry pass {pass}: {rows} rows");
        }
        self.refresh_message();
    }

    /// The text beside the bar: the retry pass, if any, and the failures so far.
    fn status(&self) -> String {
        let pass = self.pass.lock().map(|p| p.clone()).unwrap_or_default();
        match (pass.is_empty(), self.failed.load(Ordering::Relaxed)) {
            (true, 0) => String::new(),
            (true, n) => format!("{n} failed"),
            (false, 0) => pass,
            (false, n) => format!("{pass}, {n} failed"),
        }
    }

    fn refresh_message(&self) {
        self.bar.set_message(self.status());
    }

    /// One heartbeat line: done/total, rate, failures, elapsed, and the retry pass if any.
    pub fn heartbeat_line(&self) -> String {
        let pass = self.pass.lock().map(|p| p.clone()).unwrap_or_default();
        format!(
            "{}: {}/{} chains, {}, {} failed, {} elapsed{}",
            self.bar.prefix(),
            self.bar.position(),
            self.bar.length().unwrap_or(0),
            format_rate(self.bar.per_sec()),
            self.failed.load(Ordering::Relaxed),
            humantime::format_duration(Duration::from_secs(self.bar.elapsed().as_secs())),
            if pass.is_empty() {
                String::new()
            } else {
                format!(" ({pass})")
            }
        )
    }

    /// Counts one finished row and logs it if it failed.
    pub fn record_done(&self, row_id: &str, chain: &ChainRecord) {
        self.bar.inc(1);
        let Some(f) = &chain.failure else { return };
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.refresh_message();
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
            crate::stderr_line!("{line}");
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
    /// A sweep's bar counts every attempt, so a retry pass adds its rows to the total; the
    /// message says so.
    fn pass_started(&self, pass: u16, rows: usize) {
        if pass > 0 {
            self.bar.set_length(self.bar.position() + rows as u64);
            self.set_pass(pass, rows);
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
        s.key.size, s.key.limit, s.key.pooling, s.wall_ms, s.chains_ok, s.chains_failed
    )
}

/// A rate for humans: `0.35/s`, `12.3/s`, `1234/s` (indicatif's own shows 10 decimals).
pub fn format_rate(per_sec: f64) -> String {
    match per_sec {
        r if !r.is_finite() || r <= 0.0 => "0/s".to_string(),
        r if r < 10.0 => format!("{r:.2}/s"),
        r if r < 100.0 => format!("{r:.1}/s"),
        r => format!("{r:.0}/s"),
    }
}

/// Prints the observer's heartbeat line every `every` until its bar finishes or it is gone.
async fn heartbeat(observer: Weak<BarObserver>, every: Duration, sink: LineSink) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await; // the first tick is immediate: nothing to say yet
    loop {
        ticks.tick().await;
        let Some(o) = observer.upgrade() else { return };
        if o.bar.is_finished() {
            return;
        }
        sink(&o.heartbeat_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChainFailure, ErrorKind};

    #[test]
    fn rates_have_a_sensible_number_of_decimals() {
        assert_eq!(format_rate(0.0), "0/s");
        assert_eq!(format_rate(f64::NAN), "0/s");
        assert_eq!(format_rate(0.345_678_912_3), "0.35/s");
        assert_eq!(format_rate(12.345_678_912), "12.3/s");
        assert_eq!(format_rate(1_234.567_891), "1235/s");
    }

    fn chain(failure: Option<ChainFailure>) -> ChainRecord {
        ChainRecord {
            row: 0,
            passes: 1,
            latency: Duration::from_millis(1),
            outputs: Vec::new(),
            step_latencies: Vec::new(),
            failure,
        }
    }

    fn failed_chain() -> ChainRecord {
        chain(Some(ChainFailure {
            step: 0,
            kind: ErrorKind::ServerError,
            status: Some(500),
            message: "500".into(),
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_terminal_a_heartbeat_reports_done_rate_failures_and_retry_pass() {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink_lines = Arc::clone(&lines);
        let progress = Progress::new(true, vec!["a".into()]).with_heartbeat(
            Duration::from_millis(30),
            Arc::new(move |l: &str| sink_lines.lock().unwrap().push(l.to_string())),
        );
        let bar = progress.bar(4, "n=4 c=2 pool=on".into());
        // The first pass ends with 3 ok and 1 failed; the retry pass adds that row.
        for id in ["1", "2", "3"] {
            bar.record_done(id, &chain(None));
        }
        bar.record_done("4", &failed_chain());
        bar.pass_started(1, 1);
        // Bounded wait for at least two heartbeats.
        for _ in 0..100 {
            if lines.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bar.finish();
        let got = lines.lock().unwrap().clone();
        assert!(got.len() >= 2, "{got:?}");
        let last = got.last().unwrap();
        assert!(last.starts_with("n=4 c=2 pool=on: 4/5 chains, "), "{last}");
        assert!(last.contains("/s, 1 failed, "), "{last}");
        assert!(last.ends_with("elapsed (retry pass 1: 1 rows)"), "{last}");
        assert_eq!(bar.status(), "retry pass 1: 1 rows, 1 failed");
        // Finished: no more lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = lines.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(lines.lock().unwrap().len(), after);
    }
}
