//! A run's figures, gathered as calls and chains finish: histograms (calls, chains, per step,
//! time to first token), errors by kind, tokens, the in-flight timeline, a 32-bit hash of
//! each row's final output, and the quality figures ([`super::quality`]). Nothing per call
//! is kept, so a run's memory does not grow with its calls (the hashes are 4 bytes a row,
//! and only when asked for; token sets of the first 4,096 rows at most; latencies for the
//! paired pooling test of the first [`PAIR_SLOTS`] (row, step) calls at most, when asked for).
//!
//! It is an [`Observer`]: worker tasks report into it through one mutex, held for a few
//! histogram increments per call.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use super::quality::{QualityRecorder, SAMPLE_ROWS, Sample, token_set};
use super::{ErrorCounts, LatencyRecorder, LlmFigures, RunSummary, StepLatency, Timeline};
use crate::chain::Row;
use crate::cost::{Price, TokenTally};
use crate::record::{CallRecord, ChainRecord, RunKey, ms};
use crate::runner::{BatchResult, Observer};

/// Points kept in each run's in-flight timeline in the report.
const TIMELINE_POINTS: usize = 400;

/// Most (row, step) latencies a run keeps for pairing its calls with another run's: 4 bytes
/// each, so 256 KB at most whatever the batch size. 65,536 pairs pin a median difference far
/// tighter than any report prints; more would only cost memory.
pub const PAIR_SLOTS: usize = 1 << 16;

/// Collects one run's figures while it runs; see the module docs.
#[derive(Debug)]
pub struct RunRecorder {
    inner: Mutex<Figures>,
    /// `--price`: when set, the summary says what the run cost.
    price: Option<Price>,
    /// Rows whose final output is kept as a token set for the similarity (the first ones).
    sample_rows: usize,
}

#[derive(Debug)]
struct Figures {
    calls: u64,
    call_latency: LatencyRecorder,
    per_step: Vec<LatencyRecorder>,
    ttft: LatencyRecorder,
    llm: LlmFigures,
    errors: ErrorCounts,
    tokens: Option<u64>,
    input_tokens: Option<u64>,
    chain_latency: LatencyRecorder,
    chains_ok: usize,
    chains_failed: usize,
    timeline: Timeline,
    /// Reported tokens per step and for retries, for the cost.
    usage: TokenTally,
    /// Hash of each row's final output (0: failed or not run), when comparing outputs:
    /// 4 bytes a row.
    hashes: Option<Vec<u32>>,
    /// Finish reasons, empty outputs, output tokens, and (when comparing outputs) the first
    /// rows' token sets.
    quality: QualityRecorder,
    /// Latency in µs + 1 (0: none) of each (row, step) slot `row · steps + step` whose first
    /// send on the first pass succeeded, for pairing with another run; see [`RunRecorder::with_pairing`].
    paired: Option<Vec<u32>>,
    /// Rows of the batch the pairing slots cover (row numbers taken modulo this, so a
    /// segment's contiguous global rows map one to one).
    pair_rows: usize,
    steps: usize,
}

impl RunRecorder {
    /// A recorder for a chain of `steps` steps; `hash_rows` keeps a hash of each of that many
    /// rows' final output (for the sweep's output-consistency check), 0 keeps none.
    pub fn new(steps: usize, hash_rows: usize) -> RunRecorder {
        RunRecorder {
            inner: Mutex::new(Figures {
                calls: 0,
                call_latency: LatencyRecorder::new(),
                per_step: vec![LatencyRecorder::new(); steps],
                ttft: LatencyRecorder::new(),
                llm: LlmFigures::new(None),
                errors: ErrorCounts::default(),
                tokens: None,
                input_tokens: None,
                chain_latency: LatencyRecorder::new(),
                chains_ok: 0,
                chains_failed: 0,
                timeline: Timeline::default(),
                usage: TokenTally::new(steps),
                hashes: (hash_rows > 0).then(|| vec![0; hash_rows]),
                quality: QualityRecorder::new(hash_rows),
                paired: None,
                pair_rows: 1,
                steps: steps.max(1),
            }),
            price: None,
            sample_rows: hash_rows.min(SAMPLE_ROWS),
        }
    }

    /// Prices the run's reported tokens at `price` in its summary (no cost without one).
    pub fn with_price(mut self, price: Option<Price>) -> RunRecorder {
        self.price = price;
        self
    }

    /// Judges every call against `slo` (for `slo_attainment` and `goodput`).
    pub fn with_slo(self, slo: Option<crate::slo::Slo>) -> RunRecorder {
        self.figures().llm = LlmFigures::new(slo);
        self
    }

    /// Keeps the latency of each of the first `rows` rows' steps (at most `PAIR_SLOTS` calls)
    /// when its first send on the first pass succeeded: the calls another run of the same rows
    /// can be paired with. A retried call is left out, as its latency includes a different
    /// server state (a 429's wait, a second connection) than its partner's.
    pub fn with_pairing(self, rows: usize) -> RunRecorder {
        {
            let mut f = self.figures();
            let slots = rows.saturating_mul(f.steps).min(PAIR_SLOTS);
            f.paired = (slots > 0).then(|| vec![0; slots]);
            f.pair_rows = rows.max(1);
        }
        self
    }

    /// The pairing latencies (µs + 1 per (row, step) slot, 0: none), taken out.
    pub fn paired_latencies(&self) -> Option<Vec<u32>> {
        self.figures().paired.take()
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        // A poisoned lock means an observer panicked mid-update; the counts are still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hash of each row's final output (0: none), when the recorder keeps them.
    pub fn output_hashes(&self) -> Option<Vec<u32>> {
        self.figures().hashes.take()
    }

    /// The sampled rows' token sets (for the similarity to a baseline), taken out.
    pub fn quality_sample(&self) -> Sample {
        self.figures().quality.take_sample()
    }

    /// The run's summary (speedup filled in later). `steps` names the chain's steps.
    pub fn summary(
        &self,
        key: RunKey,
        batch: &BatchResult,
        steps: &[String],
        connections: Option<u64>,
        outputs_differ: usize,
    ) -> RunSummary {
        let f = self.figures();
        let wall_s = batch.wall.as_secs_f64().max(f64::MIN_POSITIVE);
        RunSummary {
            key,
            wall_ms: ms(batch.wall),
            retry_wall_ms: ms(batch.retry_wall),
            chains_per_s: f.chains_ok as f64 / wall_s,
            calls_per_s: f.calls as f64 / wall_s,
            speedup: None,
            efficiency: None,
            chains_ok: f.chains_ok,
            chains_failed: f.chains_failed,
            chains_retried: batch.retried,
            calls_saved: batch.calls_saved,
            stale_retries: batch.stale_retries,
            calls: f.calls,
            calls_failed: f.errors.total(),
            call_latency: f.call_latency.summary(),
            chain_latency: f.chain_latency.summary(),
            errors: f.errors,
            connections,
            outputs_differ,
            step_latency: steps
                .iter()
                .zip(&f.per_step)
                .map(|(step, r)| StepLatency {
                    step: step.clone(),
                    latency: r.summary(),
                })
                .collect(),
            ttft: (!f.ttft.is_empty()).then(|| f.ttft.summary()),
            output_tokens_per_s: f.tokens.map(|t| t as f64 / wall_s),
            input_tokens_per_s: f.input_tokens.map(|t| t as f64 / wall_s),
            partial: batch.interrupted,
            chains_not_run: batch.not_run.len(),
            call_distribution: f.call_latency.distribution(),
            timeline: f.timeline.points(TIMELINE_POINTS),
            cost: self
                .price
                .map(|p| f.usage.cost(p, f.chains_ok + f.chains_failed, steps)),
            auto: false,
            repeats: None,
            llm: f.llm.summary(&f.ttft, batch.wall),
            wall_clock_ms: wall_clock_ms(batch.wall),
            open_loop: None,
            quality: Some(f.quality.summary()),
        }
    }
}

impl Observer for RunRecorder {
    fn call_done(&self, call: &CallRecord) {
        let mut f = self.figures();
        f.calls += 1;
        f.timeline.record(call.start, call.start + call.latency);
        f.usage.add(call);
        f.llm.call_done(call);
        f.quality.call_done(call);
        match call.error {
            None => {
                f.call_latency.record(call.latency);
                if let Some(r) = f.per_step.get_mut(usize::from(call.step)) {
                    r.record(call.latency);
                }
                if let Some(t) = call.ttft {
                    f.ttft.record(t);
                }
                if let Some(n) = call.tokens {
                    *f.tokens.get_or_insert(0) += u64::from(n);
                }
                if let Some(n) = call.input_tokens {
                    *f.input_tokens.get_or_insert(0) += u64::from(n);
                }
                if call.pass == 0 && call.try_no == 0 {
                    let row = call.row as usize % f.pair_rows;
                    let slot = row * f.steps + usize::from(call.step);
                    let us = call.latency.as_micros().min(u128::from(u32::MAX - 1)) as u32;
                    if let Some(p) = f.paired.as_mut().and_then(|p| p.get_mut(slot)) {
                        *p = us + 1;
                    }
                }
            }
            Some(kind) => f.errors.add(kind),
        }
    }

    fn stream_done(&self, call: &CallRecord, stream: &crate::endpoint::sse::StreamStats) {
        self.figures().llm.stream_done(call, stream);
    }

    fn chain_done(&self, _row: &Row, chain: &ChainRecord, is_final: bool) {
        if !is_final {
            return;
        }
        let output = chain.final_output();
        // Tokenised before the lock: the set is what the similarity needs, and its cost
        // (the first rows only) stays out of other workers' way.
        let sampled = (chain.row as usize) < self.sample_rows;
        let tokens = sampled.then(|| output.map(token_set)).flatten();
        let mut f = self.figures();
        f.quality.row_done(chain.row, output, tokens);
        f.usage.row_final(chain.row);
        if chain.ok() {
            f.chains_ok += 1;
            f.chain_latency.record(chain.latency);
        } else {
            f.chains_failed += 1;
        }
        let hash = chain.final_output().map_or(0, output_hash);
        if let Some(slot) = f
            .hashes
            .as_mut()
            .and_then(|h| h.get_mut(chain.row as usize))
        {
            *slot = hash;
        }
    }
}

/// A 32-bit hash of an output, to compare rows across runs without keeping their text
/// (4 bytes a row: a million-chain sweep keeps 4 MB per batch size, and two different
/// outputs of a row look equal once in 4 billion); never 0, which stands for "no output".
pub fn output_hash(output: &str) -> u32 {
    let mut h = DefaultHasher::new();
    output.hash(&mut h);
    ((h.finish() >> 32) as u32).max(1)
}

/// Rows that succeeded in both runs (hash not 0) but whose outputs differ.
pub fn count_differences(reference: &[u32], hashes: &[u32]) -> usize {
    reference
        .iter()
        .zip(hashes)
        .filter(|&(&a, &b)| a != 0 && b != 0 && a != b)
        .count()
}

/// `[start, end]` in Unix ms for a run of `wall` that just ended (None before 1970).
fn wall_clock_ms(wall: std::time::Duration) -> Option<[f64; 2]> {
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let end_ms = end.as_secs_f64() * 1000.0;
    Some([end_ms - wall.as_secs_f64() * 1000.0, end_ms])
}
