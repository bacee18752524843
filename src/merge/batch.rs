//! `merge` of `loadchain run --segment i/n` folders: results.jsonl, failed.csv and calls.csv
//! concatenate; summary.json's counts add, histograms add losslessly, wall time is the
//! longest segment's; summary.md and the charts are rebuilt by the run report writer.
//! Two folders holding results for the same row id overlap and are refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::MergeError;
use super::run::{add_errors, add_latency, add_timelines};
use crate::manifest::{ResultsLog, RunSummaryFile};
use crate::report::{self, ReportError};

/// Settings that differ between segments by design.
const PER_SEGMENT: [&str; 4] = ["started_utc", "rpm", "tpm", "machine"];

fn settings_json(s: &RunSummaryFile) -> Result<serde_json::Value, MergeError> {
    let mut v = serde_json::to_value(&s.settings)?;
    if let Some(map) = v.as_object_mut() {
        for k in PER_SEGMENT {
            map.remove(k);
        }
    }
    Ok(v)
}

/// Merges run folders into summary.json figures, checking settings and row overlap.
pub fn merge_run_dirs(dirs: &[PathBuf]) -> Result<RunSummaryFile, MergeError> {
    let first_dir = dirs.first().ok_or(MergeError::NoInput)?;
    let parts = dirs
        .iter()
        .map(|d| Ok(report::read_run(d)?))
        .collect::<Result<Vec<_>, MergeError>>()?;
    let base = settings_json(&parts[0])?;
    let mut owner: std::collections::HashMap<String, &PathBuf> = Default::default();
    for (dir, part) in dirs.iter().zip(&parts) {
        let other = settings_json(part)?;
        if other != base {
            return Err(MergeError::Settings {
                a: first_dir.display().to_string(),
                b: dir.display().to_string(),
                field: "settings".into(),
                va: base.to_string(),
                vb: other.to_string(),
            });
        }
        let lines = ResultsLog::read_all(dir).map_err(|e| MergeError::Run(e.to_string()))?;
        let ids: HashSet<String> = lines.into_iter().map(|l| l.id).collect();
        for id in ids {
            if let Some(prev) = owner.insert(id.clone(), dir) {
                return Err(MergeError::Overlap {
                    a: prev.display().to_string(),
                    b: dir.display().to_string(),
                    sa: "holding".into(),
                    sb: format!("row {id}"),
                    why: " (both have results for it)",
                });
            }
        }
    }
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    let mut out = parts[0].clone();
    let sum = |f: fn(&RunSummaryFile) -> usize| parts.iter().map(f).sum::<usize>();
    out.rows_in_manifest = sum(|p| p.rows_in_manifest);
    out.succeeded = sum(|p| p.succeeded);
    out.failed = sum(|p| p.failed);
    out.skipped = sum(|p| p.skipped);
    out.not_run = sum(|p| p.not_run);
    out.limit = sum(|p| p.limit);
    out.passes = parts.iter().map(|p| p.passes).max().unwrap_or(1);
    out.calls = parts.iter().map(|p| p.calls).sum();
    out.wall_ms = parts.iter().map(|p| p.wall_ms).fold(0.0, f64::max);
    out.sum_chain_ms = parts.iter().map(|p| p.sum_chain_ms).sum();
    out.speedup = crate::manifest::speedup(out.sum_chain_ms, out.wall_ms);
    out.errors = add_errors(parts.iter().map(|p| &p.errors))?;
    out.call_latency =
        add_latency(&parts.iter().map(|p| &p.call_latency).collect::<Vec<_>>())?.summary();
    out.chain_latency =
        add_latency(&parts.iter().map(|p| &p.chain_latency).collect::<Vec<_>>())?.summary();
    for (i, step) in out.step_latency.iter_mut().enumerate() {
        let each: Vec<_> = parts
            .iter()
            .filter_map(|p| p.step_latency.get(i))
            .map(|s| &s.latency)
            .collect();
        step.latency = add_latency(&each)?.summary();
    }
    let ttfts: Vec<_> = parts.iter().filter_map(|p| p.ttft.as_ref()).collect();
    out.ttft = if ttfts.is_empty() {
        None
    } else {
        Some(add_latency(&ttfts)?.summary())
    };
    out.torn_line_ignored = None;
    let qualities: Option<Vec<_>> = parts.iter().map(|p| p.quality.as_ref()).collect();
    out.quality = qualities.map(|q| crate::metrics::quality::Quality::merge(q.into_iter()));
    out.timeline = add_timelines(parts.iter().map(|p| p.timeline.as_slice()));
    if let Some(s) = out.settings.as_mut() {
        let all: Vec<_> = parts.iter().filter_map(|p| p.settings.as_ref()).collect();
        s.started_utc = all
            .iter()
            .map(|x| x.started_utc.clone())
            .min()
            .unwrap_or_default();
        s.rpm = all.iter().map(|x| x.rpm).sum();
        s.tpm = all.iter().map(|x| x.tpm).sum();
        let mut machines: Vec<&str> = all.iter().map(|x| x.machine.as_str()).collect();
        machines.dedup();
        s.machine = machines.join("; ");
    }
    Ok(out)
}

/// Writes the merged run folder `out` (refused if it exists).
pub fn merge_run_into(
    dirs: &[PathBuf],
    out: &Path,
    fail_on: &[crate::threshold::Threshold],
) -> Result<(RunSummaryFile, crate::threshold::Verdict), MergeError> {
    let merged = merge_run_dirs(dirs)?;
    super::measurable(
        fail_on,
        merged.cost.is_some(),
        merged.llm.slo_attainment.is_some(),
    )?;
    let verdict = crate::batch::RunOutcome {
        summary: merged.clone(),
        out: out.to_path_buf(),
        interrupted: false,
    }
    .verdict(fail_on);
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(ReportError::Exists {
            path: out.to_path_buf(),
        }
        .into());
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let results = crate::manifest::RESULTS_FILE;
    super::concat_files(dirs, out, results, false)?;
    super::concat_files(dirs, out, crate::manifest::FAILED_FILE, true)?;
    super::concat_files(dirs, out, "calls.csv", true)?;
    merged
        .write(out)
        .map_err(|e| MergeError::Run(e.to_string()))?;
    report::write_run(out, &merged)?;
    Ok((merged, verdict))
}
