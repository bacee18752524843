//! The life of one chat request: the knobs of [`MockConfig`] applied in order (routing is
//! in `router`).
//!
//! Order for `POST /v1/chat/completions`: count it, read and check the body (413/400), rate
//! limit (429 at once, no latency), wait for a capacity slot, pay the connection cost (first
//! request of a connection), hang?, fail?, sleep the latency, respond (through `fault` when
//! a slow body or a cut applies). The body is read before
//! the rate limit so a refused request leaves its keep-alive connection usable, and so
//! malformed requests do not spend the budget.
//!
//! Failures also wait the sampled base latency (not the per-token time): a real provider's
//! 500 arrives after the request was queued and partly processed, not instantly, and an
//! instant failure would make retries look cheaper than they are.
//!
//! Randomness: hang, failure and status come from an RNG seeded from the server seed and the
//! request's arrival number, so a retried request can succeed and a sequential run repeats
//! exactly. Latency comes from an RNG seeded from the request's content and the server seed:
//! the same request takes the same time whatever the concurrency, order or pooling, which
//! makes comparisons between runs paired (see `outcome`). No lock is shared between requests.
//! Sleeps use a sub-millisecond timer (see `timer`), measured from the request's arrival.
//!
//! [`chat`] reads as that order, one step each: `request` (read and check the body),
//! admission (rate limit), the turn (capacity slot, connection cost), `outcome` (the dice),
//! then a hang, a failure, or `reply` (the streamed or plain body, through `fault`).

mod anthropic;
mod outcome;
mod reply;
mod request;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use self::outcome::Outcome;
use self::reply::Reply;
use self::request::ChatRequest;
use crate::body::MockBody;
use crate::config::MockConfig;
use crate::fault::Faults;
use crate::ratelimit::{Quota, RateLimiter};
use crate::response;
use crate::stats::{ConnectionGuard, InFlightGuard, Stats};
use crate::timer::PreciseTimer;

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub config: MockConfig,
    pub stats: Arc<Stats>,
    limiter: Option<RateLimiter>,
    /// The `--tpm` quota, charged the request's token estimate.
    token_limiter: Option<RateLimiter>,
    capacity: Option<Arc<Semaphore>>,
    /// Flips to `true` at shutdown; hung requests wait on it so graceful shutdown can end.
    shutdown: watch::Receiver<bool>,
    /// Sub-millisecond sleeps for the injected latency.
    timer: PreciseTimer,
    /// Numbers the `x-request-id` of every response; never reset, so ids stay unique.
    pub(crate) request_ids: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        config: MockConfig,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            limiter: config.rpm.map(|rpm| {
                RateLimiter::with_window(
                    rpm,
                    config.rpm_burst.unwrap_or(rpm),
                    config.quota_window,
                    Instant::now(),
                )
            }),
            token_limiter: config
                .tpm
                .map(|tpm| RateLimiter::with_window(tpm, tpm, config.quota_window, Instant::now())),
            capacity: config.capacity.map(|k| Arc::new(Semaphore::new(k))),
            stats: Arc::new(Stats::new()),
            config,
            shutdown,
            timer: PreciseTimer::start()?,
            request_ids: AtomicU64::new(0),
        })
    }
}

/// Per-connection state, dropped when the connection ends (it lives in the connection's
/// service, its in-flight requests and its IO).
#[derive(Default)]
pub(crate) struct ConnState {
    // Set by the first request; later requests (and concurrent HTTP/2 streams that arrive
    // during set-up) wait until the same instant, so the cost is paid once per connection.
    ready_at: OnceLock<Instant>,
    /// Set by the connection's first API request: only connections that carried API
    /// traffic count in `connections_accepted`/`connections_open`, so a client's own
    /// `GET /stats` does not spoil the pooling figure. Dropping it closes the count.
    pub(crate) api: OnceLock<ConnectionGuard>,
    /// Set by a body cut with `reset_rate` on HTTP/1.1: the socket then closes with RST.
    pub(crate) reset: Arc<AtomicBool>,
}

/// Returned for a hung request at shutdown: hyper then drops the connection without a
/// response, which is what a client of a hung provider sees.
#[derive(Debug, thiserror::Error)]
#[error("hung request dropped at shutdown")]
pub(crate) struct Hung;

/// `POST /v1/messages`: the same flow and knobs as [`chat`], answered in Anthropic's shapes
/// (`message`, its event stream, `{"type":"error",..}` error bodies).
pub(crate) async fn messages(
    shared: &Arc<Shared>,
    conn: &ConnState,
    req: Request<Incoming>,
    seq: u64,
    guard: InFlightGuard,
) -> Result<Response<MockBody>, Hung> {
    let resp = answer(shared, conn, req, seq, guard, true).await?;
    Ok(anthropic::error_shape(resp))
}

/// `POST /v1/chat/completions`, from the body to the response (see the module docs).
pub(crate) async fn chat(
    shared: &Arc<Shared>,
    conn: &ConnState,
    req: Request<Incoming>,
    seq: u64,
    guard: InFlightGuard,
) -> Result<Response<MockBody>, Hung> {
    answer(shared, conn, req, seq, guard, false).await
}

async fn answer(
    shared: &Arc<Shared>,
    conn: &ConnState,
    req: Request<Incoming>,
    seq: u64,
    guard: InFlightGuard,
    anthropic: bool,
) -> Result<Response<MockBody>, Hung> {
    let config = &shared.config;
    // The injected latency counts from the request's arrival, so the mock's own parsing and
    // bookkeeping are inside it rather than on top of it.
    let arrived = Instant::now();
    let version = req.version();
    let request = match ChatRequest::read(req, config.max_body_bytes, anthropic).await {
        Ok(request) => request,
        Err(resp) => return Ok(counted(shared, resp)),
    };
    let decision = match admit(shared, &request) {
        Ok(quota) => quota,
        Err(refused) => return Ok(counted(shared, response::rate_limited(&refused, anthropic))),
    };
    let (start, permit) = take_turn(shared, conn, arrived).await;
    let outcome = Outcome::draw(config, seq, &request.messages);

    if outcome.hang {
        return Err(hang(shared, permit, guard).await);
    }
    if let Some(status) = outcome.failure {
        shared.timer.sleep_until(start + outcome.latency).await;
        let mut resp = response::server_error(status);
        response::add_rate_headers(&mut resp, &decision, anthropic);
        return Ok(counted(shared, resp));
    }

    let reply = Reply::new(
        &request,
        config.output_tokens,
        outcome.fingerprint,
        seq,
        config.vary,
    );
    let faults = Faults::new(shared, conn, version, outcome.reset, outcome.truncate);
    // With `ttft` set the wait before the first chunk is on the precise timer here, and
    // the stream then sends its first token at once.
    let first = outcome.latency + outcome.ttft.unwrap_or_default();
    let mut resp = if request.streams() {
        shared.timer.sleep_until(start + first).await;
        let pace = Pace {
            token_time: config.token_time,
            first_at_once: outcome.ttft.is_some(),
            load_slowdown: config.load_slowdown,
        };
        reply.streamed(pace, faults, permit, guard)
    } else {
        let token_time = pace_token_time(config.token_time, config.load_slowdown, &guard);
        let generation = token_time.saturating_mul(reply.tokens());
        shared.timer.sleep_until(start + first + generation).await;
        let resp = reply.plain(faults);
        drop(permit);
        drop(guard);
        resp
    };
    response::add_rate_headers(&mut resp, &decision, anthropic);
    Ok(counted(shared, resp))
}

/// How a stream paces its tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Time per token with nothing else in flight.
    pub token_time: std::time::Duration,
    /// The first token goes out at once (its wait, `ttft`, was already spent).
    pub first_at_once: bool,
    /// See [`MockConfig::load_slowdown`].
    pub load_slowdown: f64,
}

/// One token's time now: `token_time × (1 + load_slowdown × requests in flight)`.
pub(crate) fn pace_token_time(
    token_time: std::time::Duration,
    load_slowdown: f64,
    guard: &InFlightGuard,
) -> std::time::Duration {
    if load_slowdown == 0.0 || token_time.is_zero() {
        return token_time;
    }
    token_time.mul_f64(1.0 + load_slowdown * guard.in_flight() as f64)
}

/// The rate limits: both quotas' verdicts (for the rate headers) when the request may go
/// on, or (counted as rate limited) the refusal that the 429 is sent for at once, before
/// any latency. A request the token quota refuses gives its request token back.
fn admit(shared: &Shared, request: &ChatRequest) -> Result<Quota, Refused> {
    let now = Instant::now();
    let mut quota = Quota::default();
    if let Some(limiter) = &shared.limiter {
        let d = limiter.check(now);
        quota.requests = Some(d);
        if !d.allowed {
            shared.stats.record_rate_limited();
            return Err(Refused {
                quota,
                tokens: false,
            });
        }
    }
    if let Some(limiter) = &shared.token_limiter {
        let cost = request.token_estimate(shared.config.output_tokens);
        let d = limiter.take(now, cost);
        quota.tokens = Some(d);
        if !d.allowed {
            if let Some(requests) = &shared.limiter {
                requests.refund(1);
            }
            if let Some(r) = quota.requests.as_mut() {
                r.remaining = r.remaining.saturating_add(1).min(r.limit);
            }
            shared.stats.record_rate_limited();
            return Err(Refused {
                quota,
                tokens: true,
            });
        }
    }
    Ok(quota)
}

/// A request a quota refused: both verdicts, and whether tokens (not requests) ran out.
pub(crate) struct Refused {
    pub quota: Quota,
    pub tokens: bool,
}

/// Waits for a capacity slot and then for the connection's set-up cost; returns the instant
/// the injected latency counts from and the slot, if capacity is limited. Time queued for
/// capacity comes on top of the latency, and so does the connection cost.
async fn take_turn(
    shared: &Shared,
    conn: &ConnState,
    arrived: Instant,
) -> (Instant, Option<OwnedSemaphorePermit>) {
    let mut start = arrived;
    let permit = match &shared.capacity {
        Some(sem) => {
            let permit = Arc::clone(sem)
                .acquire_owned()
                .await
                .expect("the capacity semaphore is never closed");
            start = start.max(Instant::now());
            Some(permit)
        }
        None => None,
    };
    let cost = shared.config.conn_cost;
    if !cost.is_zero() {
        let ready_at = *conn.ready_at.get_or_init(|| start + cost);
        shared.timer.sleep_until(ready_at).await;
        start = start.max(ready_at);
    }
    (start, permit)
}

/// A hung request: counted, its capacity slot given back (otherwise `hang_rate` with a
/// capacity would wedge the whole server, which is not what the knob models), then held
/// until shutdown, when it is dropped without a response.
async fn hang(shared: &Shared, permit: Option<OwnedSemaphorePermit>, guard: InFlightGuard) -> Hung {
    shared.stats.record_hung();
    drop(permit);
    let mut shutdown = shared.shutdown.clone();
    // Err means the server handle is gone: treat it as shutdown too.
    let _ = shutdown.wait_for(|down| *down).await;
    drop(guard);
    Hung
}

/// Records the response's status in the stats and passes it through.
pub(crate) fn counted(shared: &Shared, resp: Response<MockBody>) -> Response<MockBody> {
    shared.stats.record_status(resp.status().as_u16());
    resp
}
