//! What a batch talks to: the [`Target`] (URL, API format, auth) and how a step becomes a
//! request; the pooled or unpooled HTTP [`client`](HttpClient) that times one call; SSE
//! parsing; secret redaction; and the [`Session`] that resolves an endpoint (the embedded
//! mock or a URL), checks it with a preflight call and makes a `Runner` per (limit, pooling).
//!
//! Owns everything that touches the network before the runner takes over. Knows nothing about
//! reports or the command line.

mod anthropic;
mod client;
mod decoded;
mod direct;
mod exchange;
mod fault;
mod h1;
mod h2c;
mod header;
mod options;
mod pacer;
mod preflight;
pub mod quota;
pub mod redact;
mod session;
mod socket;
pub mod sse;
mod target;

pub use client::{CallOutcome, ClientError, HttpClient};
pub use decoded::{Decoded, Finish};
pub use header::check_headers;
pub use options::{ClientOptions, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
pub use pacer::{Announced, AnnouncedLog, Pacer, Ticket};
pub use preflight::{PreflightError, preflight};
pub use redact::{Secrets, display_url};
pub use session::{Endpoint, Session, SessionError, embedded_target};
pub use target::{ApiFormat, Target, TargetError};
