//! `-H 'Name: value'` as loadchain takes it: parsed, its value marked sensitive, and the
//! headers loadchain sets itself refused (framing, connection management, Host).

use reqwest::header::{HeaderName, HeaderValue};

use super::TargetError;

/// Checks `-H` values as [`Target::with_headers`](super::Target::with_headers) would take them, without a target: a
/// malformed header or one loadchain sets itself is refused even where no request is sent
/// (the embedded mock, `run --exec`), so a command line that works there works everywhere.
pub fn check_headers(headers: &[String]) -> Result<(), TargetError> {
    headers.iter().try_for_each(|h| parse(h).map(drop))
}

/// Why loadchain refuses header `name` from `-H`, when it does. Framing headers would
/// contradict the body loadchain frames (two Content-Lengths, or Transfer-Encoding beside
/// Content-Length: the request-smuggling shape servers answer with 400), connection headers
/// would fight its connection handling, and Host comes from --target.
fn reserved(name: &HeaderName) -> Option<&'static str> {
    use reqwest::header::{
        CONNECTION, CONTENT_LENGTH, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
    };
    let framing = "loadchain frames every request body itself (one Content-Length, from the body \
         it sends); a second framing header is the request-smuggling shape servers refuse";
    let connection = "a connection-level header: loadchain manages its connections itself \
         (keep-alive with --pooling)";
    if [CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
        Some(framing)
    } else if [CONNECTION, UPGRADE, TE, TRAILER].contains(name) || name == "keep-alive" {
        Some(connection)
    } else if name == HOST {
        Some("loadchain sends the Host of --target; put the host in the URL instead")
    } else {
        None
    }
}

pub(super) fn parse(h: &str) -> Result<(HeaderName, HeaderValue), TargetError> {
    let bad = |reason: &str| TargetError::BadHeader {
        header: redact(h),
        reason: reason.to_string(),
    };
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| bad("expected 'Name: value'"))?;
    let typed = name.trim();
    let name = HeaderName::from_bytes(typed.as_bytes()).map_err(|_| bad("invalid header name"))?;
    if let Some(reason) = reserved(&name) {
        return Err(TargetError::ReservedHeader {
            name: typed.to_string(),
            reason,
        });
    }
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad("invalid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// A header as it may appear in an error: the name only, since values often carry keys.
fn redact(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Target;
    use reqwest::Method;

    #[test]
    fn framing_connection_and_host_headers_are_refused_in_any_case() {
        for h in [
            "content-length: 5",
            "Transfer-Encoding: chunked",
            "HOST: x",
            "keep-alive: 1",
        ] {
            let err = Target::raw("http://h/", Method::POST)
                .unwrap()
                .with_headers(&[h.to_string()])
                .unwrap_err();
            assert!(
                matches!(err, TargetError::ReservedHeader { .. }),
                "{h}: {err}"
            );
        }
        assert!(check_headers(&["TE: trailers".into()]).is_err());
        assert!(check_headers(&["Content-Type: text/plain".into(), "Accept: x/y".into()]).is_ok());
    }
}
