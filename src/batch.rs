//! `loadchain run`: a manifest of rows through the chain at one limit, with every finished
//! row appended to results.jsonl before it is reported done, so a crash loses nothing that
//! was reported and `--resume` picks up exactly where it stopped.
//!
//! Single writer: the runner's observer only forwards final chain records over an unbounded
//! channel; one collector task owns the results log and the tally, appends, then moves the
//! progress bar. The channel closes when the runner (and with it every clone of the
//! observer) is dropped, which ends the collector.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use loadchain_mock::MockServer;
use tokio::sync::{mpsc, watch};

use crate::chain::Row;
use crate::cli::RunArgs;
use crate::config::{
    chain_from_args, chain_origin, check_open_files, client_options, endpoint_from_args,
    open_file_limit, run_spec,
};
use crate::error::{InputError, Interrupted};
use crate::manifest::{
    Manifest, ResultLine, ResultsLog, RunSummaryFile, Tally, select_rows, speedup, write_failed_csv,
};
use crate::progress::{BarObserver, Progress};
use crate::record::{ChainRecord, Pooling};
use crate::runner::{Observer, RateLimiter, Runner};
use crate::sweep::{Endpoint, RunKey, embedded_target, preflight, summarize};
use crate::target::HttpClient;
use crate::threshold::Measured;

/// Forwards each row's final record to the collector; drives the bar for retries.
struct Forward {
    tx: mpsc::UnboundedSender<(String, ChainRecord)>,
    bar: Arc<BarObserver>,
}

impl Observer for Forward {
    fn pass_started(&self, pass: u16, rows: usize) {
        if pass > 0 {
            self.bar.set_pass(pass, rows);
        }
    }

    fn chain_done(&self, row: &Row, chain: &ChainRecord, is_final: bool) {
        if is_final {
            // The collector outlives the runner; a send can only fail after it stopped on
            // a write error, which it reports itself.
            let _ = self.tx.send((row.id.clone(), chain.clone()));
        }
    }
}

/// What the collector hands back: the tally of saved rows, the log (whose lock on the
/// folder is held until the run's files are written), and a write failure if one happened.
struct Collected {
    tally: Tally,
    log: ResultsLog,
    write_error: Option<std::io::Error>,
    unsaved: usize,
}

/// The single writer of results.jsonl. A row is tallied (and shown as done) only once its
/// line is appended. When an append fails (disk full), it raises the stop signal so no new
/// row starts, keeps the lines of the rows still finishing in memory, and tries once more to
/// append them when the runner is done.
async fn collect(
    mut log: ResultsLog,
    mut rx: mpsc::UnboundedReceiver<(String, ChainRecord)>,
    names: Vec<String>,
    bar: Arc<BarObserver>,
    stop: watch::Sender<bool>,
) -> Collected {
    let mut tally = Tally::new();
    let mut write_error = None;
    let mut held = Vec::new();
    while let Some((id, record)) = rx.recv().await {
        let line = ResultLine::from_chain(&id, &names, &record);
        if write_error.is_none() {
            match log.append(&line) {
                Ok(()) => {
                    tally.record(&line);
                    bar.record_done(&id, &record);
                    continue;
                }
                Err(e) => {
                    crate::stderr_line!(
                        "error: cannot append to {}: {e}; starting no new rows",
                        log.path().display()
                    );
                    stop.send_replace(true);
                    write_error = Some(e);
                }
            }
        }
        held.push(line);
    }
    let mut unsaved = 0;
    for line in &held {
        match log.append(line) {
            Ok(()) => tally.record(line),
            Err(_) => unsaved += 1,
        }
    }
    if let Err(e) = log.sync() {
        write_error.get_or_insert(e);
    }
    Collected {
        tally,
        log,
        write_error,
        unsaved,
    }
}

/// Runs `loadchain run`.
pub async fn run(args: RunArgs) -> Result<()> {
    // Every input check comes before anything is written.
    let chain = chain_from_args(&args.common.chain)?;
    let manifest = Manifest::load(&args.manifest, &args.id_column)?;
    let origin = chain_origin(&args.common.chain);
    chain.check_columns(
        &manifest.columns,
        &origin,
        &manifest.path.display().to_string(),
    )?;
    let endpoint = endpoint_from_args(&args.common.target, &args.common.mock)?;
    let widest = args.limit.min(manifest.rows.len().max(1));
    check_open_files("--limit", widest, &endpoint, open_file_limit())?;
    crate::app::warn_if_no_api_key(&args.common.target);
    let client_opts = client_options(&args.common.target, &args.common.calls);
    if args.resume && args.out.is_none() {
        return Err(InputError(
            "--resume needs --out: the folder of the run to continue".to_string(),
        )
        .into());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        crate::report::free_report_dir(Path::new("reports"), SystemTime::now(), "run")
    });

    let (mock, target) = match endpoint {
        Endpoint::Embedded(cfg) => {
            let server = MockServer::start(cfg)
                .await
                .context("starting the embedded mock server")?;
            let target = embedded_target(&server.url(), &args.common.target.model);
            (Some(server), target)
        }
        Endpoint::Running(server) => (
            None,
            embedded_target(&server.url(), &args.common.target.model),
        ),
        Endpoint::Remote(t) => (None, t),
    };
    let target = crate::target::Target {
        stream: target.stream || args.common.target.stream,
        ..target
    };
    let chain = Arc::new(chain);
    preflight(&target, &chain, &client_opts).await?;

    let (log, resume) = ResultsLog::open(&out, args.resume)?;
    let (todo, skipped) = select_rows(&manifest, &resume);
    if let Some(line) = resume.torn_line {
        crate::stderr_line!(
            "note: {} line {line} was cut short by a crash; it was ignored and removed",
            log.path().display()
        );
    }
    let strangers = resume.ids_not_in(&manifest);
    if !strangers.is_empty() {
        crate::stderr_line!(
            "note: {} ids in {} are not in {} (first: {})",
            strangers.len(),
            log.path().display(),
            manifest.path.display(),
            strangers[0]
        );
    }

    let step_names = chain.step_names();
    if !args.quiet {
        let rows = (todo.len(), skipped);
        let embedded = mock.is_some();
        crate::stderr_line!(
            "{}",
            crate::app::run_banner(&args, &target, embedded, &step_names, rows, &out)
        );
    }
    let progress = Progress::new(args.quiet, step_names.clone());
    let bar = progress.bar(todo.len() as u64, format!("run c={}", args.limit));
    // One stop signal for the runner, raised by Ctrl-C or by a failed write to the log.
    let (stop_tx, stop) = watch::channel(false);
    let mut ctrl_c = crate::app::stop_on_ctrl_c();
    let ctrl_c_tx = stop_tx.clone();
    tokio::spawn(async move {
        if ctrl_c.wait_for(|s| *s).await.is_ok() {
            ctrl_c_tx.send_replace(true);
        }
    });
    let (tx, rx) = mpsc::unbounded_channel::<(String, ChainRecord)>();
    let collector = tokio::spawn(collect(
        log,
        rx,
        step_names.clone(),
        Arc::clone(&bar),
        stop_tx,
    ));

    let runner = Runner {
        client: HttpClient::new(Pooling::On, &client_opts)?,
        target: Arc::new(target),
        chain: Arc::clone(&chain),
        limiter: RateLimiter::new(args.common.calls.rpm, args.common.calls.tpm).map(Arc::new),
        spec: run_spec(&args.common.calls, args.limit),
        stop: Some(stop),
    };
    let rows: Arc<[Row]> = todo.into();
    let observer: Arc<dyn Observer> = Arc::new(Forward {
        tx,
        bar: Arc::clone(&bar),
    });
    let batch = runner.run_batch(Arc::clone(&rows), observer).await;
    drop(runner);
    let collected = collector
        .await
        .map_err(|e| anyhow!("the results writer stopped: {e}"))?;
    bar.finish();
    drop(progress);
    if let Some(server) = mock {
        server.shutdown().await;
    }
    let Collected {
        tally,
        log,
        write_error,
        unsaved,
    } = collected;
    if let Some(e) = write_error {
        return Err(anyhow!(
            "cannot append to {}: {e}; no new rows were started after that, the rows in \
             flight finished, and {unsaved} finished rows could not be saved even on a second \
             try. Every row in the log is safe: fix the cause and run the same command with \
             --resume",
            log.path().display()
        ));
    }

    write_failed_csv(&out, &tally.failed_rows(&manifest))?;
    drop(log);
    let key = RunKey {
        size: rows.len(),
        limit: args.limit,
        pooling: Pooling::On,
    };
    let stats = summarize(key, &batch, &step_names, None, 0);
    let wall_ms = batch.wall.as_secs_f64() * 1000.0;
    let summary = RunSummaryFile {
        schema_version: crate::manifest::SCHEMA_VERSION,
        rows_in_manifest: manifest.rows.len(),
        succeeded: tally.succeeded(),
        failed: tally.failed(),
        skipped,
        not_run: batch.not_run.len(),
        wall_ms,
        sum_chain_ms: tally.sum_chain_ms(),
        speedup: speedup(tally.sum_chain_ms(), wall_ms),
        limit: args.limit,
        passes: batch.chains.iter().map(|c| c.passes).max().unwrap_or(0),
        calls: stats.calls,
        errors: stats.errors,
        call_latency: stats.call_latency,
        chain_latency: stats.chain_latency,
        step_latency: stats.step_latency,
        ttft: stats.ttft,
        torn_line_ignored: resume.torn_line,
    };
    summary
        .check_accounting()
        .map_err(|m| anyhow!("row accounting failed (a bug, please report it): {m}"))?;
    summary.write(&out)?;
    // Not println!: a closed stdout (`| head -c0`) is an error to end on quietly, not a panic.
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &summary)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{}", describe(&summary, &out))?;
    }
    let measured = Measured {
        call: &summary.call_latency,
        errors: &summary.errors,
        calls: summary.calls,
        failed: summary.failed,
        efficiency: None,
        differ: None,
    };
    let broken: Vec<String> = args
        .fail_on
        .iter()
        .filter_map(|t| t.check(&measured))
        .collect();
    if batch.interrupted {
        return Err(Interrupted(format!(
            "interrupted by Ctrl-C: {} rows not run; run the same command with --resume to \
             finish them",
            summary.not_run
        ))
        .into());
    }
    let all_failed: Vec<String> = (summary.succeeded == 0 && summary.failed > 0)
        .then(|| {
            format!(
                "this run ({} rows; see {})",
                summary.failed,
                out.join(crate::manifest::FAILED_FILE).display()
            )
        })
        .into_iter()
        .collect();
    crate::app::verdict(&all_failed, &broken)
}

fn describe(s: &RunSummaryFile, out: &Path) -> String {
    let secs = |ms: f64| format!("{:.2} s", ms / 1000.0);
    let mut text = format!(
        "rows: {} in manifest = {} succeeded + {} failed + {} skipped (already done){}\n\
         wall time: {} at limit {}; sum of chain times: {} (sequential estimate)",
        s.rows_in_manifest,
        s.succeeded,
        s.failed,
        s.skipped,
        if s.not_run > 0 {
            format!(" + {} not run (interrupted)", s.not_run)
        } else {
            String::new()
        },
        secs(s.wall_ms),
        s.limit,
        secs(s.sum_chain_ms),
    );
    if let Some(x) = s.speedup {
        text.push_str(&format!("; speedup ×{x:.1}"));
    }
    let e = &s.errors;
    // The rarer kinds only when they happened, so the usual line stays short.
    let rare: String = [
        (e.redirect, "redirect"),
        (e.protocol, "protocol"),
        (e.local, "local"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, kind)| format!(", {n} {kind}"))
    .collect();
    text.push_str(&format!(
        "\ncalls: {} ({} failed: {} rate-limited, {} 5xx, {} 4xx, {} timeout, {} connect, {} body/decode{rare})",
        s.calls,
        e.total(),
        e.rate_limited,
        e.server_error,
        e.client_error,
        e.timeout,
        e.connect,
        e.body + e.decode
    ));
    if s.step_latency.len() > 1 {
        let steps: Vec<String> = s
            .step_latency
            .iter()
            .map(|st| format!("{} {:.0} ms", st.step, st.latency.p50_us as f64 / 1000.0))
            .collect();
        text.push_str(&format!("\ncall p50 by step: {}", steps.join(", ")));
    }
    if let Some(t) = &s.ttft {
        let ms = |us: u64| us as f64 / 1000.0;
        text.push_str(&format!(
            "\ntime to first token: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms",
            ms(t.p50_us),
            ms(t.p90_us),
            ms(t.p99_us)
        ));
    }
    text.push_str(&format!("\nresults: {}/", out.display()));
    text
}
