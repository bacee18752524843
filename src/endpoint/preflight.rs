//! One call before the clock starts, so a wrong URL, key or API format fails in a second with
//! a clear message instead of as N failed rows.

use thiserror::Error;

use super::{ClientError, ClientOptions, HttpClient, Target};
use crate::chain::{Row, Step};
use crate::record::{ErrorKind, Pooling};

/// The preflight call showed the target unusable (a runtime failure: exit 1).
#[derive(Debug, Error)]
pub enum PreflightError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The call failed in a way a load test should not measure.
    #[error("preflight call to {url} failed: {message}")]
    Failed {
        /// The target, credentials redacted.
        url: String,
        /// Why, secrets redacted.
        message: String,
    },
}

/// One call of `step` with a throw-away client: fail fast on a target that is unreachable,
/// redirects, rejects us (4xx other than 429), does not speak HTTP or the API format. 5xx,
/// 429, timeouts and cut bodies are what a load test measures, so they do not stop it.
pub async fn preflight(
    target: &Target,
    step: &Step,
    opts: &ClientOptions,
) -> Result<(), PreflightError> {
    let client = HttpClient::for_target(Pooling::Off, opts, target)?;
    let row = &Row::synthetic(1)[0];
    let out = client
        .call(target, target.body(step, row, None).into())
        .await;
    match out.error {
        None
        | Some(
            ErrorKind::ServerError | ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Body,
        ) => Ok(()),
        Some(_) => Err(PreflightError::Failed {
            url: target.display_url(),
            message: out.message,
        }),
    }
}
