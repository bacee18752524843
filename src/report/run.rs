//! What `loadchain run` prints: the summary of a batch in a few lines.

use std::path::Path;

use crate::manifest::RunSummaryFile;

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
