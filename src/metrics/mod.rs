//! Latency histograms and the summaries every report is built from.
//!
//! Method: latencies are recorded in microseconds into an HdrHistogram with 3 significant
//! digits (relative error under 0.1 %), range 1 µs to 1 h. Percentiles come from the histogram;
//! min, max and mean are exact. The distribution is kept as HdrHistogram's standard
//! percentile rows, so `.hgrm` files and latency curves can be re-rendered from report.json.

mod llm;
pub mod lossless;
pub mod quality;
mod recorder;
mod run;
mod timeline;

pub use llm::{LlmFigures, LlmSummary, TokenSource};
pub use recorder::{RunRecorder, count_differences, output_hash};
pub use run::RunSummary;
pub use timeline::Timeline;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::record::ErrorKind;

/// Highest latency the histogram tracks (1 hour, in µs); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

/// Records latencies; one per run and kind (call or chain).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder with 3 significant digits.
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_US, 3).expect("static bounds are valid");
        LatencyRecorder { hist }
    }

    /// Records one latency, clamped to [1 µs, 1 h].
    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_US);
        self.hist.saturating_record(us);
    }

    /// The histogram's layout, `(buckets, sub-buckets per bucket)`: the same for every
    /// recorder (fixed bounds and precision), and what a `.hgrm` footer reports.
    pub fn layout(&self) -> (u8, u32) {
        let buckets = self.hist.buckets();
        // The crate exposes no sub-bucket count; its counts array holds
        // (buckets + 1) × sub_buckets / 2 slots, the layout every HdrHistogram shares.
        let slots = self.hist.distinct_values() as u64;
        let sub_buckets = 2 * slots / (u64::from(buckets) + 1);
        (buckets, u32::try_from(sub_buckets).unwrap_or(u32::MAX))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The summary figures (all zero when empty).
    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.hist.len(),
            min_us: self.hist.min(),
            mean_us: self.hist.mean(),
            p50_us: self.quantile(0.50),
            p90_us: self.quantile(0.90),
            p99_us: self.quantile(0.99),
            max_us: self.hist.max(),
            hdr: lossless::encode(&self.hist),
        }
    }

    /// The value at quantile `q`, see [`quantile`].
    fn quantile(&self, q: f64) -> u64 {
        quantile(&self.hist, q)
    }

    /// A recorder holding `hist` (decoded from a report, or added up by `merge`).
    pub fn from_histogram(hist: Histogram<u64>) -> Self {
        LatencyRecorder { hist }
    }

    /// The recorded histogram itself, for merging and exact round-trips.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The percentile distribution, as in HdrHistogram's `outputPercentileDistribution`
    /// with 5 ticks per half distance.
    pub fn distribution(&self) -> Vec<DistributionRow> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        self.hist
            .iter_quantiles(5)
            .map(|v| DistributionRow {
                value_us: self.hist.highest_equivalent(v.value_iterated_to()),
                percentile: v.quantile_iterated_to(),
                total_count: v.count_since_last_iteration(),
            })
            .scan(0u64, |total, mut row| {
                *total += row.total_count;
                row.total_count = *total;
                Some(row)
            })
            .collect()
    }
}

/// The value at quantile `q` of `hist`, interpolated inside its bucket. HdrHistogram's own
/// answer is the bucket's top: at 3 significant digits a 50 ms value sits in a 32 µs bucket,
/// so every percentile read up to 32 µs high, more than the difference between two good
/// clients. Here the samples of the bucket that holds the quantile's rank are taken as spread
/// evenly across it (as Prometheus reads its buckets); a bucket of one sample gives its middle,
/// and below 2,048 µs, where buckets are 1 µs wide, the value is exact.
pub fn quantile(hist: &Histogram<u64>, q: f64) -> u64 {
    let total = hist.len();
    if total == 0 {
        return 0;
    }
    // The rank HdrHistogram's value_at_quantile looks for.
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut below = 0u64;
    for v in hist.iter_recorded() {
        let count = v.count_at_value();
        if below + count >= rank {
            let top = v.value_iterated_to();
            let low = hist.lowest_equivalent(top);
            let width = (top - low + 1) as f64;
            let within = ((rank - below) as f64 - 0.5) / count as f64;
            return low + (within * width) as u64;
        }
        below += count;
    }
    hist.max()
}

/// Latency figures of one run, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values recorded.
    pub count: u64,
    /// Smallest value.
    pub min_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest value.
    pub max_us: u64,
    /// The whole histogram, lossless (HdrHistogram V2 deflate, base64): what `merge` adds up.
    /// Absent when empty and in reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<String>,
}

/// Call latency of one chain step, so a report shows which step dominates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLatency {
    /// The step's name (`research`, `write`, …).
    pub step: String,
    /// Latency of the step's successful calls.
    pub latency: LatencySummary,
}

/// One row of a percentile distribution (HdrHistogram `.hgrm` layout).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DistributionRow {
    /// Latency at this percentile, µs.
    pub value_us: u64,
    /// Fraction of values at or below `value_us`, 0..=1.
    pub percentile: f64,
    /// Number of values at or below `value_us`.
    pub total_count: u64,
}

/// Failed calls counted per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// HTTP 429 answers.
    pub rate_limited: u64,
    /// HTTP 5xx answers.
    pub server_error: u64,
    /// HTTP 4xx answers other than 429.
    pub client_error: u64,
    /// Calls that hit the per-call timeout.
    pub timeout: u64,
    /// Connections that could not be made.
    pub connect: u64,
    /// Bodies cut short or unreadable.
    pub body: u64,
    /// Bodies that were not the expected JSON.
    pub decode: u64,
    /// 3xx answers not followed.
    #[serde(default)]
    pub redirect: u64,
    /// Responses that were not valid HTTP.
    #[serde(default)]
    pub protocol: u64,
    /// Faults on this machine (out of file descriptors).
    #[serde(default)]
    pub local: u64,
}

impl ErrorCounts {
    /// Counts one failure.
    pub fn add(&mut self, kind: ErrorKind) {
        *self.slot(kind) += 1;
    }

    /// The count for one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::RateLimited => self.rate_limited,
            ErrorKind::ServerError => self.server_error,
            ErrorKind::ClientError => self.client_error,
            ErrorKind::Timeout => self.timeout,
            ErrorKind::Connect => self.connect,
            ErrorKind::Body => self.body,
            ErrorKind::Decode => self.decode,
            ErrorKind::Redirect => self.redirect,
            ErrorKind::Protocol => self.protocol,
            ErrorKind::Local => self.local,
        }
    }

    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::RateLimited => &mut self.rate_limited,
            ErrorKind::ServerError => &mut self.server_error,
            ErrorKind::ClientError => &mut self.client_error,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Body => &mut self.body,
            ErrorKind::Decode => &mut self.decode,
            ErrorKind::Redirect => &mut self.redirect,
            ErrorKind::Protocol => &mut self.protocol,
            ErrorKind::Local => &mut self.local,
        }
    }

    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|k| self.get(*k)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_read_inside_their_bucket() {
        let mut hist = LatencyRecorder::new().histogram().clone();
        // 50,000..51,999 µs, one sample each: 32 µs buckets, exact p50 50,999, p99 51,979.
        for v in 50_000..52_000 {
            hist.record(v).unwrap();
        }
        for (q, exact) in [(0.5, 50_999u64), (0.9, 51_799), (0.99, 51_979)] {
            let got = quantile(&hist, q);
            assert!(got.abs_diff(exact) <= 1, "q {q}: {got} vs {exact}");
            // HdrHistogram's own answer is the bucket's top.
            let top = hist.value_at_quantile(q);
            assert!(top >= exact && top - exact < 32, "q {q}: top {top}");
        }
        // One sample in a bucket: its middle; below 2,048 µs buckets are 1 µs: exact.
        let mut one = LatencyRecorder::new().histogram().clone();
        one.record(50_010).unwrap();
        let q = quantile(&one, 0.5);
        assert!(q == one.median_equivalent(50_010), "{q}");
        let mut small = LatencyRecorder::new().histogram().clone();
        for v in [700, 800, 900] {
            small.record(v).unwrap();
        }
        assert_eq!(quantile(&small, 0.5), 800);
        assert_eq!(
            quantile(&LatencyRecorder::new().histogram().clone(), 0.5),
            0
        );
    }

    #[test]
    fn summary_percentiles_match_recorded_values_within_precision() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=100u64 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.min_us, 1000);
        assert!((s.p50_us as f64 - 50_000.0).abs() <= 50.0, "{}", s.p50_us);
        assert!((s.p99_us as f64 - 99_000.0).abs() <= 99.0, "{}", s.p99_us);
        assert!((s.max_us as f64 - 100_000.0).abs() <= 100.0, "{}", s.max_us);
    }

    #[test]
    fn distribution_ends_at_full_count_and_is_monotonic() {
        let mut r = LatencyRecorder::new();
        for us in [100u64, 200, 300, 5000, 9000] {
            r.record(Duration::from_micros(us));
        }
        let d = r.distribution();
        assert_eq!(d.last().map(|x| x.total_count), Some(5));
        assert!(d.windows(2).all(|w| w[0].value_us <= w[1].value_us));
        assert!(d.windows(2).all(|w| w[0].percentile <= w[1].percentile));
    }

    #[test]
    fn error_counts_total_every_kind() {
        let mut e = ErrorCounts::default();
        for k in ErrorKind::ALL {
            e.add(k);
        }
        e.add(ErrorKind::Timeout);
        assert_eq!(e.total(), ErrorKind::ALL.len() as u64 + 1);
        assert_eq!(e.get(ErrorKind::Timeout), 2);
    }
}
