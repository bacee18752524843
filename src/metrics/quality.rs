//! The quality section of a run: why generation stopped (finish reasons), empty outputs, the
//! output-token distribution, and how each row's final output compares with the same row in
//! a baseline run (exact matches, and token-set Jaccard similarity as p10/p50).
//!
//! Memory stays constant in the batch size: finish counts and a token histogram per run, and
//! for the similarity a deterministic sample, the first [`SAMPLE_ROWS`] rows, each kept as a
//! sorted, deduplicated set of at most [`MAX_ROW_TOKENS`] 32-bit word hashes (at most 16 MB
//! per kept sample, typically a few hundred KB). Exact matches use the sweep's 32-bit output
//! hashes of every row.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::endpoint::Finish;
use crate::record::CallRecord;

/// Rows whose outputs are kept (as token sets) for the similarity: the first this many.
pub const SAMPLE_ROWS: usize = 4096;
/// Word hashes kept per row: the smallest this many (a bottom-k sketch of longer outputs).
pub const MAX_ROW_TOKENS: usize = 1024;

/// The quality figures of one run, as report.json and summary.json hold them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Why generation stopped, over every successful call (every step, retries included).
    pub finish: FinishCounts,
    /// Successful rows whose final output is empty or only whitespace.
    pub empty: usize,
    /// Output (completion) tokens per successful call, from usage (or counted stream chunks);
    /// None when the API reported none.
    pub output_tokens: Option<TokenPercentiles>,
    /// Rows that succeeded both here and in the baseline run; None without a baseline (the
    /// baseline run itself, and `loadchain run`).
    pub compared: Option<usize>,
    /// Of the `compared` rows, those whose final output is identical to the baseline's
    /// (32-bit hashes); None without a baseline.
    pub exact_matches: Option<usize>,
    /// Lexical similarity to the baseline over the sampled rows; None without a baseline or
    /// when no sampled row succeeded in both runs.
    pub similarity: Option<Similarity>,
}

/// Successful calls per finish class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishCounts {
    /// The model ended its answer (`stop`, `end_turn`, `stop_sequence`).
    pub stop: u64,
    /// Cut by the token limit (`length`, `max_tokens`): truncated answers.
    pub length: u64,
    /// Any other reason the API gave.
    pub other: u64,
    /// The API did not say.
    pub unknown: u64,
}

impl FinishCounts {
    /// Counts one call's finish.
    pub fn add(&mut self, finish: Finish) {
        match finish {
            Finish::Stop => self.stop += 1,
            Finish::Length => self.length += 1,
            Finish::Other => self.other += 1,
            Finish::Unknown => self.unknown += 1,
        }
    }

    /// Adds another run's (or segment's) counts.
    pub fn merge(&mut self, other: &FinishCounts) {
        self.stop += other.stop;
        self.length += other.length;
        self.other += other.other;
        self.unknown += other.unknown;
    }
}

/// Two percentiles of output tokens per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPercentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// Similarity of the sampled rows' final outputs to the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    /// Always `jaccard`: |A ∩ B| / |A ∪ B| of the two outputs' sets of lowercased words.
    pub metric: String,
    /// Sampled rows compared (succeeded in both runs, among the first [`SAMPLE_ROWS`]).
    pub rows: usize,
    /// 10th percentile (nearest rank): the worst tenth of rows is at most this similar.
    pub p10: f64,
    /// Median.
    pub p50: f64,
}

/// Each sampled row's token set (None: the row failed or did not run).
#[derive(Debug, Clone, Default)]
pub struct Sample(Vec<Option<Vec<u32>>>);

/// Gathers one run's quality figures as calls and chains finish; see the module docs.
#[derive(Debug)]
pub struct QualityRecorder {
    finish: FinishCounts,
    empty: usize,
    /// None only if the histogram could not be made (it always can with these bounds).
    tokens: Option<Histogram<u64>>,
    /// Rows below this index are sampled (0: no sample is kept).
    sample_rows: usize,
    sample: Sample,
}

impl QualityRecorder {
    /// A recorder that samples the first `min(rows, SAMPLE_ROWS)` rows' outputs (0: none, for
    /// runs nothing is compared with).
    pub fn new(rows: usize) -> QualityRecorder {
        QualityRecorder {
            finish: FinishCounts::default(),
            empty: 0,
            tokens: Histogram::new_with_bounds(1, u64::from(u32::MAX), 3).ok(),
            sample_rows: rows.min(SAMPLE_ROWS),
            sample: Sample::default(),
        }
    }

    /// Counts a call: its finish and output tokens when it succeeded.
    pub fn call_done(&mut self, call: &CallRecord) {
        if call.error.is_some() {
            return;
        }
        self.finish.add(call.finish);
        if let (Some(h), Some(n)) = (self.tokens.as_mut(), call.tokens) {
            h.saturating_record(u64::from(n));
        }
    }

    /// Whether row `row`'s output is sampled: the caller then computes its token set outside
    /// any lock and passes it to [`QualityRecorder::row_done`].
    pub fn samples(&self, row: u32) -> bool {
        (row as usize) < self.sample_rows
    }

    /// Counts a row's final record: `output` is its final output (None: it failed), `tokens`
    /// the output's token set when the row is sampled.
    pub fn row_done(&mut self, row: u32, output: Option<&str>, tokens: Option<Vec<u32>>) {
        if output.is_some_and(|o| o.trim().is_empty()) {
            self.empty += 1;
        }
        let i = row as usize;
        if i < self.sample_rows {
            if self.sample.0.len() <= i {
                self.sample.0.resize(i + 1, None);
            }
            self.sample.0[i] = tokens;
        }
    }

    /// The kept sample, taken out (the recorder keeps none afterwards).
    pub fn take_sample(&mut self) -> Sample {
        std::mem::take(&mut self.sample)
    }

    /// The run's figures, before any comparison with a baseline.
    pub fn summary(&self) -> Quality {
        Quality {
            finish: self.finish,
            empty: self.empty,
            output_tokens: self.tokens.as_ref().filter(|h| !h.is_empty()).map(|h| {
                TokenPercentiles {
                    p50: h.value_at_quantile(0.5),
                    p99: h.value_at_quantile(0.99),
                }
            }),
            ..Quality::default()
        }
    }
}

/// What a run's outputs look like next to its baseline's.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Rows that succeeded in both.
    pub compared: usize,
    /// Of those, rows with identical outputs.
    pub exact_matches: usize,
    /// Jaccard similarity over the sampled rows both runs have.
    pub similarity: Option<Similarity>,
}

impl Quality {
    /// Fills in the comparison with the baseline run.
    pub fn compared_with(&mut self, c: Comparison) {
        self.compared = Some(c.compared);
        self.exact_matches = Some(c.exact_matches);
        self.similarity = c.similarity;
    }

    /// A repeated cell (whose own figures come from a recorder that saw every repeat): the
    /// repeats' compared rows and exact matches summed, as `outputs_differ` is; known only
    /// when every repeat was compared. The similarity percentiles of separate repeats do
    /// not add up, so it is left out.
    pub fn add_comparisons<'a>(&mut self, runs: impl Iterator<Item = Option<&'a Quality>>) {
        let mut sum = Some((0, 0));
        for q in runs {
            sum = sum
                .zip(q.and_then(|q| q.compared.zip(q.exact_matches)))
                .map(|((c, e), (qc, qe))| (c + qc, e + qe));
        }
        self.compared = sum.map(|s| s.0);
        self.exact_matches = sum.map(|s| s.1);
        self.similarity = None;
    }

    /// Segments of one run combined (`merge`): finish counts, empty outputs, compared rows
    /// and exact matches summed (exact matches only when every segment has them). Token
    /// percentiles and the similarity are not kept per row, so they cannot be combined
    /// exactly: they are left out (null) rather than approximated.
    pub fn merge<'a>(parts: impl Iterator<Item = &'a Quality>) -> Quality {
        let mut out = Quality {
            compared: Some(0),
            exact_matches: Some(0),
            ..Quality::default()
        };
        for q in parts {
            out.finish.merge(&q.finish);
            out.empty += q.empty;
            out.compared = out.compared.zip(q.compared).map(|(a, b)| a + b);
            out.exact_matches = out.exact_matches.zip(q.exact_matches).map(|(a, b)| a + b);
        }
        out
    }
}

/// Compares a run with its baseline: exact matches over every row from the 32-bit output
/// hashes (0: no output), similarity over the sampled rows. None when the baseline kept no
/// hashes (a soak run: nothing to compare).
pub fn compare(
    base_hashes: &[u32],
    base: &Sample,
    hashes: &[u32],
    sample: &Sample,
) -> Option<Comparison> {
    if base_hashes.is_empty() {
        return None;
    }
    let (mut compared, mut exact_matches) = (0, 0);
    for (&a, &b) in base_hashes.iter().zip(hashes) {
        if a != 0 && b != 0 {
            compared += 1;
            exact_matches += usize::from(a == b);
        }
    }
    let mut scores: Vec<f64> = base
        .0
        .iter()
        .zip(&sample.0)
        .filter_map(|(a, b)| Some(jaccard(a.as_ref()?, b.as_ref()?)))
        .collect();
    scores.sort_by(f64::total_cmp);
    let similarity = (!scores.is_empty()).then(|| Similarity {
        metric: "jaccard".into(),
        rows: scores.len(),
        p10: nearest_rank(&scores, 0.10),
        p50: nearest_rank(&scores, 0.50),
    });
    Some(Comparison {
        compared,
        exact_matches,
        similarity,
    })
}

/// The `q` quantile of sorted, non-empty `sorted` by nearest rank.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An output's set of words: lowercased, split on every character that is not alphanumeric,
/// each hashed to 32 bits (FNV-1a), sorted and deduplicated; the smallest
/// [`MAX_ROW_TOKENS`] hashes are kept.
pub fn token_set(text: &str) -> Vec<u32> {
    let mut set: Vec<u32> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(word_hash)
        .collect();
    set.sort_unstable();
    set.dedup();
    set.truncate(MAX_ROW_TOKENS);
    set
}

/// FNV-1a over the word's lowercase UTF-8, without allocating: the same in every process.
fn word_hash(word: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut buf = [0u8; 4];
    for c in word.chars().flat_map(char::to_lowercase) {
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Jaccard similarity |A ∩ B| / |A ∪ B| of two token sets from [`token_set`]; two empty
/// outputs are identical (1). When either set was capped at [`MAX_ROW_TOKENS`], the
/// bottom-k estimate: the share of the union's smallest `MAX_ROW_TOKENS` hashes found in
/// both (every hash below each set's cap is known, so this is the standard MinHash
/// estimator).
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let limit = if a.len() >= MAX_ROW_TOKENS || b.len() >= MAX_ROW_TOKENS {
        MAX_ROW_TOKENS
    } else {
        usize::MAX
    };
    let (mut i, mut j, mut union, mut both) = (0, 0, 0usize, 0usize);
    while union < limit {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                both += 1;
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => i += 1,
            (Some(_), Some(_)) | (None, Some(_)) => j += 1,
            (Some(_), None) => i += 1,
            (None, None) => break,
        }
        union += 1;
    }
    both as f64 / union as f64
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
