//! loadchain-mock: a configurable, OpenAI-compatible API double for load tests.
//!
//! Every test, bench and the embedded default of `loadchain` talk to this server, so it
//! behaves like an LLM provider under load and is exact about what it injects: latency
//! distributions, per-token time, failures, rate limits (429 + `Retry-After`), per-connection
//! set-up cost, hangs, a capacity limit, and transport faults (reset, truncated or slow
//! bodies), all driven by one seed.
//!
//! A tour of the modules:
//! - [`config`]: [`MockConfig`], its defaults, TOML loading and validation, [`ConfigError`].
//! - [`latency`]: the [`Latency`] distributions, their `fixed:80ms` text form, sampling.
//! - `server`: [`MockServer`], the accept loop (HTTP/1.1 + HTTP/2 cleartext) and shutdown.
//! - `router`: routing, the control plane, the models endpoints and `x-request-id`.
//! - `handler`: the order in which the knobs apply to one chat request, one step each:
//!   reading the request, the seeded outcome, the streamed or plain reply.
//! - `body`: the streamed (`text/event-stream`) response body.
//! - `fault`: transport faults (TCP reset, truncation, a slow body) and [`ByteRate`].
//! - `content`: deterministic completion text from the messages and the seed.
//! - `ratelimit`: the per-minute request and token quotas (bucket or fixed window).
//! - `timer`: the sub-millisecond timer thread behind the injected latency.
//! - `response`: OpenAI-style error bodies, JSON responses, rate-limit headers.
//! - `stats`: lock-free counters behind `GET /stats` ([`StatsSnapshot`]).
//! - `cli`: [`MockArgs`] (flags shared with `loadchain mock`) and [`run_cli`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), loadchain_mock::MockError> {
//! let config = loadchain_mock::MockConfig {
//!     latency: "fixed:100ms".parse().expect("valid latency"),
//!     ..Default::default()
//! };
//! let server = loadchain_mock::MockServer::start(config).await?;
//! println!("POST {}/v1/chat/completions", server.url());
//! let stats = server.stats();
//! assert_eq!(stats.requests_total, 0);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod awake;
mod body;
mod cli;
pub mod config;
mod content;
mod fault;
mod handler;
pub mod latency;
mod ratelimit;
mod response;
mod router;
mod server;
mod stats;
mod timer;

pub use cli::{
    MockArgs, describe, exit_code, parse_fraction, parse_slowdown, parse_status, run_cli,
};
pub use config::{ConfigError, MockConfig};
pub use fault::{ByteRate, ByteRateParseError};
pub use latency::{Latency, LatencyParseError, parse_duration};
pub use ratelimit::QuotaWindow;
pub use server::{MockError, MockServer, SHUTDOWN_GRACE};
pub use stats::StatsSnapshot;
