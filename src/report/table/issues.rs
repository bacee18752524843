//! The issues a sweep saw, as sentences: errors by kind, retried and failed chains, outputs that
//! differ, an interrupted sweep.

use crate::metrics::ErrorCounts;
use crate::record::ErrorKind;
use crate::report::format;
use crate::sweep::SweepReport;

/// `1 chain`, `3 chains`.
fn chains(n: usize) -> String {
    if n == 1 {
        "1 chain".to_string()
    } else {
        format!("{n} chains")
    }
}

/// The error kinds of one run as words, e.g. `3 × 429 (rate limited), 1 timeout`.
pub(crate) fn error_words(e: &ErrorCounts) -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .filter(|k| e.get(**k) > 0)
        .map(|&k| {
            let n = e.get(k);
            let what = match k {
                ErrorKind::RateLimited => "429 (rate limited)",
                ErrorKind::ServerError => "5xx",
                ErrorKind::ClientError => "other 4xx",
                ErrorKind::Timeout => "timeout",
                ErrorKind::Connect => "connect error",
                ErrorKind::Body => "truncated body",
                ErrorKind::Decode => "undecodable body",
                ErrorKind::Redirect => "redirect",
                ErrorKind::Protocol => "protocol error",
                ErrorKind::Local => "local fault",
            };
            format!("{n} × {what}")
        })
        .collect()
}

/// One line per run that saw 429s, timeouts, 5xx, other failed calls, chains left failed
/// after the retry passes, or outputs that differ; empty when the sweep was clean.
pub(crate) fn issues(report: &SweepReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.interrupted {
        lines.push(match report.runs.len() {
            0 => "interrupted by Ctrl-C before any run completed".to_string(),
            n if report.runs.iter().any(|r| r.partial) => format!(
                "interrupted by Ctrl-C: {n} runs reported; the run it cut short is marked \
                 partial (finished chains only, no speedup)"
            ),
            n => format!("interrupted by Ctrl-C: only the {n} runs that completed are reported"),
        });
    }
    for r in &report.runs {
        let mut parts = error_words(&r.errors);
        if r.chains_retried > 0 {
            let recovered = r.chains_retried.saturating_sub(r.chains_failed);
            parts.push(format!(
                "{} retried, {recovered} recovered",
                chains(r.chains_retried)
            ));
        }
        if r.calls_saved > 0 {
            parts.push(saved_words(r.calls_saved));
        }
        if r.stale_retries > 0 {
            parts.push(stale_words(r.stale_retries));
        }
        if r.chains_failed > 0 {
            parts.push(format!(
                "{} still failed after every pass",
                chains(r.chains_failed)
            ));
        }
        if r.outputs_differ > 0 {
            let (n, verb) = match r.outputs_differ {
                1 => ("1 output".to_string(), "differs"),
                n => (format!("{n} outputs"), "differ"),
            };
            parts.push(format!("{n} {verb} from the first run of this size"));
        }
        if !parts.is_empty() {
            lines.push(format!(
                "{} chains, {}, {}: {}",
                r.key.size,
                format::limit_header(r.key.limit),
                format::pooling_word(r.key.pooling),
                parts.join("; ")
            ));
        }
    }
    lines
}

/// The sentence shown when [`issues`] is empty.
pub(crate) const NO_ISSUES: &str = "None: no 429s, timeouts, 5xx or other failed calls; \
every chain succeeded; every output matched the first run of its size.";

/// `3 requests sent again on a fresh connection …`, for both commands' summary.md and the
/// terminal: a resend is never hidden, since a non-idempotent request may have run twice.
pub(crate) fn stale_words(stale_retries: u64) -> String {
    let requests = match stale_retries {
        1 => "1 request".to_string(),
        n => format!("{n} requests"),
    };
    format!(
        "{requests} sent again on a fresh connection (stale_retries: the kept connection was \
         closed by the server before any byte of the answer; --no-stale-retry turns this off)"
    )
}

/// `4 calls saved by resuming chains at the step that failed`, for both commands' summary.md.
pub(crate) fn saved_words(calls_saved: u64) -> String {
    let calls = match calls_saved {
        1 => "1 call".to_string(),
        n => format!("{n} calls"),
    };
    format!("{calls} saved by resuming chains at the step that failed")
}
