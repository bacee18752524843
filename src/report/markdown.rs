//! summary.md: the report a person opens first. A pure function of report.json (no render
//! time, no absolute paths), so `loadchain report DIR` reproduces it byte for byte.

use std::fmt::Write;

use super::table::{self, Table};
use super::{chart, format, hgrm};
use crate::record::Pooling;
use crate::sweep::SweepReport;

/// The whole summary.md text: one section after another, each written by its own function.
pub fn render(report: &SweepReport) -> String {
    let mut md = String::new();
    heading(&mut md, report);
    super::openloop::markdown(&mut md, report);
    wall_time(&mut md, report);
    pooling(&mut md, report);
    steps(&mut md, report);
    streaming(&mut md, report);
    cost(&mut md, report);
    quality(&mut md, report);
    issues(&mut md, report);
    if let Some(a) = &report.adaptive {
        md.push_str(&super::adaptive::markdown(a));
    }
    charts(&mut md, report);
    runs(&mut md, report);
    settings(&mut md, report);
    files(&mut md, report);
    md
}

// `write!` into a String cannot fail; the section functions ignore its result for that reason.

/// Title and provenance.
fn heading(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "# loadchain sweep, {}\n", report.started_utc);
    let _ = writeln!(
        md,
        "Produced by {} (report schema {}). Every file here is rebuilt from `report.json` by \
         `loadchain report <this folder>`.\n",
        report.tool, report.schema_version
    );
}

/// The course table, once per pooling mode, and what its cells mean.
fn wall_time(md: &mut String, report: &SweepReport) {
    let s = &report.settings;
    md.push_str("## Wall time\n\n");
    for pooling in table::poolings(report) {
        // A program (--exec) has no connections: one table, no pooling heading.
        if !s.is_exec() {
            let _ = writeln!(
                md,
                "### {} connections (pooling {pooling})\n",
                capitalize(format::pooling_word(pooling))
            );
        }
        md.push_str(&table::course_table(report, pooling).to_markdown());
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Each cell is the wall time of the whole batch, retry passes included, and in brackets \
         the speedup against {}. Wall time excludes: {}.\n",
        format::limit_header(s.baseline_limit),
        s.wall_time_excludes
    );
    if s.repeat > 1 {
        let _ = writeln!(
            md,
            "Each cell ran {} times, interleaved with the others; it shows the mean and the half \
             width of its 95 % confidence interval (wall time: Student t over the repeats; \
             speedup: bootstrap of the ratio of mean wall times).\n",
            s.repeat
        );
    }
}

/// Pooled against unpooled call latency, or why it cannot be shown.
fn pooling(md: &mut String, report: &SweepReport) {
    md.push_str("## Pooled vs unpooled call latency\n\n");
    match table::pooling_table(report) {
        Some((size, t)) => {
            let _ = writeln!(md, "Batch of {size} chains.\n");
            md.push_str(&t.to_markdown());
            md.push_str(
                "\nΔ = unpooled − pooled: what reusing connections saves per call. \
                 Conns = connections the server accepted during the run.\n\n",
            );
            for line in super::significance::pooling_statements(report, size) {
                let _ = writeln!(md, "- {line}");
            }
            md.push('\n');
        }
        None => md.push_str(&format!("{}\n\n", single_mode_note(report))),
    }
}

/// Call latency per chain step; left out for one-step chains.
fn steps(md: &mut String, report: &SweepReport) {
    if let Some((size, t)) = table::step_table(report) {
        md.push_str("## Call latency per step\n\n");
        let _ = writeln!(md, "Batch of {size} chains; successful calls.\n");
        md.push_str(&t.to_markdown());
        md.push('\n');
    }
}

/// What each run cost; left out without a price.
fn cost(md: &mut String, report: &SweepReport) {
    if let (Some(t), Some(note)) = (table::cost_table(report), table::cost_note(report)) {
        md.push_str("## Cost\n\n");
        md.push_str(&t.to_markdown());
        let _ = write!(md, "\n{note}\n\n");
    }
}

/// Finish reasons, empty outputs, tokens and similarity to the baseline; left out for
/// reports written before runs carried them.
fn quality(md: &mut String, report: &SweepReport) {
    if let Some(t) = table::quality_table(report) {
        md.push_str(
            "## Quality

",
        );
        md.push_str(&t.to_markdown());
        let _ = write!(md, "\n{}\n\n", table::QUALITY_NOTE);
    }
}

/// Time to first token and token rate; left out without streaming.
fn streaming(md: &mut String, report: &SweepReport) {
    if let Some(t) = table::streaming_table(report) {
        md.push_str("## Streaming: time to first token\n\n");
        md.push_str(&t.to_markdown());
        md.push_str(
            "\nTTFT runs from the send to the first chunk carrying content; output tokens/s \
             is completion tokens of successful calls per second of wall time.\n\n",
        );
    }
    if let Some(t) = table::llm_table(report) {
        md.push_str("## LLM serving: inter-token latency, TPOT and goodput\n\n");
        md.push_str(&t.to_markdown());
        md.push('\n');
        md.push_str(&table::llm_note(report));
        md.push_str("\n\n");
    }
}

/// One bullet per run with trouble, or the sentence saying there was none.
fn issues(md: &mut String, report: &SweepReport) {
    md.push_str("## Issues\n\n");
    let issues = table::issues(report);
    if issues.is_empty() {
        let _ = writeln!(md, "{}\n", table::NO_ISSUES);
    } else {
        for line in &issues {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }
    let noisy = super::significance::noise_warnings(report);
    if !noisy.is_empty() {
        md.push_str("Noise warnings:\n\n");
        for line in &noisy {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }
}

/// An image link per chart file.
fn charts(md: &mut String, report: &SweepReport) {
    md.push_str("## Charts\n\n");
    let streamed = chart::streamed(report).then_some(chart::STREAM_CHARTS);
    for (file, _) in chart::CHARTS.iter().chain(streamed.iter().flatten()) {
        let stem = file.trim_end_matches(".png");
        let _ = writeln!(md, "![{stem}]({file})\n");
    }
}

/// Every figure of every run.
fn runs(md: &mut String, report: &SweepReport) {
    md.push_str("## Runs\n\n");
    md.push_str(&table::detail_table(report).to_markdown());
    md.push_str(
        "\nLatencies are of successful calls and chains. Eff. = speedup / min(limit, size): \
         100 % is the most a semaphore can give. Differ = rows whose final output differs \
         from the first run of the same size.\n\n",
    );
}

/// The settings table, the command that repeats the sweep and the mock's config.
fn settings(md: &mut String, report: &SweepReport) {
    let s = &report.settings;
    md.push_str("## Settings\n\n");
    md.push_str(&settings_table(report).to_markdown());
    md.push_str("\nRepeat this sweep with:\n\n```sh\n");
    let _ = writeln!(md, "{}\n```\n", s.command);
    if let Some(mock) = &s.mock {
        md.push_str("Embedded mock server settings:\n\n```toml\n");
        let _ = writeln!(md, "{}\n```\n", mock.trim_end());
    }
}

/// What each file of the folder holds.
fn files(md: &mut String, report: &SweepReport) {
    md.push_str("## Files\n\n");
    md.push_str(
        "- `report.json`: settings and every result; the source of all other files.\n\
         - `summary.csv`: one row per run, every metric (times in ms).\n\
         - `calls.csv`: one row per call (times in ms from the run's start).\n",
    );
    if let Some(first) = report.runs.first().map(hgrm::file_name) {
        let _ = writeln!(
            md,
            "- `hgrm/*.hgrm`: HdrHistogram percentile distributions of call latency in ms, \
             one per run (e.g. `hgrm/{first}`), for HdrHistogram's plotFiles.html."
        );
    }
}

/// Settings as a two-column table.
fn settings_table(report: &SweepReport) -> Table {
    Table {
        header: vec!["Setting".to_string(), "Value".to_string()],
        align: vec![table::Align::Left, table::Align::Left],
        rows: table::settings_rows(&report.settings)
            .into_iter()
            .filter(|(k, _)| *k != "command")
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
    }
}

/// What to say when only one pooling mode was measured.
pub(crate) fn single_mode_note(report: &SweepReport) -> String {
    match table::poolings(report).as_slice() {
        _ if report.settings.is_exec() => {
            "With --exec only pooling on is measured: loadchain opens no connections for the \
             program, so there is no pool to compare against."
                .to_string()
        }
        [only] => format!(
            "Only pooling {only} was measured; sweep both pooling modes to compare {}.",
            match only {
                Pooling::On => "against fresh connections",
                Pooling::Off => "against a pooled client",
            }
        ),
        _ => "No batch size was measured in both pooling modes.".to_string(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
