//! Keeping secrets out of everything loadchain shows or writes: the API key, `-H` values, and
//! credentials or query values in the target URL.
//!
//! Two tools: [`display_url`] shows a URL with its userinfo and query values replaced, and
//! [`Secrets::redact`] replaces every known secret inside free text, such as a server's error
//! body that echoes the request's headers back.

use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not searched for in free text: replacing every `1` or `ok`
/// in an error message would garble it, and a value that short protects nothing.
const MIN_SECRET_LEN: usize = 3;

/// The URL as it may be shown: userinfo and every query value replaced by `<redacted>`
/// (names stay, so `?key=<redacted>` still says what was sent).
pub fn display_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        shown.push_str(REDACTED);
        shown.push('@');
    }
    shown.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if let Some(query) = url.query() {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// Replaces URLs with credentials or query strings inside free text (a command line, a
/// reqwest error that quotes the URL) by their [`display_url`] form.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme runs back to the last character that cannot be in one.
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>()`".contains(c))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        let candidate = &rest[scheme_start..end];
        match reqwest::Url::parse(candidate) {
            Ok(url) if scheme_start < at => out.push_str(&display_url(&url)),
            _ => out.push_str(candidate),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A URL that did not parse, shown without what could be credentials: anything between
/// `://` and the last `@` before the path, and every query value.
pub fn redact_unparsed_url(text: &str) -> String {
    if let Ok(url) = reqwest::Url::parse(text) {
        return display_url(&url);
    }
    let (head, query) = match text.split_once('?') {
        Some((h, _)) => (h, Some(REDACTED)),
        None => (text, None),
    };
    let mut shown = match head.split_once("://") {
        Some((scheme, rest)) => {
            let path_at = rest.find('/').unwrap_or(rest.len());
            match rest[..path_at].rfind('@') {
                Some(at) => format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]),
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        shown.push('?');
        shown.push_str(q);
    }
    shown
}

/// Every secret a target carries, to be cut out of any text before it is stored or shown.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

impl Secrets {
    /// Adds one secret (ignored when too short to be one, see `MIN_SECRET_LEN`).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET_LEN && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_string());
            // Longest first, so a secret that contains another is replaced whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// The URL's userinfo and query values, raw and percent-decoded.
    pub fn add_url(&mut self, url: &reqwest::Url) {
        for part in [url.username(), url.password().unwrap_or_default()] {
            self.add(part);
            self.add(&percent_decode(part));
        }
        if let Some(query) = url.query() {
            for pair in query.split('&') {
                self.add(pair.split_once('=').map_or(pair, |(_, v)| v));
            }
        }
        for (_, value) in url.query_pairs() {
            self.add(&value);
        }
    }

    /// `text` with every secret and every credentialed URL replaced by `<redacted>`: for
    /// messages (errors, server error bodies).
    pub fn redact(&self, text: &str) -> String {
        let urls = redact_urls(text);
        match self.redact_secrets(&urls) {
            Cow::Borrowed(_) => urls.into_owned(),
            Cow::Owned(s) => s,
        }
    }

    /// `text` with every known secret replaced, and nothing else touched: for a response's
    /// content, which must stay as the server sent it unless it echoes a secret back.
    /// Borrows (allocates nothing) in the common case of no secret inside.
    pub fn redact_secrets<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
}

/// Percent-decoding for userinfo (the `url` crate keeps it encoded).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_and_query_values() {
        let url = reqwest::Url::parse("http://user:pw-secret@127.0.0.1:9/v1?key=abc123&x").unwrap();
        let shown = display_url(&url);
        assert_eq!(
            shown,
            "http://<redacted>@127.0.0.1:9/v1?key=<redacted>&<redacted>"
        );
        let url = reqwest::Url::parse("https://api.example/v1").unwrap();
        assert_eq!(display_url(&url), "https://api.example/v1");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let text = "error sending request for url (http://u:p4ss@h:1/x?key=s3cret): refused";
        let out = redact_urls(text);
        assert!(!out.contains("p4ss") && !out.contains("s3cret"), "{out}");
        assert!(
            out.contains("http://<redacted>@h:1/x?key=<redacted>"),
            "{out}"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(
            redact_urls("--target=http://h/v1 ok"),
            "--target=http://h/v1 ok"
        );
    }

    #[test]
    fn unparsable_urls_lose_userinfo_and_query() {
        let shown = redact_unparsed_url("http://user:pw-canary@bad host/v1?key=q-canary");
        assert!(!shown.contains("canary"), "{shown}");
        assert_eq!(shown, "http://<redacted>@bad host/v1?<redacted>");
        assert_eq!(redact_unparsed_url("not a url"), "not a url");
    }

    #[test]
    fn secrets_are_cut_from_free_text() {
        let mut s = Secrets::default();
        s.add("sk-canary-1234");
        s.add("ab"); // too short to matter
        let url = reqwest::Url::parse("http://bob:p%40ss@h/v1?token=t0k%2Ben").unwrap();
        s.add_url(&url);
        let body = "echo: Authorization: Bearer sk-canary-1234, p@ss, t0k+en, t0k%2Ben, ab";
        let out = s.redact(body);
        for secret in ["sk-canary-1234", "p@ss", "t0k+en", "t0k%2Ben"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.ends_with(", ab"), "{out}");
        assert!(!format!("{s:?}").contains("canary"));
    }
}
