//! Number and duration formatting shared by every human-readable output (terminal, Markdown,
//! chart labels), so the same figure reads the same everywhere.
//!
//! Machine formats (CSV, JSON, `.hgrm`) do not use this: they keep plain numbers with units in
//! their column names.

/// A duration in the course's style: `41 min 40 s`, `42.1 s`, `2.50 s`, `850 ms`, `8.5 ms`.
///
/// Precision shrinks as the value grows so a table column stays about 3 significant digits.
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "–".to_string();
    }
    // Round at each precision first, so 999.7 ms becomes `1.00 s`, not `1000 ms`.
    if ms < 1.0 {
        return format!("{ms:.2} ms");
    }
    if ms < 9.95 {
        return format!("{ms:.1} ms");
    }
    if ms.round() < 1000.0 {
        return format!("{ms:.0} ms");
    }
    let s = ms / 1000.0;
    if s < 9.995 {
        return format!("{s:.2} s");
    }
    if s < 59.95 {
        return format!("{s:.1} s");
    }
    let total_s = s.round() as u64;
    if total_s < 3600 {
        let (m, s) = (total_s / 60, total_s % 60);
        return if s == 0 {
            format!("{m} min")
        } else {
            format!("{m} min {s} s")
        };
    }
    let total_min = (total_s as f64 / 60.0).round() as u64;
    let (h, m) = (total_min / 60, total_min % 60);
    if m == 0 {
        format!("{h} h")
    } else {
        format!("{h} h {m} min")
    }
}

/// A latency held in microseconds, formatted like [`duration_ms`].
pub fn latency_us(us: u64) -> String {
    duration_ms(us as f64 / 1000.0)
}

/// A signed difference in milliseconds, e.g. `+1.6 ms`, `-12 ms`.
pub fn delta_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".to_string();
    }
    if ms.abs() < 9.95 {
        format!("{ms:+.1} ms")
    } else if ms.abs() < 9995.0 {
        format!("{ms:+.0} ms")
    } else {
        format!("{:+.1} s", ms / 1000.0)
    }
}

/// Relative change from `a` to `b` in percent, e.g. `+12.3 %`, `-4.0 %`; `–` when `a` is 0.
pub fn change_pct(a: f64, b: f64) -> String {
    if a <= 0.0 || !a.is_finite() || !b.is_finite() {
        return "–".to_string();
    }
    format!("{:+.1} %", (b - a) / a * 100.0)
}

/// A speedup factor: `×4.9`, `×12`.
pub fn speedup(x: f64) -> String {
    if x < 9.95 {
        format!("×{x:.1}")
    } else {
        format!("×{x:.0}")
    }
}

/// A ratio in 0..=1 as a percentage: `87 %`.
pub fn percent(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// The course table's column name for a limit: `sequential` for 1, `5 concurrent` otherwise.
pub fn limit_header(limit: usize) -> String {
    if limit == 1 {
        "sequential".to_string()
    } else {
        format!("{limit} concurrent")
    }
}

/// The word for a pooling mode in prose and legends.
pub fn pooling_word(pooling: crate::record::Pooling) -> &'static str {
    match pooling {
        crate::record::Pooling::On => "pooled",
        crate::record::Pooling::Off => "unpooled",
    }
}

/// An optional count, `–` when unknown.
pub fn opt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_course_table() {
        assert_eq!(duration_ms(2_500_000.0), "41 min 40 s");
        assert_eq!(duration_ms(75_000.0), "1 min 15 s");
        assert_eq!(duration_ms(300_000.0), "5 min");
        assert_eq!(duration_ms(42_130.0), "42.1 s");
        assert_eq!(duration_ms(2_500.0), "2.50 s");
        assert_eq!(duration_ms(850.0), "850 ms");
        assert_eq!(duration_ms(8.5), "8.5 ms");
        assert_eq!(duration_ms(0.25), "0.25 ms");
        assert_eq!(duration_ms(5_400_000.0), "1 h 30 min");
    }

    #[test]
    fn rounding_never_shows_a_unit_overflow() {
        assert_eq!(duration_ms(999.7), "1.00 s");
        assert_eq!(duration_ms(9_999.0), "10.0 s");
        assert_eq!(duration_ms(59_990.0), "1 min");
        assert_eq!(duration_ms(9.97), "10 ms");
    }

    #[test]
    fn changes_and_deltas_carry_a_sign() {
        assert_eq!(change_pct(100.0, 112.3), "+12.3 %");
        assert_eq!(change_pct(100.0, 96.0), "-4.0 %");
        assert_eq!(change_pct(0.0, 5.0), "–");
        assert_eq!(delta_ms(1.6), "+1.6 ms");
        assert_eq!(delta_ms(-12.0), "-12 ms");
    }

    #[test]
    fn limit_one_is_called_sequential() {
        assert_eq!(limit_header(1), "sequential");
        assert_eq!(limit_header(25), "25 concurrent");
        assert_eq!(speedup(4.93), "×4.9");
        assert_eq!(speedup(23.4), "×23");
    }
}
