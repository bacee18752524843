//! The quota a server announces in its response headers, in every provider form loadchain
//! knows, so the pacer can slow down before a 429 rather than after it.
//!
//! - OpenAI (and the mock): `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the
//!   reset as a Go duration (`6m0s`, `1s`, `250ms`, `1.5s`) counted from now.
//! - Anthropic: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`, the reset
//!   as an RFC 3339 time (`2024-04-15T17:26:00Z`).
//! - `retry-after-ms` / `Retry-After` (read by the client already, kept with the rest).
//!
//! A value that does not parse is ignored on its own (the other headers still count): a
//! malformed header must never stop a run nor make the pacer wait forever.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// One quota as a response described it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaState {
    /// The quota per minute, when the server said.
    pub limit: Option<u64>,
    /// What is left of it now.
    pub remaining: u64,
    /// Time until the quota is whole again (bucket) or its window ends, when said.
    pub reset: Option<Duration>,
}

/// The quotas of one response: requests and tokens, each when announced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QuotaHeaders {
    /// The requests quota.
    pub requests: Option<QuotaState>,
    /// The tokens quota.
    pub tokens: Option<QuotaState>,
}

impl QuotaHeaders {
    /// Reads every known form from `headers`; `now` turns Anthropic's reset times into waits.
    /// None when the response announced no quota at all.
    pub fn parse(headers: &HeaderMap, now: SystemTime) -> Option<QuotaHeaders> {
        let q = QuotaHeaders {
            requests: openai(headers, "requests").or_else(|| anthropic(headers, "requests", now)),
            tokens: openai(headers, "tokens").or_else(|| anthropic(headers, "tokens", now)),
        };
        (q.requests.is_some() || q.tokens.is_some()).then_some(q)
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn count(headers: &HeaderMap, name: &str) -> Option<u64> {
    text(headers, name)?.parse().ok()
}

fn openai(headers: &HeaderMap, kind: &str) -> Option<QuotaState> {
    Some(QuotaState {
        remaining: count(headers, &format!("x-ratelimit-remaining-{kind}"))?,
        limit: count(headers, &format!("x-ratelimit-limit-{kind}")),
        reset: text(headers, &format!("x-ratelimit-reset-{kind}")).and_then(parse_go_duration),
    })
}

fn anthropic(headers: &HeaderMap, kind: &str, now: SystemTime) -> Option<QuotaState> {
    let name = |field: &str| format!("anthropic-ratelimit-{kind}-{field}");
    Some(QuotaState {
        remaining: count(headers, &name("remaining"))?,
        limit: count(headers, &name("limit")),
        reset: text(headers, &name("reset"))
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)),
    })
}

/// A Go duration as OpenAI writes resets: `6m0s`, `1s`, `1.5s`, `250ms`, `2h1m`, `20us`.
/// None for anything else (negative, no unit, unknown unit, empty).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total.is_finite() && total < 1e9).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn go_durations_in_every_form_openai_sends() {
        let ms = Duration::from_millis;
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("1s"), Some(ms(1000)));
        assert_eq!(parse_go_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(ms(1500)));
        assert_eq!(parse_go_duration("1m1.25s"), Some(ms(61_250)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("20us"), Some(Duration::from_micros(20)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "-1s", "5", "1x", "s", "1..5s", "soon", "1e9h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn openai_headers_for_both_quotas() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "600"),
            ("x-ratelimit-remaining-requests", "12"),
            ("x-ratelimit-reset-requests", "1m0s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-tokens", "400ms"),
        ]);
        let q = QuotaHeaders::parse(&h, SystemTime::now()).unwrap();
        assert_eq!(
            q.requests,
            Some(QuotaState {
                limit: Some(600),
                remaining: 12,
                reset: Some(Duration::from_secs(60)),
            })
        );
        let t = q.tokens.unwrap();
        assert_eq!((t.limit, t.remaining), (Some(150_000), 149_000));
        assert_eq!(t.reset, Some(Duration::from_millis(400)));
    }

    #[test]
    fn anthropic_headers_with_rfc3339_resets() {
        let now = humantime::parse_rfc3339("2024-04-15T17:25:30Z").unwrap();
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2024-04-15T17:26:00Z"),
            ("anthropic-ratelimit-tokens-limit", "40000"),
            ("anthropic-ratelimit-tokens-remaining", "39000"),
            // Already past: the quota is whole again now.
            ("anthropic-ratelimit-tokens-reset", "2024-04-15T17:25:00Z"),
        ]);
        let q = QuotaHeaders::parse(&h, now).unwrap();
        let r = q.requests.unwrap();
        assert_eq!((r.limit, r.remaining), (Some(50), 3));
        assert_eq!(r.reset, Some(Duration::from_secs(30)));
        assert_eq!(q.tokens.unwrap().reset, Some(Duration::ZERO));
    }

    #[test]
    fn bad_values_are_ignored_one_by_one() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-remaining-requests", "7"),
            ("x-ratelimit-reset-requests", "-3s"),
            ("x-ratelimit-remaining-tokens", "-5"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("anthropic-ratelimit-tokens-remaining", "12.5"),
        ]);
        let q = QuotaHeaders::parse(&h, SystemTime::now()).unwrap();
        assert_eq!(
            q.requests,
            Some(QuotaState {
                limit: None,
                remaining: 7,
                reset: None
            })
        );
        assert_eq!(q.tokens, None, "no usable remaining count");
        let bad_anthropic_time = headers(&[
            ("anthropic-ratelimit-requests-remaining", "4"),
            ("anthropic-ratelimit-requests-reset", "tomorrow"),
        ]);
        let q = QuotaHeaders::parse(&bad_anthropic_time, SystemTime::now()).unwrap();
        assert_eq!(q.requests.unwrap().reset, None);
        assert_eq!(
            QuotaHeaders::parse(&HeaderMap::new(), SystemTime::now()),
            None
        );
    }
}
