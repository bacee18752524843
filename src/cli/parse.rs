//! Value parsers for flags: counts with `k`/`m` suffixes, byte sizes, positive durations.

use std::time::Duration;

use loadchain_mock::parse_duration;

/// A positive count; accepts `k`/`m` suffixes (10k = 10,000).
pub fn parse_count(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000),
        Some((i, 'm' | 'M')) => (&t[..i], 1_000_000),
        _ => (t, 1),
    };
    let v: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    let v = v
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err("must be at least 1".to_string());
    }
    Ok(v)
}

/// A duration above zero (timeouts: zero would fail every call).
pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be above 0".to_string()),
        d => Ok(d),
    }
}

/// A byte size: a plain count, or a number with B, kB/KB, MB, GB (powers of 1000) or
/// KiB, MiB, GiB (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "kB" | "KB" | "k" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use B, kB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1048576, 64KiB, 16MiB)"))?;
    let bytes = v * mult as f64;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err("must be at least 1 byte".to_string());
    }
    Ok(bytes as u64)
}

pub(crate) fn parse_count_u32(s: &str) -> Result<u32, String> {
    let v = parse_count(s)?;
    u32::try_from(v).map_err(|_| format!("{s:?} is too large"))
}

/// A chain arrival rate per second: a positive finite number (`2.5`, `1000`).
pub(crate) fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a positive rate (arrivals per second)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_suffixes_and_reject_zero() {
        assert_eq!(parse_count("10k"), Ok(10_000));
        assert_eq!(parse_count("25"), Ok(25));
        assert!(parse_count("0").is_err());
        assert!(parse_count("").is_err());
        assert!(parse_count("five").is_err());
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1.5kB"), Ok(1_500));
        assert!(parse_size("0").is_err());
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("MiB").is_err());
    }
}
