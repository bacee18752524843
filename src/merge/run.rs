//! Adding up one run cell (same position in every segment's report) into the figures a single
//! process running the whole load would have reported: counts summed, histograms added
//! (lossless, from their `hdr` field), wall time from the earliest start to the latest end by
//! the runs' wall-clock timestamps, rates recomputed over that wall time.

use super::MergeError;
use crate::metrics::lossless;
use crate::metrics::{ErrorCounts, LatencyRecorder, LatencySummary, RunSummary, StepLatency};

/// Adds several latency summaries by their histograms. Empty ones (count 0) need none.
pub fn add_latency(parts: &[&LatencySummary]) -> Result<LatencyRecorder, MergeError> {
    let mut total = LatencyRecorder::new();
    let mut sum = total.histogram().clone();
    for part in parts.iter().filter(|p| p.count > 0) {
        let text = part.hdr.as_deref().ok_or(MergeError::NoHistogram)?;
        let hist = lossless::decode(text).map_err(|e| MergeError::BadHistogram(e.to_string()))?;
        sum.add(&hist)
            .map_err(|e| MergeError::BadHistogram(format!("{e:?}")))?;
    }
    total = LatencyRecorder::from_histogram(sum);
    Ok(total)
}

fn summary(parts: &[&LatencySummary]) -> Result<LatencySummary, MergeError> {
    Ok(add_latency(parts)?.summary())
}

/// Merges one cell across segments (`runs` is non-empty, same pooling).
pub fn merge_runs(runs: &[&RunSummary]) -> Result<RunSummary, MergeError> {
    let first = runs.first().ok_or(MergeError::NoInput)?;
    let mut out = (*first).clone();
    let sum_usize = |f: fn(&RunSummary) -> usize| runs.iter().map(|r| f(r)).sum::<usize>();
    let sum_u64 = |f: fn(&RunSummary) -> u64| runs.iter().map(|r| f(r)).sum::<u64>();
    out.key.size = sum_usize(|r| r.key.size);
    out.key.limit = sum_usize(|r| r.key.limit);
    let clocks: Option<Vec<[f64; 2]>> = runs.iter().map(|r| r.wall_clock_ms).collect();
    out.wall_clock_ms = clocks.map(|c| {
        let start = c.iter().map(|x| x[0]).fold(f64::INFINITY, f64::min);
        [start, c.iter().map(|x| x[1]).fold(0.0, f64::max)]
    });
    // Earliest start to latest end when every segment recorded its wall clock; else (older
    // reports) the longest segment's wall time, right when they started together.
    out.wall_ms = match out.wall_clock_ms {
        Some([start, end]) => end - start,
        None => runs.iter().map(|r| r.wall_ms).fold(0.0, f64::max),
    };
    out.retry_wall_ms = runs.iter().map(|r| r.retry_wall_ms).fold(0.0, f64::max);
    out.chains_ok = sum_usize(|r| r.chains_ok);
    out.chains_failed = sum_usize(|r| r.chains_failed);
    out.chains_retried = sum_usize(|r| r.chains_retried);
    out.calls_saved = sum_u64(|r| r.calls_saved);
    out.stale_retries = sum_u64(|r| r.stale_retries);
    out.chains_not_run = sum_usize(|r| r.chains_not_run);
    out.outputs_differ = sum_usize(|r| r.outputs_differ);
    if runs.len() > 1 {
        let parts: Option<Vec<_>> = runs.iter().map(|r| r.quality.as_ref()).collect();
        out.quality = parts.map(|q| crate::metrics::quality::Quality::merge(q.into_iter()));
    }
    out.calls = sum_u64(|r| r.calls);
    out.calls_failed = sum_u64(|r| r.calls_failed);
    out.partial = runs.iter().any(|r| r.partial);
    out.connections = runs.iter().map(|r| r.connections).sum();
    out.errors = add_errors(runs.iter().map(|r| &r.errors))?;
    let calls: Vec<_> = runs.iter().map(|r| &r.call_latency).collect();
    let call = add_latency(&calls)?;
    out.call_latency = call.summary();
    out.call_distribution = call.distribution();
    out.chain_latency = summary(&runs.iter().map(|r| &r.chain_latency).collect::<Vec<_>>())?;
    out.step_latency = first
        .step_latency
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let parts: Vec<_> = runs
                .iter()
                .filter_map(|r| r.step_latency.get(i))
                .map(|s| &s.latency)
                .collect();
            Ok(StepLatency {
                step: s.step.clone(),
                latency: summary(&parts)?,
            })
        })
        .collect::<Result<_, MergeError>>()?;
    let ttfts: Vec<_> = runs.iter().filter_map(|r| r.ttft.as_ref()).collect();
    out.ttft = if ttfts.is_empty() {
        None
    } else {
        Some(summary(&ttfts)?)
    };
    let secs = out.wall_ms / 1000.0;
    let per_s = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    out.chains_per_s = per_s(out.chains_ok as f64);
    out.calls_per_s = per_s(out.calls as f64);
    out.output_tokens_per_s = runs
        .iter()
        .map(|r| r.output_tokens_per_s.map(|t| t * r.wall_ms / 1000.0))
        .sum::<Option<f64>>()
        .map(per_s);
    out.input_tokens_per_s = runs
        .iter()
        .map(|r| r.input_tokens_per_s.map(|t| t * r.wall_ms / 1000.0))
        .sum::<Option<f64>>()
        .map(per_s);
    out.timeline = add_timelines(runs.iter().map(|r| r.timeline.as_slice()));
    out.speedup = None;
    out.efficiency = None;
    out.cost = merge_cost(runs, out.chains_ok + out.chains_failed, out.calls);
    merge_llm(runs, &mut out, secs)?;
    merge_open_loop(runs, &mut out, secs)?;
    // Each segment's repeat intervals describe that segment alone.
    out.repeats = None;
    Ok(out)
}

/// The part of a latency histogram each run has (`None`: skipped), added up.
fn merge_optional<'a>(
    parts: impl Iterator<Item = Option<&'a LatencySummary>>,
) -> Result<Option<LatencyRecorder>, MergeError> {
    let parts: Vec<&LatencySummary> = parts.flatten().collect();
    match parts.is_empty() {
        true => Ok(None),
        false => add_latency(&parts).map(Some),
    }
}

/// Costs add up; per-chain and per-call figures are recomputed from the sums.
fn merge_cost(runs: &[&RunSummary], chains: usize, calls: u64) -> Option<crate::cost::Cost> {
    let mut parts = runs.iter().filter_map(|r| r.cost.as_ref());
    let mut out = parts.next()?.clone();
    for c in parts {
        out.total += c.total;
        out.retries += c.retries;
        out.redone += c.redone;
        out.input_tokens += c.input_tokens;
        out.output_tokens += c.output_tokens;
        out.calls_without_usage += c.calls_without_usage;
        for (mine, theirs) in out.per_step.iter_mut().zip(&c.per_step) {
            mine.input_tokens += theirs.input_tokens;
            mine.output_tokens += theirs.output_tokens;
            mine.cost += theirs.cost;
        }
    }
    out.per_chain = (chains > 0).then(|| out.total / chains as f64);
    out.per_call = (calls > 0).then(|| out.total / calls as f64);
    Some(out)
}

/// ITL and TPOT histograms add up; SLO attainment and per-request tokens/s are weighted by
/// calls, goodput is the calls that met the SLO over the merged wall time.
fn merge_llm(runs: &[&RunSummary], out: &mut RunSummary, secs: f64) -> Result<(), MergeError> {
    let itl = merge_optional(runs.iter().map(|r| r.llm.itl.as_ref()))?;
    out.llm.itl_distribution = itl.as_ref().map(|h| h.distribution()).unwrap_or_default();
    out.llm.itl = itl.map(|h| h.summary());
    out.llm.tpot = merge_optional(runs.iter().map(|r| r.llm.tpot.as_ref()))?.map(|h| h.summary());
    let ttft = merge_optional(runs.iter().map(|r| r.ttft.as_ref()))?;
    out.llm.ttft_distribution = ttft.map(|h| h.distribution()).unwrap_or_default();
    let calls: f64 = runs.iter().map(|r| r.calls as f64).sum();
    let weighted = |f: fn(&RunSummary) -> Option<f64>| {
        let parts: Option<Vec<(f64, f64)>> = runs
            .iter()
            .map(|r| f(r).map(|v| (v, r.calls as f64)))
            .collect();
        parts
            .filter(|_| calls > 0.0)
            .map(|p| p.iter().map(|(v, n)| v * n).sum::<f64>() / calls)
    };
    out.llm.slo_attainment = weighted(|r| r.llm.slo_attainment);
    out.llm.request_output_tokens_per_s = weighted(|r| r.llm.request_output_tokens_per_s);
    out.llm.goodput = out
        .llm
        .slo_attainment
        .filter(|_| secs > 0.0)
        .map(|a| a * calls / secs);
    Ok(())
}

/// Open-loop segments offered their share of the rate: rates and counts add up, the
/// latency histograms (from the intended start, service, queue wait) are added.
fn merge_open_loop(
    runs: &[&RunSummary],
    out: &mut RunSummary,
    secs: f64,
) -> Result<(), MergeError> {
    let parts: Option<Vec<&crate::runner::OpenLoopStats>> =
        runs.iter().map(|r| r.open_loop.as_ref()).collect();
    let (Some(parts), Some(merged)) = (parts, out.open_loop.as_mut()) else {
        return Ok(());
    };
    let add = |f: fn(&crate::runner::OpenLoopStats) -> &LatencySummary| {
        add_latency(&parts.iter().map(|p| f(p)).collect::<Vec<_>>()).map(|h| h.summary())
    };
    merged.latency = add(|p| &p.latency)?;
    merged.service_latency = add(|p| &p.service_latency)?;
    merged.queue_wait = add(|p| &p.queue_wait)?;
    merged.offered_rate = parts.iter().map(|p| p.offered_rate).sum();
    merged.arrivals = parts.iter().map(|p| p.arrivals).sum();
    merged.late_starts = parts.iter().map(|p| p.late_starts).sum();
    merged.arrival_rate = parts.iter().map(|p| p.arrival_rate).sum();
    merged.achieved_rate = match secs > 0.0 {
        true => out.chains_ok as f64 / secs,
        false => 0.0,
    };
    Ok(())
}

/// Sums step functions `[t_ms, in_flight]` (each holds its value until its next point).
pub(super) fn add_timelines<'a>(lines: impl Iterator<Item = &'a [[f64; 2]]>) -> Vec<[f64; 2]> {
    let lines: Vec<_> = lines.collect();
    let mut times: Vec<f64> = lines.iter().flat_map(|l| l.iter().map(|p| p[0])).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let at = |line: &[[f64; 2]], t: f64| {
        let n = line.partition_point(|p| p[0] <= t);
        n.checked_sub(1).map_or(0.0, |i| line[i][1])
    };
    let points: Vec<[f64; 2]> = times
        .iter()
        .map(|&t| [t, lines.iter().map(|l| at(l, t)).sum()])
        .collect();
    // At most ~400 points, like a single run's timeline.
    let step = points.len().div_ceil(400).max(1);
    points.into_iter().step_by(step).collect()
}

/// Sums every per-kind count (field by field through JSON, so a new kind needs no change here).
pub(super) fn add_errors<'a>(
    parts: impl Iterator<Item = &'a ErrorCounts>,
) -> Result<ErrorCounts, MergeError> {
    let mut sum = serde_json::Map::new();
    for part in parts {
        let serde_json::Value::Object(map) = serde_json::to_value(part)? else {
            continue;
        };
        for (k, v) in map {
            let add = v.as_u64().unwrap_or(0);
            let old = sum.get(&k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            sum.insert(k, (old + add).into());
        }
    }
    Ok(serde_json::from_value(serde_json::Value::Object(sum))?)
}
