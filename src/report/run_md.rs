//! summary.md of a `loadchain run` folder: the page a person opens first. A pure function of
//! summary.json (no render time, no absolute paths of its own), so `loadchain report DIR`
//! reproduces it byte for byte.

use std::fmt::Write;

use super::table::{self, Align, Table};
use super::{chart, format};
use crate::manifest::{RunSettings, RunSummaryFile};
use crate::metrics::LatencySummary;

/// The whole summary.md text.
pub fn render(s: &RunSummaryFile) -> String {
    let mut md = String::new();
    // `write!` into a String cannot fail; results are ignored for that reason.
    match &s.settings {
        Some(set) => {
            let _ = writeln!(md, "# loadchain run, {}\n", set.started_utc);
            let _ = write!(
                md,
                "Produced by {} (schema {}). ",
                set.tool, s.schema_version
            );
        }
        None => {
            let _ = write!(md, "# loadchain run\n\nSchema {}. ", s.schema_version);
        }
    }
    md.push_str(
        "Figures are of this session (a `--resume` session counts only the rows it ran). \
         This file and the charts are rebuilt from `summary.json` by `loadchain report <this \
         folder>`.\n\n",
    );
    rows_section(&mut md, s);
    if let Some(a) = &s.adaptive {
        md.push_str(&super::adaptive::markdown(a));
    }
    md.push_str("## Wall time\n\n");
    let _ = write!(
        md,
        "{} at limit {} in {}; the sum of chain times is {} (what running them one after \
         another would take)",
        format::duration_ms(s.wall_ms),
        s.limit,
        match s.passes {
            1 => "1 pass".to_string(),
            n => format!("{n} passes"),
        },
        format::duration_ms(s.sum_chain_ms),
    );
    match s.speedup {
        Some(x) => {
            let _ = writeln!(md, ", a speedup of {}.\n", format::speedup(x));
        }
        None => md.push_str("; nothing ran, so there is no speedup.\n\n"),
    }
    calls_section(&mut md, s);
    md.push_str("## Latency\n\n");
    md.push_str(&latency_table(s).to_markdown());
    md.push_str(
        "\nSuccessful calls and chains only. TTFT (streaming only) runs from the send to the \
         first chunk carrying content.\n\n",
    );
    if let Some(c) = &s.cost {
        cost_section(&mut md, c);
    }
    if let Some(q) = &s.quality {
        md.push_str("## Quality\n\n");
        md.push_str(&table::quality_run_table(q).to_markdown());
        md.push_str(
            "\nFinish reasons and output tokens count successful calls (every step, retries \
             included); length = cut by max_tokens (truncated), unknown = the API did not say. \
             Empty = successful rows whose final output is blank. A run has no baseline, so no \
             similarity.\n\n",
        );
    }
    md.push_str("## Charts\n\n");
    for (file, _) in chart::RUN_CHARTS {
        let stem = file.trim_end_matches(".png");
        let _ = writeln!(md, "![{stem}]({file})\n");
    }
    settings_section(&mut md, s);
    md.push_str(
        "## Files\n\n\
         - `results.jsonl`: one line per finished row (outputs included); `--resume` reads it.\n\
         - `summary.json`: the accounting and every figure here; the source of this file and \
         the charts.\n\
         - `failed.csv`: rows that still failed, with step, error kind and message.\n\
         - `calls.csv`: one row per call of this session (times in ms from the run's start).\n",
    );
    md
}

/// What the session cost at the given price, per step.
fn cost_section(md: &mut String, c: &crate::cost::Cost) {
    use crate::cost::money;
    md.push_str("## Cost\n\n");
    let _ = writeln!(md, "{}.\n", c.line());
    let mut t = Table::numeric(vec![
        "Step".into(),
        "Input tokens".into(),
        "Output tokens".into(),
        "Cost".into(),
    ]);
    for s in &c.per_step {
        t.rows.push(vec![
            s.step.clone(),
            s.input_tokens.to_string(),
            s.output_tokens.to_string(),
            money(s.cost),
        ]);
    }
    md.push_str(&t.to_markdown());
    md.push_str(
        "\nRetries are backoff retries and retry passes; their cost is part of each step's. \
         Paid twice: successful calls whose step a retry pass ran again.\n\n",
    );
}

/// Rows accounted for: every manifest row exactly once.
fn rows_section(md: &mut String, s: &RunSummaryFile) {
    md.push_str("## Rows\n\n");
    let mut t = Table::numeric(vec!["Rows".to_string(), "Count".to_string()]);
    for (what, n) in [
        ("in the manifest", s.rows_in_manifest),
        ("succeeded", s.succeeded),
        ("failed (see failed.csv)", s.failed),
        ("skipped (done in an earlier session)", s.skipped),
        ("not run (interrupted)", s.not_run),
    ] {
        t.rows.push(vec![what.to_string(), n.to_string()]);
    }
    md.push_str(&t.to_markdown());
    if let Some(line) = s.torn_line_ignored {
        let _ = writeln!(
            md,
            "\nresults.jsonl line {line} was cut short by a crash; resume ignored and removed it."
        );
    }
    md.push('\n');
}

/// Calls sent and the failed ones by kind.
fn calls_section(md: &mut String, s: &RunSummaryFile) {
    md.push_str("## Calls\n\n");
    let failed = s.errors.total();
    let _ = writeln!(
        md,
        "{} calls sent (backoff retries and retry passes included), {failed} failed.\n",
        s.calls
    );
    if s.calls_saved > 0 {
        let _ = writeln!(md, "{}.\n", table::saved_words(s.calls_saved));
    }
    if s.stale_retries > 0 {
        let _ = writeln!(md, "{}.\n", table::stale_words(s.stale_retries));
    }
    let words = table::error_words(&s.errors);
    if words.is_empty() {
        md.push_str("No call failed.\n\n");
    } else {
        for w in words {
            let _ = writeln!(md, "- {w}");
        }
        md.push('\n');
    }
    let llm = super::llm_text::run_lines(&s.llm, false);
    if !llm.is_empty() {
        for line in llm.lines().filter(|l| !l.is_empty()) {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }
}

/// Call, chain, per-step and TTFT latency: count, p50, p90, p99, max.
fn latency_table(s: &RunSummaryFile) -> Table {
    let header = ["Latency", "Count", "p50", "p90", "p99", "Max"];
    let mut t = Table::numeric(header.iter().map(|h| h.to_string()).collect());
    let mut row = |what: String, l: &LatencySummary| {
        t.rows.push(vec![
            what,
            l.count.to_string(),
            format::latency_us(l.p50_us),
            format::latency_us(l.p90_us),
            format::latency_us(l.p99_us),
            format::latency_us(l.max_us),
        ]);
    };
    row("call (every step)".to_string(), &s.call_latency);
    row("chain".to_string(), &s.chain_latency);
    for step in &s.step_latency {
        row(format!("step `{}`", step.step), &step.latency);
    }
    if let Some(ttft) = &s.ttft {
        row("time to first token".to_string(), ttft);
    }
    if let Some(itl) = &s.llm.itl {
        row("inter-token latency (every gap)".to_string(), itl);
    }
    if let Some(tpot) = &s.llm.tpot {
        row("time per output token".to_string(), tpot);
    }
    t
}

/// The settings table, the mock's TOML, or a note that an older file holds none.
fn settings_section(md: &mut String, s: &RunSummaryFile) {
    md.push_str("## Settings\n\n");
    let Some(set) = &s.settings else {
        md.push_str("Not recorded: this summary.json was written by an older loadchain.\n\n");
        return;
    };
    let t = Table {
        header: vec!["Setting".to_string(), "Value".to_string()],
        align: vec![Align::Left, Align::Left],
        rows: settings_rows(set, s.limit)
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
    };
    md.push_str(&t.to_markdown());
    md.push('\n');
    if let Some(mock) = &set.mock {
        md.push_str("Embedded mock server settings:\n\n```toml\n");
        let _ = writeln!(md, "{}\n```\n", mock.trim_end());
    }
}

/// Every setting as a single-line `(name, value)` pair, in a fixed order.
fn settings_rows(set: &RunSettings, limit: usize) -> Vec<(&'static str, String)> {
    let opt = |v: Option<u32>| v.map_or("none".to_string(), |v| v.to_string());
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    vec![
        ("manifest", set.manifest.clone()),
        ("target", set.target.clone()),
        ("api", set.api.clone()),
        ("model", set.model.clone()),
        ("steps", set.steps.join(" → ")),
        ("limit", limit.to_string()),
        ("pooling", "on".to_string()),
        ("streaming", yes_no(set.stream)),
        ("retry passes", set.retry_passes.to_string()),
        ("max retries (429/503)", set.max_retries.to_string()),
        ("timeout", format!("{} ms", set.timeout_ms)),
        ("rpm cap", opt(set.rpm)),
        ("tpm cap", opt(set.tpm)),
        ("max retry wait", format!("{} ms", set.max_retry_wait_ms)),
        (
            "max response size",
            format!("{} bytes", set.max_response_bytes),
        ),
        (
            "redirects",
            if set.follow_redirects {
                "followed (credentials to the target's origin only)"
            } else {
                "not followed"
            }
            .to_string(),
        ),
        ("machine", set.machine.clone()),
    ]
    .into_iter()
    .chain(super::table::pacing_rows(set.pace, set.announced_quota))
    .collect()
}
