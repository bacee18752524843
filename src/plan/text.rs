//! The text form of a plan: the quota, the largest safe limit and which quota binds, the
//! checked limit's demand, and the expected wall time.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Plan, PlanInput};

/// Renders `plan` of `input` for the terminal, one finding a line.
pub fn render(input: &PlanInput, plan: &Plan) -> String {
    let mut s = String::new();
    let quota = [
        input.rpm.map(|r| format!("{r} RPM")),
        input.tpm.map(|t| format!("{t} TPM")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    let tokens = input
        .tokens_per_call
        .map_or(String::new(), |t| format!(", {t:.0} tokens per call"));
    let _ = writeln!(
        s,
        "Quota {quota}; chains of {} calls taking {}{tokens}.",
        num(input.calls_per_chain),
        short(input.chain_time)
    );
    let binding = match (input.rpm_bound(), input.tpm_bound()) {
        (Some(r), Some(t)) if t < r => format!("TPM binds: {} chains", floor2(t)),
        (Some(r), _) => format!(
            "RPM binds: {} x {} / (60 x {}) = {}",
            input.rpm.unwrap_or_default(),
            short(input.chain_time),
            num(input.calls_per_chain),
            floor2(r),
        ),
        (None, Some(t)) => format!("TPM binds: {} chains", floor2(t)),
        (None, None) => String::new(),
    };
    if plan.max_limit == 0 {
        let _ = writeln!(
            s,
            "Largest safe limit: none ({binding}): even one chain at a time is over the quota; pace with --rpm/--tpm."
        );
    } else {
        let _ = writeln!(s, "Largest safe limit: {} ({binding}).", plan.max_limit);
    }
    let checked = input.limit.unwrap_or(plan.max_limit.max(1));
    let tpm = plan
        .demand_tpm
        .map_or(String::new(), |t| format!(" and {t:.0} TPM"));
    let verdict = if plan.exceeds {
        "over the quota: expect 429s and retries"
    } else {
        "within the quota"
    };
    let _ = writeln!(
        s,
        "Limit {checked} demands {} RPM{tpm}: {verdict}.",
        num(plan.demand_rpm)
    );
    let _ = writeln!(
        s,
        "{} chains at limit {}: about {}.",
        input.n,
        plan.max_limit.max(1),
        short(Duration::from_millis(plan.expected_wall_ms))
    );
    s
}

/// A bound rounded down to two decimals: 8.997 must not read as 9 next to a limit of 8.
fn floor2(v: f64) -> String {
    format!("{:.2}", (v * 100.0).floor() / 100.0)
}

/// A figure with at most one decimal, without a trailing `.0`.
fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// Seconds as `43ms`, `25s`, `2.5s` or `5m25s`.
fn short(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{}ms", num(secs * 1000.0))
    } else if secs >= 60.0 {
        let m = (secs / 60.0).floor();
        format!("{m:.0}m{}s", num(secs - m * 60.0))
    } else {
        format!("{}s", num(secs))
    }
}
