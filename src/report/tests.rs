//! Shared fixtures for the report tests, and tests that span several formats.
//!
//! The fixture is simulated, not hand-typed: chains run through a semaphore model with seeded
//! latencies, and the real metrics code turns the calls into summaries, distributions and
//! timelines, so every chart and table sees plausible, internally consistent numbers.

use std::path::Path;
use std::time::Duration;

use crate::metrics::{ErrorCounts, LatencyRecorder, Timeline};
use crate::record::{CallRecord, ErrorKind, Pooling};
use crate::sweep::{RunSummary, SCHEMA_VERSION, Settings, SweepReport};

use crate::record::{RunCalls, RunKey};

/// Steps per chain, as in the course (research → write → edit).
const STEPS: u16 = 3;
/// The mock's new-connection cost at 1/100 scale, µs.
const CONNECT_US: u64 = 1_500;

/// A small deterministic generator (xorshift64*), so fixtures never change between runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in lo..hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// A call that fails: on `row`, `step`, first try of `pass`.
struct Fault {
    row: u32,
    step: u16,
    pass: u16,
    kind: ErrorKind,
    status: Option<u16>,
}

/// The calls of one simulated run with its summary (speedup filled in later).
pub(crate) struct SimRun {
    pub summary: RunSummary,
    pub calls: Vec<CallRecord>,
}

/// Faults of the one run that has issues: a 429 that backoff absorbs, a timeout that the
/// retry pass recovers, and a 5xx that fails both passes.
fn faults(size: usize, limit: usize, pooling: Pooling) -> Vec<Fault> {
    if (size, limit, pooling) != (25, 5, Pooling::Off) {
        return Vec::new();
    }
    let f = |row, step, pass, kind, status| Fault {
        row,
        step,
        pass,
        kind,
        status,
    };
    vec![
        f(3, 1, 0, ErrorKind::RateLimited, Some(429)),
        f(7, 2, 0, ErrorKind::Timeout, None),
        f(11, 0, 0, ErrorKind::ServerError, Some(503)),
        f(11, 0, 1, ErrorKind::ServerError, Some(500)),
    ]
}

/// Simulates `size` chains behind a semaphore of `limit`, with one retry-failed pass.
fn simulate(size: usize, limit: usize, pooling: Pooling) -> SimRun {
    let mut rng = Rng(0x9E37_79B9 ^ (size as u64) << 20 ^ (limit as u64) << 8 ^ pooling as u64);
    let faults = faults(size, limit, pooling);
    let slots_n = limit.min(size).max(1);
    let mut calls = Vec::new();
    let (mut call_rec, mut chain_rec) = (LatencyRecorder::new(), LatencyRecorder::new());
    let mut errors = ErrorCounts::default();
    let mut slot_free = vec![0u64; slots_n];
    let mut slot_used = vec![false; slots_n];
    let mut todo: Vec<u32> = (0..size as u32).collect();
    let (mut retried, mut pass0_end, mut connections) = (0usize, 0u64, 0u64);
    for pass in 0..2u16 {
        let mut failed = Vec::new();
        for &row in &todo {
            let slot = (0..slots_n).min_by_key(|&i| slot_free[i]).unwrap_or(0);
            let chain_start = slot_free[slot];
            let mut t = chain_start;
            let mut ok = true;
            for step in 0..STEPS {
                let mut try_no = 0u16;
                loop {
                    let fresh = pooling == Pooling::Off || !slot_used[slot];
                    slot_used[slot] = true;
                    connections += u64::from(fresh);
                    let mut lat = rng.range(30_000, 150_000) + if fresh { CONNECT_US } else { 0 };
                    let fault = faults
                        .iter()
                        .find(|f| (f.row, f.step, f.pass) == (row, step, pass) && try_no == 0);
                    if let Some(f) = fault {
                        lat = if f.kind == ErrorKind::Timeout {
                            200_000
                        } else {
                            4_000
                        };
                        errors.add(f.kind);
                    } else {
                        call_rec.record(Duration::from_micros(lat));
                    }
                    calls.push(CallRecord {
                        row,
                        step,
                        pass,
                        try_no,
                        start: Duration::from_micros(t),
                        latency: Duration::from_micros(lat),
                        status: fault.map_or(Some(200), |f| f.status),
                        error: fault.map(|f| f.kind),
                        bytes: if fault.is_some() {
                            64
                        } else {
                            1_800 + lat / 100
                        },
                        tokens: if fault.is_some() { None } else { Some(400) },
                        input_tokens: None,
                        ttft: None,
                        finish: Default::default(),
                    });
                    t += lat + 50;
                    match fault {
                        Some(f) if f.kind == ErrorKind::RateLimited => {
                            t += 20_000;
                            try_no += 1;
                        }
                        Some(_) => {
                            ok = false;
                            break;
                        }
                        None => break,
                    }
                }
                if !ok {
                    break;
                }
            }
            slot_free[slot] = t;
            if ok {
                chain_rec.record(Duration::from_micros(t - chain_start));
            } else {
                failed.push(row);
            }
        }
        let end = slot_free.iter().copied().max().unwrap_or(0);
        if pass == 0 {
            pass0_end = end;
            retried = failed.len();
        }
        slot_free.iter_mut().for_each(|s| *s = end);
        todo = failed;
        if todo.is_empty() {
            break;
        }
    }
    let wall_us = slot_free.iter().copied().max().unwrap_or(0);
    let wall_ms = wall_us as f64 / 1000.0;
    let calls_failed = errors.total();
    let summary = RunSummary {
        key: RunKey {
            size,
            limit,
            pooling,
        },
        wall_ms,
        retry_wall_ms: (wall_us - pass0_end) as f64 / 1000.0,
        chains_per_s: (size - todo.len()) as f64 / (wall_ms / 1000.0),
        calls_per_s: calls.len() as f64 / (wall_ms / 1000.0),
        speedup: None,
        efficiency: None,
        chains_ok: size - todo.len(),
        chains_failed: todo.len(),
        chains_retried: retried,
        calls_saved: 0,
        stale_retries: 0,
        calls: calls.len() as u64,
        calls_failed,
        call_latency: call_rec.summary(),
        chain_latency: chain_rec.summary(),
        errors,
        connections: Some(connections),
        outputs_differ: 0,
        quality: None,
        step_latency: Vec::new(),
        ttft: None,
        output_tokens_per_s: None,
        input_tokens_per_s: None,
        partial: false,
        chains_not_run: 0,
        auto: false,
        call_distribution: call_rec.distribution(),
        timeline: {
            let mut t = Timeline::default();
            calls
                .iter()
                .for_each(|c| t.record(c.start, c.start + c.latency));
            t.points(400)
        },
        cost: None,
        repeats: None,
        llm: Default::default(),
        wall_clock_ms: None,
        open_loop: None,
    };
    SimRun { summary, calls }
}

/// A whole sweep over `sizes` × `limits` × both pooling modes, with its raw calls.
pub(crate) fn fixture_with(sizes: &[usize], limits: &[usize]) -> (SweepReport, Vec<SimRun>) {
    let mut sims = Vec::new();
    for &size in sizes {
        for pooling in [Pooling::On, Pooling::Off] {
            for &limit in limits {
                sims.push(simulate(size, limit, pooling));
            }
        }
    }
    let walls: Vec<(usize, Pooling, f64)> = sims
        .iter()
        .filter(|s| s.summary.key.limit == 1)
        .map(|s| (s.summary.key.size, s.summary.key.pooling, s.summary.wall_ms))
        .collect();
    for s in &mut sims {
        let r = &mut s.summary;
        if let Some(&(_, _, base)) = walls
            .iter()
            .find(|w| (w.0, w.1) == (r.key.size, r.key.pooling))
        {
            let speedup = base / r.wall_ms;
            r.speedup = Some(speedup);
            r.efficiency = Some(speedup / r.key.limit.min(r.key.size) as f64);
        }
    }
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let settings = Settings {
        target: "embedded mock".to_string(),
        api: "openai".to_string(),
        model: "mock-1".to_string(),
        steps: vec!["research".into(), "write".into(), "edit".into()],
        sizes: sizes.to_vec(),
        limits: limits.to_vec(),
        pooling: vec![Pooling::On, Pooling::Off],
        baseline_limit: 1,
        retry_passes: 1,
        restart_chains: false,
        max_retries: 3,
        timeout_ms: 30_000,
        rpm: None,
        tpm: Some(90_000),
        mock: Some(
            "latency = \"uniform:30ms..150ms\"\nconnect_cost = \"1.5ms\"\nseed = 42\n".to_string(),
        ),
        wall_time_excludes: "client construction and warm-up".to_string(),
        warmup: false,
        max_retry_wait_ms: 60_000,
        max_response_bytes: 16 << 20,
        follow_redirects: false,
        pace: false,
        announced_quota: None,
        machine: "linux x86_64, 2 logical CPUs".to_string(),
        repeat: 1,
        command: format!(
            "loadchain sweep --sizes {} --limits {} --pooling on,off --seed 42",
            list(sizes),
            list(limits)
        ),
    };
    let report = SweepReport {
        interrupted: false,
        schema_version: SCHEMA_VERSION,
        tool: "loadchain 0.1.0".to_string(),
        started_utc: "2026-11-27T21:13:44Z".to_string(),
        settings,
        runs: sims.iter().map(|s| s.summary.clone()).collect(),
        adaptive: None,
        max_sustainable_rate: None,
        pooling: Vec::new(),
    };
    (report, sims)
}

/// The standard fixture: sizes 10, 25 × limits 1, 5 × pooling on, off.
pub(crate) fn fixture() -> SweepReport {
    fixture_with(&[10, 25], &[1, 5]).0
}

/// Simulated runs as the calls argument of `write_report`.
pub(crate) fn run_calls(sims: &[SimRun]) -> Vec<RunCalls> {
    sims.iter()
        .map(|s| RunCalls {
            key: s.summary.key,
            calls: s.calls.clone(),
        })
        .collect()
}

/// Writes the standard fixture's report into `dir/name`.
pub(crate) fn write_fixture(dir: &Path, name: &str) -> (std::path::PathBuf, SweepReport) {
    let (report, sims) = fixture_with(&[10, 25], &[1, 5]);
    let out = dir.join(name);
    super::write_report(&out, &report, &run_calls(&sims)).unwrap();
    (out, report)
}

mod folder;
