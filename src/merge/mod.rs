//! `loadchain merge DIR... --out DIR`: joins the report folders of `--segment i/n` sweeps into
//! one folder of the same shape as a single sweep's (report.json, tables, charts, calls.csv),
//! written by the same report writer. Histograms add up losslessly (their `hdr` field); counts
//! add; each cell's size and limit are the sums of the segments' shares, so the merged report
//! reads like the single run of the whole load. Folders from different settings, or segments
//! that overlap (the same segment twice, or splits of different n), are refused.
//!
//! Which segments a report covers is read from its recorded command (`--segment 2/4`); a
//! merged report records `--segment 1+2/4`, so merging is associative: merge(a, merge(b, c))
//! equals merge(merge(a, b), c).

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::report::{self, ReportError};
use crate::sweep::SweepReport;
use crate::threshold::{Metric, Threshold, Verdict};

mod batch;
mod run;
#[cfg(test)]
mod tests;

pub use run::merge_runs;

/// Why folders cannot be merged. All but `Report` are input errors (exit 2).
#[derive(Debug, Error)]
pub enum MergeError {
    /// No folder given.
    #[error("give at least one report folder")]
    NoInput,
    /// A folder is unreadable or not a sweep report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Settings differ between two folders.
    #[error("{a} and {b} come from different settings: {field} is {va} vs {vb}")]
    Settings {
        /// First folder.
        a: String,
        /// Second folder.
        b: String,
        /// The differing setting.
        field: String,
        /// Its value in `a`.
        va: String,
        /// Its value in `b`.
        vb: String,
    },
    /// Two folders cover the same rows or load.
    #[error("{a} and {b} overlap: {sa} and {sb}{why}")]
    Overlap {
        /// First folder.
        a: String,
        /// Second folder.
        b: String,
        /// Segments of `a`.
        sa: String,
        /// Segments of `b`.
        sb: String,
        /// Extra explanation.
        why: &'static str,
    },
    /// The reports hold different runs (cells).
    #[error("{a} and {b} hold different runs ({detail})")]
    Runs {
        /// First folder.
        a: String,
        /// Second folder.
        b: String,
        /// What differs.
        detail: String,
    },
    /// A non-empty latency lacks its histogram (a report from before lossless histograms).
    #[error("a report has latencies without histograms (written by an older loadchain); re-run it")]
    NoHistogram,
    /// A histogram does not decode or add.
    #[error("a histogram in the reports is damaged: {0}")]
    BadHistogram(String),
    /// A run folder's results.jsonl or summary.json is unusable.
    #[error("{0}")]
    Run(String),
    /// JSON re-shaping failed.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A `--fail-on` check the merged reports hold nothing to measure with.
    #[error("--fail-on: {0}")]
    FailOn(String),
}

impl MergeError {
    /// True when the inputs are at fault (exit 2), false for I/O failures (exit 1).
    pub fn is_input(&self) -> bool {
        !matches!(self, MergeError::Report(ReportError::Io { .. }))
    }
}

/// Which segments of an n-way split a report covers, from its recorded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// 1-based segment indices, sorted.
    pub indices: Vec<u32>,
    /// n.
    pub count: u32,
}

impl Coverage {
    /// Reads `--segment i/n` or `--segment i+j/n` (or `=` form) from a command; 1/1 without.
    pub fn of_command(command: &str) -> Coverage {
        let mut words = command.split_whitespace();
        let mut value = None;
        while let Some(w) = words.next() {
            if w == "--segment" {
                value = words.next();
            } else if let Some(v) = w.strip_prefix("--segment=") {
                value = Some(v);
            }
        }
        let parsed = value.and_then(|v| {
            let (list, n) = v.trim_matches(['\'', '"']).split_once('/')?;
            let count: u32 = n.parse().ok()?;
            let mut indices = list
                .split('+')
                .map(|i| i.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            indices.sort_unstable();
            Some(Coverage { indices, count })
        });
        parsed.unwrap_or(Coverage {
            indices: vec![1],
            count: 1,
        })
    }

    fn label(&self) -> String {
        let list: Vec<String> = self.indices.iter().map(u32::to_string).collect();
        format!("{}/{}", list.join("+"), self.count)
    }

    /// True when every segment of the split is covered: the whole load.
    fn is_whole(&self) -> bool {
        self.indices.iter().copied().eq(1..=self.count)
    }

    /// The command with its segment replaced by this coverage. Once every segment is in,
    /// the command is the whole run's, one that can be run as it stands: `--segment`,
    /// `--start-at` and `--out` (a segment's own folder) are dropped.
    fn rewrite(&self, command: &str) -> String {
        let whole = self.is_whole();
        let mut out = Vec::new();
        let mut words = command.split_whitespace().peekable();
        while let Some(w) = words.next() {
            let (flag, inline) = match w.split_once('=') {
                Some((f, _)) => (f, true),
                None => (w, false),
            };
            let dropped = whole && ["--segment", "--start-at", "--out"].contains(&flag);
            if dropped {
                if !inline {
                    words.next();
                }
            } else if flag == "--segment" {
                if !inline {
                    words.next();
                }
                out.push(format!("--segment={}", self.label()));
            } else {
                out.push(w.to_string());
            }
        }
        out.join(" ")
    }
}

/// Reads the folders and merges them into one report (nothing written).
pub fn merge_dirs(dirs: &[PathBuf]) -> Result<SweepReport, MergeError> {
    merge_reports(&read_reports(dirs)?)
}

/// Each folder's report.json, named by its folder.
fn read_reports(dirs: &[PathBuf]) -> Result<Vec<(String, SweepReport)>, MergeError> {
    dirs.iter()
        .map(|d| Ok((d.display().to_string(), report::read_report(d)?)))
        .collect()
}

/// Settings that differ between segments by design: split counts, the command, the machine.
const PER_SEGMENT: [&str; 7] = [
    "sizes",
    "limits",
    "baseline_limit",
    "rpm",
    "tpm",
    "command",
    "machine",
];

/// Merges named reports; see the module docs for the rules.
pub fn merge_reports(reports: &[(String, SweepReport)]) -> Result<SweepReport, MergeError> {
    let (name0, first) = reports.first().ok_or(MergeError::NoInput)?;
    let cov0 = Coverage::of_command(&first.settings.command);
    let mut covered = vec![(name0, cov0.clone())];
    let base = comparable(first)?;
    for (name, r) in &reports[1..] {
        let other = comparable(r)?;
        if let Some((field, va, vb)) = first_difference(&base, &other) {
            return Err(MergeError::Settings {
                a: name0.clone(),
                b: name.clone(),
                field,
                va,
                vb,
            });
        }
        let cov = Coverage::of_command(&r.settings.command);
        for (prev, pc) in &covered {
            let why = if pc.count != cov.count {
                " (splits into different numbers of segments cannot be told apart)"
            } else {
                ""
            };
            if pc.count != cov.count || pc.indices.iter().any(|i| cov.indices.contains(i)) {
                return Err(MergeError::Overlap {
                    a: (*prev).clone(),
                    b: name.clone(),
                    sa: format!("segments {}", pc.label()),
                    sb: cov.label(),
                    why,
                });
            }
        }
        if r.runs.len() != first.runs.len()
            || r.runs
                .iter()
                .zip(&first.runs)
                .any(|(x, y)| x.key.pooling != y.key.pooling)
        {
            return Err(MergeError::Runs {
                a: name0.clone(),
                b: name.clone(),
                detail: format!("{} vs {} runs", first.runs.len(), r.runs.len()),
            });
        }
        covered.push((name, cov));
    }
    if reports.len() == 1 {
        return Ok(first.clone());
    }
    let mut out = first.clone();
    let all: Vec<&SweepReport> = reports.iter().map(|(_, r)| r).collect();
    out.runs = (0..first.runs.len())
        .map(|i| merge_runs(&all.iter().map(|r| &r.runs[i]).collect::<Vec<_>>()))
        .collect::<Result<_, _>>()?;
    let s = &mut out.settings;
    s.sizes = sum_lists(all.iter().map(|r| r.settings.sizes.as_slice()));
    s.limits = sum_lists(all.iter().map(|r| r.settings.limits.as_slice()));
    s.baseline_limit = all.iter().map(|r| r.settings.baseline_limit).sum();
    s.rpm = all.iter().map(|r| r.settings.rpm).sum();
    s.tpm = all.iter().map(|r| r.settings.tpm).sum();
    let mut machines: Vec<&str> = all.iter().map(|r| r.settings.machine.as_str()).collect();
    machines.dedup();
    s.machine = machines.join("; ");
    let mut indices: Vec<u32> = covered
        .iter()
        .flat_map(|(_, c)| c.indices.clone())
        .collect();
    indices.sort_unstable();
    s.command = Coverage {
        indices,
        count: cov0.count,
    }
    .rewrite(&first.settings.command);
    out.started_utc = all
        .iter()
        .map(|r| r.started_utc.clone())
        .min()
        .unwrap_or_default();
    out.interrupted = all.iter().any(|r| r.interrupted);
    crate::sweep::apply_speedups(&mut out.runs, out.settings.baseline_limit);
    // The segments' pairs are not kept, so the merged cells compare unpaired.
    out.pooling = crate::sweep::pooling_tests(&out.runs, &[]);
    Ok(out)
}

fn sum_lists<'a>(lists: impl Iterator<Item = &'a [usize]>) -> Vec<usize> {
    let mut sum: Vec<usize> = Vec::new();
    for list in lists {
        sum.resize(sum.len().max(list.len()), 0);
        for (s, v) in sum.iter_mut().zip(list) {
            *s += v;
        }
    }
    sum
}

/// The settings that must match, as JSON.
fn comparable(r: &SweepReport) -> Result<serde_json::Map<String, serde_json::Value>, MergeError> {
    let mut v = match serde_json::to_value(&r.settings)? {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for k in PER_SEGMENT {
        v.remove(k);
    }
    v.insert("schema_version".into(), r.schema_version.into());
    v.insert("tool".into(), r.tool.clone().into());
    Ok(v)
}

fn first_difference(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> Option<(String, String, String)> {
    let keys = a.keys().chain(b.keys());
    for k in keys {
        let (va, vb) = (a.get(k), b.get(k));
        if va != vb {
            let show = |v: Option<&serde_json::Value>| v.map_or("absent".into(), |v| v.to_string());
            return Some((k.clone(), show(va), show(vb)));
        }
    }
    None
}

/// What `merge_into` wrote.
#[derive(Debug)]
pub enum Merged {
    /// Sweep report folders merged.
    Sweep(Box<SweepReport>),
    /// `run` folders merged.
    Run(Box<crate::manifest::RunSummaryFile>),
}

/// Merges `dirs` (all sweep report folders, or all `run` folders: the first decides) into a
/// new folder `out` (refused if it exists), written by the report writers; the segments'
/// calls.csv (and, for runs, results.jsonl and failed.csv) are concatenated into it.
/// `fail_on` is checked on the merged figures, as `sweep --fail-on` (or `run --fail-on`)
/// checks one process's: a check with nothing to measure is refused before anything is
/// written; the verdict (exit 1 when broken) is returned beside what was written.
pub fn merge_into(
    dirs: &[PathBuf],
    out: &Path,
    fail_on: &[Threshold],
) -> Result<(Merged, Verdict), MergeError> {
    let first = dirs.first().ok_or(MergeError::NoInput)?;
    let is_run =
        first.join(crate::manifest::SUMMARY_FILE).is_file() && !first.join("report.json").is_file();
    if is_run {
        let (merged, verdict) = batch::merge_run_into(dirs, out, fail_on)?;
        return Ok((Merged::Run(Box::new(merged)), verdict));
    }
    let reports = read_reports(dirs)?;
    let merged = merge_reports(&reports)?;
    let verdict = sweep_verdict(&merged, fail_on)?;
    let dir = report::ReportDir::create(out)?;
    dir.write(&merged)?;
    let segments: Vec<&SweepReport> = reports.iter().map(|(_, r)| r).collect();
    concat_calls(dirs, &segments, &merged, out)?;
    Ok((Merged::Sweep(Box::new(merged)), verdict))
}

/// The segments' calls.csv as one file whose `size` and `limit` columns name the merged
/// cells (a segment wrote its shares: size 100 at limit 2 is the whole run's 400 at 8), so
/// its rows pair with the merged report's runs; `row` is already the whole run's number.
fn concat_calls(
    dirs: &[PathBuf],
    segments: &[&SweepReport],
    merged: &SweepReport,
    out: &Path,
) -> Result<(), MergeError> {
    let target = out.join("calls.csv");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: csv::Error| MergeError::Run(format!("{}: {e}", path.display()))
    };
    let mut writer: Option<csv::Writer<std::fs::File>> = None;
    for (dir, seg) in dirs.iter().zip(segments) {
        let path = dir.join("calls.csv");
        if !path.is_file() {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).map_err(io(&path))?;
        let header = reader.headers().map_err(io(&path))?.clone();
        let w = match &mut writer {
            Some(w) => w,
            None => {
                let mut w = csv::Writer::from_path(&target).map_err(io(&target))?;
                w.write_record(&header).map_err(io(&target))?;
                writer.insert(w)
            }
        };
        let col = |name: &str| header.iter().position(|h| h == name);
        let maps = [
            (col("size"), &seg.settings.sizes, &merged.settings.sizes),
            (col("limit"), &seg.settings.limits, &merged.settings.limits),
        ];
        for record in reader.records() {
            let record = record.map_err(io(&path))?;
            let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
            for (at, shares, wholes) in &maps {
                let Some(field) = at.and_then(|i| fields.get_mut(i)) else {
                    continue;
                };
                let k = field
                    .parse::<usize>()
                    .ok()
                    .and_then(|v| shares.iter().position(|&s| s == v));
                if let Some(whole) = k.and_then(|k| wholes.get(k)) {
                    *field = whole.to_string();
                }
            }
            w.write_record(&fields).map_err(io(&target))?;
        }
    }
    match writer {
        Some(mut w) => w.flush().map_err(|source| {
            MergeError::Report(ReportError::Io {
                path: target,
                source,
            })
        }),
        None => Ok(()),
    }
}

/// `sweep --fail-on` on a merged report: every run (cell) checked on its merged histograms.
fn sweep_verdict(merged: &SweepReport, fail_on: &[Threshold]) -> Result<Verdict, MergeError> {
    let has = |f: &dyn Fn(&crate::metrics::RunSummary) -> bool| merged.runs.iter().any(f);
    measurable(
        fail_on,
        has(&|r| r.cost.is_some()),
        has(&|r| r.llm.slo_attainment.is_some()),
    )?;
    let outcome = crate::sweep::SweepOutcome {
        report: merged.clone(),
    };
    Ok(outcome.verdict(fail_on))
}

/// Refuses a cost check without a priced report and an SLO check without `--slo` figures:
/// they would pass without checking anything (sweep refuses the same when it starts).
pub(crate) fn measurable(fail_on: &[Threshold], priced: bool, slo: bool) -> Result<(), MergeError> {
    if let Some(t) = fail_on.iter().find(|t| t.metric == Metric::Cost && !priced) {
        return Err(MergeError::FailOn(format!(
            "{t} needs a cost, but the reports were not priced (--price)"
        )));
    }
    if let Some(t) = fail_on.iter().find(|t| t.metric.needs_slo() && !slo) {
        return Err(MergeError::FailOn(format!(
            "{t} needs SLO figures, but the reports were not run with --slo"
        )));
    }
    Ok(())
}

/// Concatenates `name` from every folder that has one into `out/name` (nothing if none has);
/// with `header`, only the first file's first line is kept.
fn concat_files(dirs: &[PathBuf], out: &Path, name: &str, header: bool) -> Result<(), MergeError> {
    use std::io::{BufRead, BufReader, BufWriter, Write};
    let present: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Report(ReportError::Io { path, source })
    };
    let target = out.join(name);
    let file = std::fs::File::create(&target).map_err(io(&target))?;
    let mut writer = BufWriter::new(file);
    for (i, path) in present.iter().enumerate() {
        let mut reader = BufReader::new(std::fs::File::open(path).map_err(io(path))?);
        if header && i > 0 {
            // Every segment's file starts with the same header; keep the first one only.
            let mut line = String::new();
            reader.read_line(&mut line).map_err(io(path))?;
        }
        std::io::copy(&mut reader, &mut writer).map_err(io(&target))?;
    }
    writer.flush().map_err(io(&target))
}
