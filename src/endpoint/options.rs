//! What every client of a run is configured with: timeouts, TLS, HTTP/2, the response size
//! limit, whether redirects are followed, and how long kept connections live.

use std::time::Duration;

/// Settings shared by every client of a run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-call timeout: send to last body byte.
    pub timeout: Duration,
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Speak HTTP/2 without negotiation (cleartext h2c to the mock, for instance).
    pub http2_prior_knowledge: bool,
    /// Largest response body read; a larger one fails the call as `body` and is not kept.
    pub max_response_bytes: u64,
    /// Follow 3xx answers (`--follow-redirects`); credentials go to the target's origin only.
    pub follow_redirects: bool,
    /// Pace sends by the quota the server's rate-limit headers announce (`--pace on`).
    pub pace: bool,
    /// Where every client of the run records the quota the server announced.
    pub announced: super::AnnouncedLog,
    /// A kept connection idle this long is closed instead of reused (`--idle-timeout`):
    /// shorter than a typical server's keep-alive timeout, so the client retires it first.
    pub idle_timeout: Duration,
    /// Resend once, on a fresh connection, a request whose reused connection closed before
    /// any byte of its response came (`--no-stale-retry` turns it off).
    pub stale_retry: bool,
}

/// Default for `--idle-timeout`: below the shortest keep-alive timeout common servers use
/// (uvicorn 5 s; nginx 75 s, Apache 5 s, Node 5 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Default for `--max-response-bytes`: far above any chat completion, far below what would
/// hurt the machine when a server sends an endless body.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Redirect hops followed at most, as browsers and curl bound them.
pub(super) const MAX_REDIRECTS: usize = 10;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            insecure: false,
            http2_prior_knowledge: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            follow_redirects: false,
            pace: true,
            announced: super::AnnouncedLog::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            stale_retry: true,
        }
    }
}
