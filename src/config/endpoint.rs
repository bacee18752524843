//! Where calls go, from the flags: the embedded mock, or a target URL with its format,
//! method, headers, API key and body template; and the warning for a missing key.

use super::{ConfigError, flag};
use crate::chain::Template;
use crate::cli::{ApiArg, MockFlags, TargetArgs};
use crate::endpoint::{ApiFormat, Endpoint, Target, check_headers};

/// The endpoint: a real target from --target, or the embedded mock.
pub fn endpoint_from_args(t: &TargetArgs, mock: &MockFlags) -> Result<Endpoint, ConfigError> {
    check_headers(&t.headers)?;
    if t.stream && t.api == ApiArg::Raw {
        return Err(flag(
            "--stream",
            "streaming is an OpenAI- and Anthropic-format feature; drop --api raw",
        ));
    }
    let Some(url) = &t.target else {
        if t.api == ApiArg::Raw {
            return Err(flag(
                "--api",
                "raw needs --target (the embedded mock speaks OpenAI and Anthropic)",
            ));
        }
        if t.body.is_some() {
            return Err(flag("--body", "needs --target and --api raw"));
        }
        return Ok(Endpoint::Embedded(mock.to_config()?));
    };
    if mock.any() {
        return Err(flag(
            "--mock-*",
            "mock settings apply only to the embedded mock; drop them or drop --target",
        ));
    }
    let format = match t.api {
        ApiArg::Openai => ApiFormat::OpenAi,
        ApiArg::Raw => ApiFormat::Raw,
        ApiArg::Anthropic => ApiFormat::Anthropic,
    };
    let method = reqwest::Method::from_bytes(t.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| flag("--method", format!("{:?} is not an HTTP method", t.method)))?;
    if format != ApiFormat::Raw && method != reqwest::Method::POST {
        return Err(flag(
            "--method",
            "OpenAI chat completions and Anthropic messages are POST; use --api raw",
        ));
    }
    let body = match &t.body {
        Some(_) if format != ApiFormat::Raw => {
            return Err(flag("--body", "only with --api raw"));
        }
        Some(b) => Some(Template::parse(b).map_err(|e| flag("--body", e.to_string()))?),
        None => None,
    };
    let mut target = match format {
        ApiFormat::OpenAi => Target::openai(url, t.model.clone())?,
        ApiFormat::Anthropic => Target::anthropic(url, t.model.clone())?,
        ApiFormat::Raw => Target::raw(url, method)?,
    }
    .with_headers(&t.headers)?
    .streaming(t.stream);
    if let Some(body) = body {
        target = target.with_body(body);
    }
    if let Ok(key) = std::env::var(t.key_env())
        && !key.trim().is_empty()
    {
        target = target.with_api_key(t.key_env(), key.trim())?;
    }
    Ok(Endpoint::Remote(target))
}

/// One warning line when a real `--target` is given but the variable `--api-key-env` names is
/// unset or empty: the calls would go out without a key and fail as 401s (or, worse, succeed
/// against the wrong account), so say it before the first call. Names the variable, never a
/// value. None when an `-H` header already carries credentials.
pub fn api_key_warning(t: &TargetArgs, key: Option<&str>) -> Option<String> {
    t.target.as_ref()?;
    if key.is_some_and(|k| !k.trim().is_empty()) {
        return None;
    }
    let carries_credentials = t.headers.iter().any(|h| {
        let name = h.split_once(':').map_or(h.as_str(), |(n, _)| n).trim();
        let name = name.to_ascii_lowercase();
        name == "authorization" || name.contains("key") || name.contains("token")
    });
    if carries_credentials {
        return None;
    }
    let state = if key.is_some() {
        "is empty"
    } else {
        "is not set"
    };
    Some(format!(
        "WARNING: ${} {state}: requests to --target go without an API key \
         (set it, or name the right variable with --api-key-env)",
        t.key_env()
    ))
}
