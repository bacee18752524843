//! Lossless histograms in report files: HdrHistogram's V2 compressed (deflate) serialization,
//! base64-encoded, saved next to the percentiles so that segment reports can be added together
//! (`loadchain merge`) without the loss that averaging percentiles would cause.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use thiserror::Error;

/// A saved histogram that does not decode.
#[derive(Debug, Error)]
pub enum HistogramError {
    /// Not base64.
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not an HdrHistogram V2 (deflate) payload.
    #[error("histogram does not decode: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
}

/// Encodes a histogram (None if the serializer fails, which it does only on I/O to a Vec,
/// i.e. never in practice: the report then just lacks the field).
pub fn encode(hist: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .ok()?;
    Some(STANDARD.encode(bytes))
}

/// Decodes what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = STANDARD.decode(text.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{LatencyRecorder, LatencySummary};
    use std::time::Duration;

    #[test]
    fn histogram_round_trips_exactly_through_report_json() {
        let mut r = LatencyRecorder::new();
        for i in 0..20_000u64 {
            // Spread over 6 orders of magnitude, with repeats, so every bucket kind is used.
            r.record(Duration::from_micros(1 + (i * i * 7919) % 3_000_000_000));
        }
        let summary = r.summary();
        // The same serializer as report.json and summary.json.
        let json = serde_json::to_string_pretty(&summary).unwrap();
        let back: LatencySummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, summary);
        let hist = decode(back.hdr.as_deref().unwrap()).unwrap();
        assert_eq!(&hist, r.histogram());
        let original: Vec<_> = r
            .histogram()
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let decoded: Vec<_> = hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(decoded, original);
        assert_eq!(hist.len(), 20_000);
    }

    #[test]
    fn empty_summary_has_no_histogram_and_garbage_is_refused() {
        assert_eq!(LatencyRecorder::new().summary().hdr, None);
        assert!(decode("not base64!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }
}
