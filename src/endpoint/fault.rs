//! What went wrong with a call, in words a user can act on: the error kind of a transport
//! failure, its message, the detail of an error body, and how long the server asked to wait.

use std::time::{Duration, SystemTime};

use crate::record::ErrorKind;

/// How long the server asked to wait: `retry-after-ms` (OpenAI, Azure) first, else
/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date in the past is 0.
pub(super) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(1e12)));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

pub(super) fn classify(e: &reqwest::Error) -> ErrorKind {
    if caused_locally(e) {
        ErrorKind::Local
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Body
    } else {
        // The connection opened, then what came back was not HTTP: garbage, too many
        // headers, closed or reset mid-headers, a request canceled because the connection
        // closed, an HTTP/2 frame error.
        ErrorKind::Protocol
    }
}

/// Out of file descriptors (EMFILE, ENFILE) or local ports: the machine, not the server.
pub(super) fn is_local_fault(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(23 | 24)) {
        return true;
    }
    e.kind() == std::io::ErrorKind::AddrNotAvailable
}

/// Whether an I/O error among `e`'s causes is a local fault: the same test for reqwest's
/// errors and hyper's.
pub(super) fn caused_locally(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(is_local_fault)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether `e` failed because the server's certificate did not verify (self-signed, expired,
/// another name): rustls's error among the causes, or inside the I/O errors that carry it
/// (an I/O error shows its inner error but does not list it as a source, and reqwest's
/// connector nests two).
pub(super) fn untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let mut inner = Some(c);
        while let Some(i) = inner {
            if matches!(
                i.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
            ) {
                return true;
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
        }
        cause = c.source();
    }
    false
}

/// The error with its causes on one line (reqwest's or hyper's); reqwest errors carry the
/// URL, never headers.
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// `HTTP 503: <error.message>` from an OpenAI-style error body, `HTTP 529:
/// overloaded_error: Overloaded` from Anthropic's (`"type":"error"`), or the first 200 bytes.
pub(super) fn error_message(status: u16, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            if v.get("type").and_then(|t| t.as_str()) == Some("error") {
                return Some(super::anthropic::error_detail(&v));
            }
            v.pointer("/error/message")?.as_str().map(str::to_string)
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.chars().take(200).collect::<String>()
        });
    format!("HTTP {status}: {}", detail.trim().replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_takes_ms_then_seconds_then_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let ms = headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(retry_after(&ms, now), Some(Duration::from_millis(1500)));
        let secs = headers(&[("retry-after", "999999")]);
        assert_eq!(retry_after(&secs, now), Some(Duration::from_secs(999_999)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(3));
        let dated = headers(&[("retry-after", &date)]);
        assert_eq!(retry_after(&dated, now), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let past = headers(&[("retry-after", &past)]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn error_bodies_give_their_message_or_their_start() {
        let body = br#"{"error":{"message":"Rate limit reached\nfor gpt-4o"}}"#;
        assert_eq!(
            error_message(429, body),
            "HTTP 429: Rate limit reached for gpt-4o"
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            error_message(529, anthropic),
            "HTTP 529: overloaded_error: Overloaded"
        );
        let long = "x".repeat(500);
        assert_eq!(
            error_message(502, long.as_bytes()).len(),
            "HTTP 502: ".len() + 200
        );
    }
}
