//! The report files of a `loadchain run` folder, written through the same writer and chart
//! code as a sweep's: calls.csv (one row per call, sweep's columns), and, rebuilt from
//! summary.json alone, summary.md, latency.png (per step) and timeline.png. Also what `run`
//! prints: the summary of a batch in a few lines.

use std::path::Path;

use super::{ReportError, chart, run_md, write_file};
use crate::manifest::RunSummaryFile;

/// Writes the report files of a run folder next to its summary.json (calls.csv was streamed
/// there during the run): everything `write_derived` rebuilds (summary.md and the charts). Each file is written
/// atomically; the caller holds the folder's lock.
pub fn write_run(dir: &Path, summary: &RunSummaryFile) -> Result<(), ReportError> {
    write_derived(dir, summary)
}

/// Writes every file of a run folder that is a pure function of summary.json: summary.md and
/// the charts.
pub(super) fn write_derived(dir: &Path, summary: &RunSummaryFile) -> Result<(), ReportError> {
    write_file(&dir.join("summary.md"), run_md::render(summary).as_bytes())?;
    for (name, draw) in chart::RUN_CHARTS {
        super::draw_chart(&dir.join(name), |tmp| draw(tmp, summary))?;
    }
    super::adaptive::write_chart(dir, summary.adaptive.as_ref())
}

/// Reads and checks summary.json from a run folder or the file itself: `schema_version` must
/// be present and no newer than [`crate::files::SCHEMA_VERSION`].
pub fn read_run(dir_or_file: &Path) -> Result<RunSummaryFile, ReportError> {
    match super::json::locate_any(dir_or_file)? {
        super::json::Located::Run(path) => super::json::read_versioned(&path),
        super::json::Located::Sweep(_) => Err(ReportError::NotAReport {
            path: dir_or_file.to_path_buf(),
        }),
    }
}

/// The text summary of a `run`: rows accounted for, wall time and speedup, failed calls by
/// kind, per-step latency, time to first token, and where the results are.
pub fn run_text(s: &RunSummaryFile, out: &Path) -> String {
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
    if let Some(a) = &s.adaptive {
        text.push_str(&format!("\n{}", super::adaptive::line(a)));
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
    if s.stale_retries > 0 {
        text.push_str(&format!(
            "\nstale connections: {} requests sent again on a fresh connection (stale_retries)",
            s.stale_retries
        ));
    }
    if s.step_latency.len() > 1 {
        let steps: Vec<String> = s
            .step_latency
            .iter()
            .map(|st| format!("{} {:.0} ms", st.step, st.latency.p50_us as f64 / 1000.0))
            .collect();
        text.push_str(&format!("\ncall p50 by step: {}", steps.join(", ")));
    }
    if let Some(c) = &s.cost {
        text.push_str(&format!("\ncost: {}", c.line()));
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
    text.push_str(&super::llm_text::run_lines(&s.llm, true));
    text.push_str(&format!("\nresults: {}/", out.display()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SCHEMA_VERSION;
    use crate::metrics::{ErrorCounts, LatencySummary};
    use crate::report::{Rerendered, rerender};

    /// A summary.json as an older loadchain wrote it: no settings, no timeline, no steps.
    fn old_summary() -> RunSummaryFile {
        let errors = ErrorCounts {
            timeout: 2,
            rate_limited: 1,
            ..ErrorCounts::default()
        };
        RunSummaryFile {
            schema_version: SCHEMA_VERSION,
            rows_in_manifest: 5,
            succeeded: 3,
            failed: 1,
            skipped: 0,
            not_run: 1,
            wall_ms: 0.0,
            sum_chain_ms: 0.0,
            speedup: None,
            limit: 2,
            passes: 2,
            calls: 7,
            calls_saved: 0,
            stale_retries: 0,
            errors,
            call_latency: LatencySummary::default(),
            chain_latency: LatencySummary::default(),
            step_latency: Vec::new(),
            ttft: None,
            torn_line_ignored: Some(3),
            timeline: Vec::new(),
            settings: None,
            cost: None,
            quality: None,
            adaptive: None,
            llm: Default::default(),
        }
    }

    #[test]
    fn an_old_summary_still_renders_and_says_what_it_lacks() {
        let md = run_md::render(&old_summary());
        for needle in [
            "# loadchain run\n\nSchema 1. ",
            "| not run (interrupted) | 1 |",
            "results.jsonl line 3 was cut short",
            "in 2 passes",
            "nothing ran, so there is no speedup",
            "7 calls sent",
            "3 failed",
            "- 1 × 429 (rate limited)",
            "- 2 × timeout",
            "Not recorded: this summary.json was written by an older loadchain.",
        ] {
            assert!(md.contains(needle), "lacks {needle:?}:\n{md}");
        }
        assert!(!md.contains("time to first token"), "{md}");
    }

    #[test]
    fn rerender_detects_a_run_folder_and_draws_empty_charts_for_an_old_summary() {
        let dir = tempfile::tempdir().unwrap();
        let s = old_summary();
        s.write(dir.path()).unwrap();
        let found = rerender(dir.path()).unwrap();
        assert_eq!(found, Rerendered::Run(Box::new(s.clone())));
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert_eq!(md, run_md::render(&s));
        for (name, _) in chart::RUN_CHARTS {
            let img = image::open(dir.path().join(name)).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), chart::SIZE, "{name}");
        }
        assert_eq!(read_run(dir.path()).unwrap(), s);
        let err = crate::report::read_report(dir.path()).unwrap_err();
        assert!(
            matches!(err, ReportError::RunNotComparable { .. }) && err.is_input_error(),
            "{err}"
        );
    }

    #[test]
    fn a_run_summary_from_a_newer_loadchain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = old_summary();
        s.schema_version = SCHEMA_VERSION + 1;
        s.write(dir.path()).unwrap();
        let err = rerender(dir.path()).unwrap_err();
        assert!(matches!(err, ReportError::NewerSchema { .. }), "{err}");
        assert!(!dir.path().join("summary.md").exists());
    }
}
