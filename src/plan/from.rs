//! `plan --from DIR`: the chain time, calls and tokens per chain a previous sweep or run
//! measured, read from its report.json (sweep) or summary.json (run).
//!
//! From a sweep, the run at the smallest limit is taken (pooled when measured both ways): it
//! is the least queued, so its chain time is closest to the service time Little's law wants.
//! Calls per chain count the retries the run needed, which a quota pays for too. Tokens per
//! call are what a tokens-per-minute quota charges: input plus output tokens as the API
//! reported them (`input_tokens_per_s` + `output_tokens_per_s`, or the cost block's totals
//! when the report has no rates, as a run's summary.json); `--tokens-per-call` overrides
//! them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::PlanError;

/// What a report folder measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Mean chain latency of the chosen run.
    pub chain_time: Duration,
    /// Calls sent per chain, retries included.
    pub calls_per_chain: f64,
    /// Input + output tokens per call, when the API reported tokens.
    pub tokens_per_call: Option<f64>,
    /// Which run the figures come from, for the text output.
    pub source: String,
}

/// Reads `dir` (a report folder, or its report.json / summary.json).
pub fn read_measured(dir: &Path) -> Result<Measured, PlanError> {
    let err = |why: String| PlanError::From {
        dir: dir.display().to_string(),
        why,
    };
    let candidates = if dir.is_dir() {
        vec![dir.join("report.json"), dir.join("summary.json")]
    } else {
        vec![dir.to_path_buf()]
    };
    let Some(file) = candidates.iter().find(|p| p.is_file()) else {
        return Err(err("no report.json or summary.json there".into()));
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read it: {e}")))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let measured = if doc.get("runs").is_some() {
        from_sweep(&doc)
    } else {
        from_run(&doc)
    };
    measured.map_err(err)
}

fn from_sweep(doc: &Value) -> Result<Measured, String> {
    let runs = doc
        .get("runs")
        .and_then(Value::as_array)
        .ok_or("its `runs` is not a list")?;
    let key = |r: &&Value| {
        let limit = r.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX);
        let unpooled = r.get("pooling").and_then(Value::as_str) == Some("off");
        (limit, unpooled)
    };
    let run = runs
        .iter()
        .filter(|r| chains(r) > 0.0)
        .min_by_key(key)
        .ok_or("it holds no run that finished a chain")?;
    let limit = run.get("limit").and_then(Value::as_u64).unwrap_or(0);
    measure(run, chains(run), format!("sweep run at limit {limit}"))
}

fn from_run(doc: &Value) -> Result<Measured, String> {
    let n = ["succeeded", "failed"]
        .iter()
        .filter_map(|k| doc.get(*k).and_then(Value::as_f64))
        .sum::<f64>();
    if n <= 0.0 {
        return Err(
            "it is neither a sweep's report.json nor a run's summary.json with finished chains"
                .into(),
        );
    }
    measure(doc, n, "run".into())
}

fn chains(run: &Value) -> f64 {
    ["chains_ok", "chains_failed"]
        .iter()
        .filter_map(|k| run.get(*k).and_then(Value::as_f64))
        .sum()
}

fn measure(run: &Value, chains: f64, source: String) -> Result<Measured, String> {
    let mean_us = run
        .pointer("/chain_latency/mean_us")
        .and_then(Value::as_f64)
        .filter(|us| *us > 0.0)
        .ok_or("it has no chain latency (no chain succeeded)")?;
    let calls = run
        .get("calls")
        .and_then(Value::as_f64)
        .filter(|c| *c > 0.0)
        .ok_or("it has no call count")?;
    let tokens_per_call = tokens(run).map(|t| t / calls);
    Ok(Measured {
        chain_time: Duration::from_secs_f64(mean_us / 1e6),
        calls_per_chain: calls / chains,
        tokens_per_call,
        source,
    })
}

/// Input + output tokens the run was charged: from the per-second rates and the wall time,
/// else from the cost block (present when the run had a price). None when neither is there.
fn tokens(run: &Value) -> Option<f64> {
    let num = |k: &str| run.get(k).and_then(Value::as_f64);
    let rates = [num("input_tokens_per_s"), num("output_tokens_per_s")];
    if let (true, Some(wall_ms)) = (rates.iter().any(Option::is_some), num("wall_ms")) {
        let per_s: f64 = rates.iter().flatten().sum();
        return (per_s > 0.0).then(|| per_s * wall_ms / 1000.0);
    }
    let cost = |k: &str| run.pointer(&format!("/cost/{k}")).and_then(Value::as_f64);
    let total = cost("input_tokens").unwrap_or(0.0) + cost("output_tokens").unwrap_or(0.0);
    (total > 0.0).then_some(total)
}
