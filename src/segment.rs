//! Execution segments (`--segment i/n`): a deterministic split of one run's load over n
//! independent processes, with no coordinator. Segment i of n owns the half-open range
//! `[floor((i-1)·N/n), floor(i·N/n))` of any count N, so the n shares of N are disjoint, cover
//! every index exactly once and differ by at most one. The same arithmetic splits `run`'s rows
//! (by index), `sweep`'s batch sizes and concurrency limits, and the client-side rate caps, so
//! the union of the n segments is the single run's load. Also `--start-at`: every segment
//! sleeps until one wall-clock instant, so they start together.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One process's share: segment `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Segment {
    /// 1-based position, 1..=count.
    pub index: u32,
    /// How many segments the load is split into.
    pub count: u32,
}

/// A `--segment` or `--start-at` value that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SegmentError {
    /// Not `i/n` with 1 ≤ i ≤ n.
    #[error("'{0}' is not a segment: give i/n with 1 <= i <= n, e.g. 2/4")]
    Syntax(String),
    /// The share of some count would be empty (e.g. limit 2 split 4 ways).
    #[error(
        "{what} {total} split {count} ways leaves segment {index} nothing; use {what} >= {count} or fewer segments"
    )]
    Empty {
        /// Which count ("limit", "batch size", …).
        what: &'static str,
        /// The count being split.
        total: u64,
        /// The segment's index.
        index: u32,
        /// The number of segments.
        count: u32,
    },
    /// `--start-at` is not an RFC 3339 time.
    #[error("'{0}' is not an RFC 3339 time, e.g. 2026-11-28T09:00:00Z")]
    Time(String),
}

impl Segment {
    /// The whole load: what a run without `--segment` does.
    pub const WHOLE: Segment = Segment { index: 1, count: 1 };

    /// Builds segment `index` of `count`, checking 1 ≤ index ≤ count.
    pub fn new(index: u32, count: u32) -> Result<Segment, SegmentError> {
        if index == 0 || count == 0 || index > count {
            return Err(SegmentError::Syntax(format!("{index}/{count}")));
        }
        Ok(Segment { index, count })
    }

    /// True for 1/1.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// This segment's half-open range of the indices `0..total`.
    pub fn range(self, total: u64) -> Range<u64> {
        let at = |k: u32| (u128::from(total) * u128::from(k) / u128::from(self.count)) as u64;
        at(self.index - 1)..at(self.index)
    }

    /// How many of `total` units this segment takes (sums to `total` over all segments).
    pub fn share(self, total: u64) -> u64 {
        let r = self.range(total);
        r.end - r.start
    }

    /// The share of a `usize` count that must not come out empty (a batch size, a limit).
    pub fn nonzero_share(self, what: &'static str, total: usize) -> Result<usize, SegmentError> {
        let share = self.share(total as u64);
        if share == 0 {
            return Err(SegmentError::Empty {
                what,
                total: total as u64,
                index: self.index,
                count: self.count,
            });
        }
        Ok(usize::try_from(share).unwrap_or(usize::MAX))
    }

    /// The share of a rate cap (rpm/tpm); a cap is never divided down to 0, which would mean
    /// "never send": the smallest share is 1 per minute.
    pub fn rate_share(self, rate: u32) -> u32 {
        u32::try_from(self.share(u64::from(rate)).max(1)).unwrap_or(u32::MAX)
    }

    /// True if row `index` (0-based, in manifest order) belongs to this segment of `total`.
    pub fn owns(self, index: usize, total: usize) -> bool {
        self.range(total as u64).contains(&(index as u64))
    }

    /// True if the two segments of the same split share any index (same count and index), or
    /// if the splits differ (segments of different splits cannot be told apart safely).
    pub fn overlaps(self, other: Segment) -> bool {
        self.count != other.count || self.index == other.index
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    fn from_str(s: &str) -> Result<Segment, SegmentError> {
        let bad = || SegmentError::Syntax(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Segment::new(i, n).map_err(|_| bad())
    }
}

/// Parses an RFC 3339 time (`2026-11-28T09:00:00Z`, `…+02:00`, fractional seconds allowed).
pub fn parse_start_at(s: &str) -> Result<SystemTime, SegmentError> {
    humantime::parse_rfc3339_weak(s.trim())
        .ok()
        .or_else(|| offset_time(s.trim()))
        .ok_or_else(|| SegmentError::Time(s.to_string()))
}

/// humantime reads `Z` times only; this handles a `+hh:mm` / `-hh:mm` offset.
fn offset_time(s: &str) -> Option<SystemTime> {
    let cut = s.len().checked_sub(6)?;
    let (base, off) = s.split_at(cut);
    let sign = match off.as_bytes().first()? {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = off.get(1..)?.split_once(':')?;
    let secs = (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60) * sign;
    let utc = humantime::parse_rfc3339_weak(base).ok()?;
    let shift = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        utc.checked_sub(shift)
    } else {
        utc.checked_add(shift)
    }
}

/// How long to sleep from `now` until `at` (zero if `at` has passed: start at once).
pub fn wait_until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_row_exactly_once() {
        for count in 1..=16u32 {
            for total in [0u64, 1, 3, 7, 15, 17, 99, 101, 1001] {
                let mut seen = vec![0u32; total as usize];
                let mut sum = 0;
                for index in 1..=count {
                    let seg = Segment::new(index, count).unwrap();
                    for (row, times) in seen.iter_mut().enumerate() {
                        if seg.owns(row, total as usize) {
                            *times += 1;
                        }
                    }
                    let share = seg.share(total);
                    assert!(share.abs_diff(total / u64::from(count)) <= 1);
                    sum += share;
                }
                assert_eq!(sum, total, "shares of {total} over {count} add up");
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "{total} over {count}: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/4".parse::<Segment>(), Ok(Segment { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "4", "a/b", "1/2/3"] {
            assert!(bad.parse::<Segment>().is_err(), "{bad}");
        }
        assert_eq!(Segment::WHOLE.to_string(), "1/1");
    }

    #[test]
    fn empty_share_is_refused_and_rates_never_reach_zero() {
        let seg = Segment::new(1, 4).unwrap();
        assert!(seg.nonzero_share("limit", 2).is_err());
        assert_eq!(seg.nonzero_share("limit", 10), Ok(2));
        assert_eq!(seg.rate_share(2), 1);
        assert_eq!(Segment::new(4, 4).unwrap().rate_share(600), 150);
    }

    #[test]
    fn overlaps() {
        let a = Segment::new(1, 4).unwrap();
        assert!(a.overlaps(a));
        assert!(!a.overlaps(Segment::new(2, 4).unwrap()));
        assert!(a.overlaps(Segment::new(2, 3).unwrap()));
    }

    #[test]
    fn start_at_times() {
        let z = parse_start_at("2026-11-28T09:00:00Z").unwrap();
        let plus = parse_start_at("2026-11-28T11:00:00+02:00").unwrap();
        assert_eq!(z, plus);
        assert!(parse_start_at("tomorrow").is_err());
        assert_eq!(wait_until(z, plus + Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(
            wait_until(z + Duration::from_secs(3), z),
            Duration::from_secs(3)
        );
    }
}
