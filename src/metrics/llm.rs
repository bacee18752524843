//! LLM serving metrics of one run, with the definitions the README publishes:
//!
//! - TTFT: send to the first chunk with content (kept by the recorder, see `ttft`).
//! - ITL: every gap between consecutive content chunks of a successful streamed call, as
//!   the client read them (chunks read together have a gap of 0).
//! - TPOT per request: (e2e − TTFT) / (output tokens − 1), for calls with 2+ tokens.
//! - Output tokens/s per request: tokens / e2e, averaged over successful calls with tokens
//!   (the aggregate, tokens / wall time, is `output_tokens_per_s`).
//! - Tokens: the server's `usage.completion_tokens` when it sent them (streams ask for it
//!   with `stream_options.include_usage`), else one per content chunk; `tokens_from` says
//!   which.
//! - With `--slo`: `slo_attainment` and `goodput` (see [`crate::slo`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DistributionRow, LatencyRecorder, LatencySummary};
use crate::endpoint::sse::StreamStats;
use crate::record::CallRecord;
use crate::slo::{RequestTiming, Slo, attainment};

/// Where a run's output token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens` on every streamed call.
    Usage,
    /// Content chunks counted, one token each (the server sent no usage).
    Chunks,
    /// Some calls had usage, some did not.
    Mixed,
}

impl TokenSource {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Chunks => "chunks",
            TokenSource::Mixed => "mixed",
        }
    }
}

/// The LLM figures of one run; flattened into the run's JSON, every field absent when the
/// run has no such figure (not streamed, no `--slo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmSummary {
    /// Inter-token latency: every gap between consecutive content chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl: Option<LatencySummary>,
    /// Time per output token, one value per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot: Option<LatencySummary>,
    /// Where streamed calls' token counts came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_from: Option<TokenSource>,
    /// Mean over successful calls with tokens of tokens / e2e.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_output_tokens_per_s: Option<f64>,
    /// The `--slo` objectives, canonical text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<String>,
    /// Share of requests (calls) meeting every objective, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_attainment: Option<f64>,
    /// Requests meeting every objective per second of wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
    /// TTFT percentile distribution, for ttft.png.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttft_distribution: Vec<DistributionRow>,
    /// ITL percentile distribution, for itl.png.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_distribution: Vec<DistributionRow>,
}

/// Gathers [`LlmSummary`] figures as calls finish (inside the recorder's lock).
#[derive(Debug)]
pub struct LlmFigures {
    slo: Option<Slo>,
    itl: LatencyRecorder,
    tpot: LatencyRecorder,
    usage_calls: u64,
    chunk_calls: u64,
    rate_sum: f64,
    rate_calls: u64,
    met: u64,
    judged: u64,
}

impl LlmFigures {
    /// Empty figures, judging calls against `slo` when given.
    pub fn new(slo: Option<Slo>) -> LlmFigures {
        LlmFigures {
            slo,
            itl: LatencyRecorder::new(),
            tpot: LatencyRecorder::new(),
            usage_calls: 0,
            chunk_calls: 0,
            rate_sum: 0.0,
            rate_calls: 0,
            met: 0,
            judged: 0,
        }
    }

    /// A successful streamed call's chunk timing (comes before its [`Self::call_done`]).
    pub fn stream_done(&mut self, call: &CallRecord, stream: &StreamStats) {
        let mut max_gap = 0u32;
        for &gap in &stream.gaps_us {
            self.itl.record(Duration::from_micros(u64::from(gap)));
            max_gap = max_gap.max(gap);
        }
        if stream.usage {
            self.usage_calls += 1;
        } else {
            self.chunk_calls += 1;
        }
        let tpot = tpot(call);
        if let Some(t) = tpot {
            self.tpot.record(t);
        }
        self.judge(RequestTiming {
            ok: true,
            e2e: call.latency,
            ttft: call.ttft,
            max_itl: Some(Duration::from_micros(u64::from(max_gap))),
            tpot,
        });
    }

    /// Any call. Calls that [`Self::stream_done`] saw (successful, with a first token) are
    /// judged there, with their chunk gaps; the rest here.
    pub fn call_done(&mut self, call: &CallRecord) {
        if call.error.is_none()
            && let Some(tokens) = call.tokens.filter(|&t| t > 0)
            && !call.latency.is_zero()
        {
            self.rate_sum += f64::from(tokens) / call.latency.as_secs_f64();
            self.rate_calls += 1;
        }
        if call.error.is_some() || call.ttft.is_none() {
            self.judge(RequestTiming {
                ok: call.error.is_none(),
                e2e: call.latency,
                ttft: call.ttft,
                max_itl: None,
                tpot: tpot(call),
            });
        }
    }

    fn judge(&mut self, request: RequestTiming) {
        if let Some(slo) = &self.slo {
            self.judged += 1;
            self.met += u64::from(slo.met(&request));
        }
    }

    /// The run's figures; `ttft` is the recorder's TTFT histogram, `wall` the run's wall time.
    pub fn summary(&self, ttft: &LatencyRecorder, wall: Duration) -> LlmSummary {
        let (attained, goodput) = attainment(self.met, self.judged, wall);
        let nonempty = |r: &LatencyRecorder| (!r.is_empty()).then(|| r.summary());
        LlmSummary {
            itl: nonempty(&self.itl),
            tpot: nonempty(&self.tpot),
            tokens_from: match (self.usage_calls, self.chunk_calls) {
                (0, 0) => None,
                (_, 0) => Some(TokenSource::Usage),
                (0, _) => Some(TokenSource::Chunks),
                _ => Some(TokenSource::Mixed),
            },
            request_output_tokens_per_s: (self.rate_calls > 0)
                .then(|| self.rate_sum / self.rate_calls as f64),
            slo: self.slo.map(|s| s.to_string()),
            slo_attainment: self.slo.and(attained),
            goodput: self.slo.map(|_| goodput),
            ttft_distribution: ttft.distribution(),
            itl_distribution: self.itl.distribution(),
        }
    }
}

/// (e2e − TTFT) / (output tokens − 1), for a successful call with a TTFT and 2+ tokens.
fn tpot(call: &CallRecord) -> Option<Duration> {
    let ttft = call.ttft?;
    let tokens = call.tokens.filter(|&t| t >= 2)?;
    (call.error.is_none()).then(|| call.latency.saturating_sub(ttft) / (tokens - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(latency_ms: u64, ttft_ms: Option<u64>, tokens: u32) -> CallRecord {
        CallRecord {
            row: 0,
            step: 0,
            pass: 0,
            try_no: 0,
            start: Duration::ZERO,
            latency: Duration::from_millis(latency_ms),
            status: Some(200),
            error: None,
            bytes: 0,
            tokens: Some(tokens),
            input_tokens: None,
            ttft: ttft_ms.map(Duration::from_millis),
            finish: Default::default(),
        }
    }

    #[test]
    fn tpot_itl_and_token_source_follow_their_definitions() {
        let mut f = LlmFigures::new(None);
        // 100 ms to the first token, then 20 tokens in 95 ms: TPOT 5 ms.
        let c = call(195, Some(100), 20);
        let stream = StreamStats {
            gaps_us: vec![5000; 19],
            content_chunks: 20,
            usage: true,
        };
        f.stream_done(&c, &stream);
        f.call_done(&c);
        let mut ttft = LatencyRecorder::new();
        ttft.record(Duration::from_millis(100));
        let s = f.summary(&ttft, Duration::from_secs(1));
        // Percentiles are within the histogram's 0.1 %.
        let near_5ms = |us: u64| (us as f64 - 5000.0).abs() <= 5.0;
        assert!(
            s.tpot.as_ref().is_some_and(|t| near_5ms(t.p50_us)),
            "{:?}",
            s.tpot
        );
        let itl = s.itl.unwrap();
        assert!(itl.count == 19 && near_5ms(itl.p50_us), "{itl:?}");
        assert_eq!(s.tokens_from, Some(TokenSource::Usage));
        let rate = s.request_output_tokens_per_s.unwrap();
        assert!((rate - 20.0 / 0.195).abs() < 1e-6, "{rate}");
        assert_eq!((s.slo, s.slo_attainment, s.goodput), (None, None, None));
        assert!(!s.ttft_distribution.is_empty());
    }

    #[test]
    fn goodput_counts_requests_meeting_every_objective() {
        let slo: Slo = "ttft<150ms,itl<10ms".parse().unwrap();
        let mut f = LlmFigures::new(Some(slo));
        let calm = StreamStats {
            gaps_us: vec![5000; 3],
            content_chunks: 4,
            usage: false,
        };
        let stall = StreamStats {
            gaps_us: vec![5000, 40_000, 5000],
            ..calm.clone()
        };
        for (c, s) in [
            (call(120, Some(100), 4), &calm),  // meets both
            (call(160, Some(100), 4), &stall), // one 40 ms gap
            (call(250, Some(200), 4), &calm),  // TTFT too slow
        ] {
            f.stream_done(&c, s);
            f.call_done(&c);
        }
        // A failed call counts as a request that missed.
        let mut failed = call(50, None, 0);
        failed.error = Some(crate::record::ErrorKind::ServerError);
        f.call_done(&failed);
        let s = f.summary(&LatencyRecorder::new(), Duration::from_millis(500));
        assert_eq!(s.slo_attainment, Some(0.25));
        assert_eq!(s.goodput, Some(2.0)); // 1 request in 0.5 s
        assert_eq!(s.tokens_from, Some(TokenSource::Chunks));
        assert_eq!(s.slo.as_deref(), Some("ttft<150ms,itl<10ms"));
    }
}
