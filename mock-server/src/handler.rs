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
//! makes comparisons between runs paired. No lock is shared between requests. Sleeps use a
//! sub-millisecond timer (see `timer`), measured from the request's arrival.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::body::{MockBody, SseStream};
use crate::config::MockConfig;
use crate::content::{self, ChatMessage};
use crate::fault::Faults;
use crate::ratelimit::RateLimiter;
use crate::response;
use crate::stats::{ConnectionGuard, InFlightGuard, Stats};
use crate::timer::PreciseTimer;

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub config: MockConfig,
    pub stats: Arc<Stats>,
    limiter: Option<RateLimiter>,
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
            limiter: config
                .rpm
                .map(|rpm| RateLimiter::new(rpm, config.rpm_burst.unwrap_or(rpm))),
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

/// The fields of an OpenAI chat request the mock uses; everything else is ignored.
#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

/// `stream_options` of a streamed request: whether to end with a usage chunk.
#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// `POST /v1/chat/completions`, from the body to the response (see the module docs).
pub(crate) async fn chat(
    shared: &Arc<Shared>,
    conn: &ConnState,
    req: Request<Incoming>,
    seq: u64,
    guard: InFlightGuard,
) -> Result<Response<MockBody>, Hung> {
    let config = &shared.config;
    // The injected latency counts from the request's arrival, so the mock's own parsing and
    // bookkeeping are inside it rather than on top of it.
    let arrived = Instant::now();
    let version = req.version();
    let body = match read_body(req, config.max_body_bytes).await {
        Ok(body) => body,
        Err(resp) => return Ok(counted(shared, resp)),
    };
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("We could not parse the JSON body of your request: {e}");
            return Ok(counted(
                shared,
                response::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_json",
                    &message,
                ),
            ));
        }
    };
    if request.messages.is_empty() {
        // OpenAI's own wording and shape for this case (param set, code null).
        return Ok(counted(
            shared,
            response::invalid_param("messages", "[] is too short - 'messages'"),
        ));
    }

    let decision = match &shared.limiter {
        Some(limiter) => {
            let d = limiter.check(Instant::now());
            if !d.allowed {
                shared.stats.record_rate_limited();
                return Ok(counted(shared, response::rate_limited(&d)));
            }
            Some(d)
        }
        None => None,
    };

    let mut start = arrived;
    let permit = match &shared.capacity {
        Some(sem) => {
            let permit = Arc::clone(sem)
                .acquire_owned()
                .await
                .expect("the capacity semaphore is never closed");
            // Time spent queued for capacity comes on top of the latency.
            start = start.max(Instant::now());
            Some(permit)
        }
        None => None,
    };

    if !config.conn_cost.is_zero() {
        let ready_at = *conn.ready_at.get_or_init(|| start + config.conn_cost);
        shared.timer.sleep_until(ready_at).await;
        start = start.max(ready_at);
    }

    let mut rng = SmallRng::seed_from_u64(request_seed(config.seed, seq));
    let hang = rng.random::<f64>() < config.hang_rate;
    let fail = rng.random::<f64>() < config.failure_rate;
    let status_pick = rng.random::<u64>();
    // Drawn after the older knobs so adding these left their sequences unchanged.
    let reset = rng.random::<f64>() < config.reset_rate;
    let truncate = rng.random::<f64>() < config.truncate_rate;
    // Latency depends on what was asked, not on arrival order: the same request takes the
    // same time in every run (common random numbers), so two runs that differ only in limit
    // or pooling differ only by what the client did, not by the dice.
    let fingerprint = content::fingerprint(&request.messages, config.seed);
    let latency = config
        .latency
        .sample(&mut SmallRng::seed_from_u64(fingerprint ^ LATENCY_STREAM));

    if hang {
        shared.stats.record_hung();
        // A hung request gives back its capacity slot: otherwise hang_rate with a capacity
        // would wedge the whole server, which is not what the knob is meant to model.
        drop(permit);
        let mut shutdown = shared.shutdown.clone();
        // Err means the server handle is gone: treat it as shutdown too.
        let _ = shutdown.wait_for(|down| *down).await;
        drop(guard);
        return Err(Hung);
    }

    if fail && !config.failure_statuses.is_empty() {
        shared.timer.sleep_until(start + latency).await;
        let i = (status_pick % config.failure_statuses.len() as u64) as usize;
        let status = StatusCode::from_u16(config.failure_statuses[i])
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = response::server_error(status);
        response::add_rate_headers(&mut resp, decision.as_ref());
        return Ok(counted(shared, resp));
    }

    let n = request
        .max_tokens
        .or(request.max_completion_tokens)
        .map_or(config.output_tokens, |cap| cap.min(config.output_tokens));
    let words = content::words(fingerprint, n);
    let prompt_tokens = content::prompt_tokens(&request.messages);
    let model = request.model.as_deref().unwrap_or(response::DEFAULT_MODEL);
    let id = format!("chatcmpl-mock-{seq}");
    let created = unix_now();

    if request.stream.unwrap_or(false) {
        shared.timer.sleep_until(start + latency).await;
        let model_json = serde_json::to_string(model).expect("a str always serializes");
        let mut stream = SseStream::new(
            &id,
            created,
            &model_json,
            words,
            config.token_time,
            permit,
            guard,
        );
        let include_usage = request.stream_options.and_then(|o| o.include_usage);
        if include_usage.unwrap_or(false) {
            stream = stream.with_usage(prompt_tokens);
        }
        // A cut stream sends the first half of the tokens (at least one), never [DONE].
        let cut_after = stream.token_count().div_ceil(2);
        let faults = Faults::new(shared, conn, version, reset, truncate);
        let body = faults.shape(
            MockBody::Sse(Box::new(stream)),
            SizeHint::default(),
            cut_after,
        );
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response::add_rate_headers(&mut resp, decision.as_ref());
        return Ok(counted(shared, resp));
    }

    let total = latency + config.token_time.saturating_mul(n);
    shared.timer.sleep_until(start + total).await;
    let completion = ChatCompletion {
        id: &id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message: Message {
                role: "assistant",
                content: content::join(&words),
            },
            logprobs: None,
            finish_reason: "stop",
        }],
        usage: Usage {
            prompt_tokens,
            completion_tokens: n,
            total_tokens: prompt_tokens.saturating_add(n),
        },
    };
    let bytes =
        Bytes::from(serde_json::to_vec(&completion).expect("the completion always serializes"));
    let mut resp = response::json(StatusCode::OK, Bytes::new());
    let faults = Faults::new(shared, conn, version, reset, truncate);
    // Content-Length always promises the whole body; a cut one sends the first half.
    let declared = SizeHint::with_exact(bytes.len() as u64);
    let sent = if faults.cut {
        bytes.slice(..bytes.len() / 2)
    } else {
        bytes
    };
    *resp.body_mut() = faults.shape(MockBody::full(sent), declared, 1);
    response::add_rate_headers(&mut resp, decision.as_ref());
    drop(permit);
    drop(guard);
    Ok(counted(shared, resp))
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    message: Message,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

/// Reads the body up to `limit` bytes, answering 413 early when Content-Length is already
/// too big, and 400 when the body cannot be read.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<MockBody>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(response::too_large(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(response::too_large(limit)),
        Err(_) => Err(response::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "body_read_error",
            "The request body could not be read.",
        )),
    }
}

/// Records the response's status in the stats and passes it through.
pub(crate) fn counted(shared: &Shared, resp: Response<MockBody>) -> Response<MockBody> {
    shared.stats.record_status(resp.status().as_u16());
    resp
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mixed into a request's fingerprint to seed its latency, so the latency stream is
/// independent of the content words drawn from the same fingerprint.
const LATENCY_STREAM: u64 = 0x6c61_7465_6e63_7921;

/// Seed for request number `seq`: mixed so neighbouring requests get unrelated streams.
fn request_seed(seed: u64, seq: u64) -> u64 {
    let mut state = seq;
    seed ^ content::splitmix64(&mut state)
}
