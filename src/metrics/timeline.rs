//! Calls in flight over a run, in fixed memory: a difference array over time buckets (+1 where
//! a call starts, −1 where it ends), whose running sum is the number of calls in flight at
//! each bucket boundary. When a run outlasts the buckets, neighbours merge and the width
//! doubles, so a run of any length keeps at most [`MAX_BUCKETS`] of them.

use std::time::Duration;

/// Buckets kept at most, whatever the run's length.
pub const MAX_BUCKETS: usize = 4096;

/// Width of a bucket at the start of a run.
const FIRST_WIDTH_US: u64 = 100;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Timeline {
    width_us: u64,
    deltas: Vec<i64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            width_us: FIRST_WIDTH_US,
            deltas: Vec::new(),
        }
    }
}

impl Timeline {
    /// One call in flight from `start` to `end` (offsets from the run's start). Order does not
    /// matter: calls arrive as they finish.
    pub fn record(&mut self, start: Duration, end: Duration) {
        let (start, end) = (start.as_micros() as u64, end.as_micros() as u64);
        while end / self.width_us >= MAX_BUCKETS as u64 {
            self.widen();
        }
        let last = (end / self.width_us) as usize;
        if self.deltas.len() <= last {
            self.deltas.resize(last + 1, 0);
        }
        self.deltas[(start / self.width_us) as usize] += 1;
        self.deltas[last] -= 1;
    }

    fn widen(&mut self) {
        let merged: Vec<i64> = self
            .deltas
            .chunks(2)
            .map(|pair| pair.iter().sum())
            .collect();
        self.deltas = merged;
        self.width_us *= 2;
    }

    /// Bucket width now, µs: the timeline's resolution.
    pub fn width(&self) -> Duration {
        Duration::from_micros(self.width_us)
    }

    /// `[t_ms, in_flight]` step points, at most `max_points` (each kept bucket's peak).
    pub fn points(&self, max_points: usize) -> Vec<[f64; 2]> {
        let mut points = Vec::with_capacity(self.deltas.len() + 1);
        points.push([0.0, 0.0]);
        let mut level = 0i64;
        for (b, d) in self.deltas.iter().enumerate() {
            level += d;
            // A call counts from the bucket after the one it started in: the level is exact
            // at each boundary.
            let t_ms = ((b as u64 + 1) * self.width_us) as f64 / 1000.0;
            match points.last_mut() {
                Some(last) if last[1] == level as f64 => {}
                _ => points.push([t_ms, level as f64]),
            }
        }
        downsample_peaks(points, max_points.max(2))
    }
}

fn downsample_peaks(points: Vec<[f64; 2]>, max_points: usize) -> Vec<[f64; 2]> {
    if points.len() <= max_points {
        return points;
    }
    let end = points.last().map_or(0.0, |p| p[0]);
    let buckets = max_points - 1;
    let width = end / buckets as f64;
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(max_points);
    for p in points {
        let b = ((p[0] / width) as usize).min(buckets - 1);
        let t = b as f64 * width;
        match out.last_mut() {
            Some(last) if last[0] == t => last[1] = last[1].max(p[1]),
            _ => out.push([t, p[1]]),
        }
    }
    out.push([end, 0.0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn overlapping_calls_count_together_and_the_line_ends_at_zero() {
        let mut t = Timeline::default();
        t.record(ms(0), ms(10));
        t.record(ms(5), ms(15));
        t.record(ms(20), ms(30));
        let p = t.points(100);
        let peak = p.iter().map(|p| p[1]).fold(0.0, f64::max);
        assert_eq!(peak, 2.0);
        assert_eq!(p.last().map(|p| p[1]), Some(0.0));
        // At 7 ms both of the first two are in flight; at 17 ms none; at 25 ms one.
        let at = |t_ms: f64| p.iter().rev().find(|q| q[0] <= t_ms).map(|q| q[1]);
        assert_eq!(at(7.0), Some(2.0));
        assert_eq!(at(17.0), Some(0.0));
        assert_eq!(at(25.0), Some(1.0));
    }

    #[test]
    fn memory_is_bounded_for_any_run_length_and_the_peak_survives() {
        let mut t = Timeline::default();
        // 300,000 calls, three at a time, 2 ms each, over 200 s: far past the first width.
        for i in 0..100_000u64 {
            for lane in 0..3 {
                let start = Duration::from_micros(i * 2_000 + lane * 10);
                t.record(start, start + ms(2));
            }
        }
        assert!(t.deltas.len() <= MAX_BUCKETS, "{}", t.deltas.len());
        assert!(t.width() >= ms(40), "{:?}", t.width());
        let p = t.points(400);
        assert!(p.len() <= 401, "{}", p.len());
        assert_eq!(p.iter().map(|p| p[1]).fold(0.0, f64::max), 3.0);
    }
}
