//! A concurrency limit on the command line: a count, or `auto` (the adaptive controller).

use super::parse::parse_count;

/// One entry of `--limits` (sweep) or the value of `--limit` (run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitArg {
    /// At most this many chains in flight.
    Fixed(usize),
    /// Find the limit as the run goes: see `runner::AdaptiveLimit`.
    Auto,
}

/// Parses `auto` or a count (`10`, `1k`).
pub fn parse_limit(s: &str) -> Result<LimitArg, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(LimitArg::Auto);
    }
    parse_count(s)
        .map(LimitArg::Fixed)
        .map_err(|e| format!("{e} (or `auto`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_count_or_auto() {
        assert_eq!(parse_limit("auto"), Ok(LimitArg::Auto));
        assert_eq!(parse_limit("AUTO"), Ok(LimitArg::Auto));
        assert_eq!(parse_limit("1k"), Ok(LimitArg::Fixed(1000)));
        assert!(parse_limit("0").unwrap_err().contains("auto"));
    }
}
