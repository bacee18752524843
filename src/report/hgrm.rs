//! HdrHistogram percentile-distribution files (`.hgrm`), the text layout of Java HdrHistogram's
//! `outputPercentileDistribution`, so existing tools (HdrHistogram's plotFiles.html,
//! HistogramLogAnalyzer) plot our call latencies.
//!
//! Values are milliseconds (value unit scaling ratio 1000 on the µs histogram) with 3 decimals,
//! matching the histogram's 3 significant digits. The rows come from the run's stored
//! distribution; the footer's mean and max are exact, its standard deviation is estimated from
//! the rows (report.json does not keep the raw samples), and its bucket counts are those of the
//! recorder's fixed layout (1 µs to 1 h, 3 significant digits).

use std::fmt::Write;

use crate::metrics::LatencyRecorder;
use crate::sweep::RunSummary;

/// The file name of a run's distribution inside the report's `hgrm/` folder.
pub fn file_name(run: &RunSummary) -> String {
    format!(
        "calls-n{}-c{}-pool{}.hgrm",
        run.key.size,
        run.key.limit,
        run.key.pooling.as_str()
    )
}

/// The `.hgrm` text of a run's successful-call latency.
pub fn render(run: &RunSummary) -> String {
    const SCALE: f64 = 1000.0;
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for row in &run.call_distribution {
        let value = row.value_us as f64 / SCALE;
        if row.percentile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {:2.12} {:10} {:14.2}",
                row.percentile,
                row.total_count,
                1.0 / (1.0 - row.percentile)
            );
        } else {
            let _ = writeln!(
                out,
                "{value:12.3} {:2.12} {:10}",
                row.percentile, row.total_count
            );
        }
    }
    let lat = &run.call_latency;
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        lat.mean_us / SCALE,
        std_dev_us(run) / SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        lat.max_us as f64 / SCALE,
        lat.count
    );
    // The layout is fixed by the recorder's bounds and precision, not stored per run.
    let (buckets, sub_buckets) = LatencyRecorder::new().layout();
    let _ = writeln!(
        out,
        "#[Buckets = {buckets:12}, SubBuckets     = {sub_buckets:12}]"
    );
    out
}

/// Standard deviation estimated from the distribution rows: each row's new values are taken
/// to sit at the row's value (the histogram's own resolution at the tail, coarser below).
fn std_dev_us(run: &RunSummary) -> f64 {
    let mean = run.call_latency.mean_us;
    let mut prev = 0u64;
    let (mut sum_sq, mut n) = (0.0, 0u64);
    for row in &run.call_distribution {
        let added = row.total_count.saturating_sub(prev);
        prev = row.total_count.max(prev);
        let d = row.value_us as f64 - mean;
        sum_sq += d * d * added as f64;
        n += added;
    }
    if n == 0 {
        0.0
    } else {
        (sum_sq / n as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::fixture;

    #[test]
    fn hgrm_has_the_standard_header_rows_and_footer() {
        let report = fixture();
        let run = &report.runs[0];
        let text = render(run);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        let rows: Vec<&str> = text
            .lines()
            .skip(2)
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(rows.len(), run.call_distribution.len());
        // A middle row has four columns; the 100 % row has three, like Java's output.
        assert_eq!(rows[0].split_whitespace().count(), 4);
        let last: Vec<&str> = rows[rows.len() - 1].split_whitespace().collect();
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last.len(), 3);
        assert_eq!(last[2], run.call_latency.count.to_string());
        assert!(text.contains("#[Mean    = "));
        assert!(text.contains(&format!("Total count    = {:12}]", run.call_latency.count)));
    }

    #[test]
    fn hgrm_footer_ends_with_java_hdrhistograms_three_lines() {
        let report = fixture();
        let text = render(&report.runs[0]);
        let footer: Vec<&str> = text.lines().rev().take(3).collect();
        assert!(footer[2].starts_with("#[Mean    = "), "{}", footer[2]);
        assert!(footer[1].starts_with("#[Max     = "), "{}", footer[1]);
        // 3 significant digits: unit resolution up to 2,000 needs 2,048 sub-buckets; doubling
        // from 2,048 µs reaches the 1 h ceiling (3.6e9 µs) after 21 more buckets, so 22.
        assert_eq!(
            footer[0],
            "#[Buckets =           22, SubBuckets     =         2048]"
        );
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn hgrm_values_are_milliseconds_with_three_decimals() {
        let report = fixture();
        let run = &report.runs[0];
        let text = render(run);
        let first = text.lines().nth(2).unwrap_or_default();
        let value: f64 = first.split_whitespace().next().unwrap().parse().unwrap();
        let expected = run.call_distribution[0].value_us as f64 / 1000.0;
        assert!((value - expected).abs() < 0.0005, "{value} vs {expected}");
        assert_eq!(first[..12].trim().split('.').nth(1).map(str::len), Some(3));
    }

    #[test]
    fn file_name_names_size_limit_and_pooling() {
        let report = fixture();
        assert_eq!(file_name(&report.runs[0]), "calls-n10-c1-poolon.hgrm");
    }
}
