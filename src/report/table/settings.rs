//! A sweep's settings as `(name, value)` rows, shared by summary.md, the terminal and `compare`.

use crate::sweep::Settings;

/// Every setting as a single-line `(name, value)` pair, in a fixed order; the mock's
/// multi-line config is left to the caller.
pub(crate) fn settings_rows(s: &Settings) -> Vec<(&'static str, String)> {
    fn list<T: std::fmt::Display>(v: &[T]) -> String {
        v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
    }
    let opt = |v: Option<u32>| v.map_or("none".to_string(), |v| v.to_string());
    let mut rows = vec![
        ("target", s.target.clone()),
        ("api", s.api.clone()),
        ("model", s.model.clone()),
        ("steps", s.steps.join(" → ")),
        ("sizes", list(&s.sizes)),
        ("limits", list(&s.limits)),
        ("pooling", list(&s.pooling)),
        ("baseline limit", s.baseline_limit.to_string()),
        ("retry passes", s.retry_passes.to_string()),
        ("max retries (429/503)", s.max_retries.to_string()),
        ("timeout", format!("{} ms", s.timeout_ms)),
        ("rpm cap", opt(s.rpm)),
        ("tpm cap", opt(s.tpm)),
        ("warm-up", if s.warmup { "yes" } else { "no" }.to_string()),
        ("max retry wait", format!("{} ms", s.max_retry_wait_ms)),
        (
            "max response size",
            format!("{} bytes", s.max_response_bytes),
        ),
        (
            "redirects",
            if s.follow_redirects {
                "followed (credentials to the target's origin only)"
            } else {
                "not followed"
            }
            .to_string(),
        ),
        ("wall time excludes", s.wall_time_excludes.clone()),
        ("machine", s.machine.clone()),
        ("command", s.command.clone()),
    ];
    if s.repeat > 1 {
        // Only when repeated, so reports without repeats read as before.
        rows.insert(
            8,
            ("repeats", format!("{} per cell, interleaved", s.repeat)),
        );
    }
    rows.extend(pacing_rows(s.pace, s.announced_quota));
    rows
}

/// The pacing rows: shown when pacing was on or the server announced a quota.
pub(crate) fn pacing_rows(
    pace: bool,
    announced: Option<crate::endpoint::Announced>,
) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if pace {
        rows.push(("pacing", "by the server's rate-limit headers".to_string()));
    }
    if let Some(a) = announced {
        let parts: Vec<String> = [
            a.requests.map(|r| format!("{r} requests/min")),
            a.tokens.map(|t| format!("{t} tokens/min")),
        ]
        .into_iter()
        .flatten()
        .collect();
        rows.push(("announced quota", parts.join(", ")));
    }
    rows
}
