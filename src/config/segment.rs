//! `--segment i/n` applied to checked settings: the sweep's sizes, limits and rate caps, and
//! the run's manifest rows, cut down to this segment's share (see [`crate::segment`]).

use super::ConfigError;
use crate::manifest::Manifest;
use crate::segment::{Segment, SegmentError};

fn segment_error(e: SegmentError) -> ConfigError {
    super::flag("--segment", e.to_string())
}

/// Each size and limit becomes this segment's share of it; a share of 0 is refused (a
/// segment with nothing to do would report an empty run the merge could not line up).
pub fn split_counts(
    seg: Segment,
    what: &'static str,
    counts: &[usize],
) -> Result<Vec<usize>, ConfigError> {
    let shares = counts
        .iter()
        .map(|&c| seg.nonzero_share(what, c).map_err(segment_error))
        .collect::<Result<Vec<_>, _>>()?;
    // The counts come sorted and distinct; two that share the same cut would run twice.
    if let Some(w) = shares.windows(2).position(|w| w[0] == w[1]) {
        return Err(super::flag(
            "--segment",
            format!(
                "{what}s {} and {} give segment {seg} the same share ({}); space them at least {} apart",
                counts[w],
                counts[w + 1],
                shares[w],
                seg.count
            ),
        ));
    }
    Ok(shares)
}

/// A client-side rate cap divided the same way (never below 1 per minute).
pub fn split_rate(seg: Segment, rate: Option<u32>) -> Option<u32> {
    rate.map(|r| seg.rate_share(r))
}

/// Keeps the rows whose index (in file order) falls in this segment's share.
pub fn split_rows(seg: Segment, manifest: &mut Manifest) {
    let total = manifest.len();
    manifest.retain(|index| seg.owns(index, total));
}
