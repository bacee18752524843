//! The dice of one chat request: hang, failure (and its status), reset, truncation, and the
//! base latency.
//!
//! Hang, failure, status and faults come from an RNG seeded from the server seed and the
//! request's arrival number, so a retried request can succeed and a sequential run repeats
//! exactly. Latency comes from an RNG seeded from the request's content and the server seed:
//! the same request takes the same time whatever the concurrency, order or pooling (common
//! random numbers), so two runs that differ only in limit or pooling differ only by what the
//! client did, not by the dice. The order of the draws is part of the behaviour: a new knob
//! draws after the older ones so their sequences stay unchanged.

use std::time::Duration;

use hyper::StatusCode;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::config::MockConfig;
use crate::content::{self, ChatMessage};

/// What happens to one request, drawn before any of it is acted on.
pub(super) struct Outcome {
    /// Never answer (until shutdown).
    pub hang: bool,
    /// Answer with this 5xx after the base latency.
    pub failure: Option<StatusCode>,
    /// Reset the connection (or stream) mid-body.
    pub reset: bool,
    /// Close cleanly mid-body.
    pub truncate: bool,
    /// The request's content fingerprint; also seeds the completion's words.
    pub fingerprint: u64,
    /// Base latency (time to first token).
    pub latency: Duration,
    /// Time to first token after `latency`, when `ttft` is set.
    pub ttft: Option<Duration>,
}

/// Mixed into a request's fingerprint to seed its latency, so the latency stream is
/// independent of the content words drawn from the same fingerprint.
const LATENCY_STREAM: u64 = 0x6c61_7465_6e63_7921;

/// Mixed into the fingerprint to seed the time to first token, apart from the latency.
const TTFT_STREAM: u64 = 0x7474_6674_2d73_6565;

impl Outcome {
    /// Draws the outcome of request number `seq` asking `messages`.
    pub(super) fn draw(config: &MockConfig, seq: u64, messages: &[ChatMessage]) -> Self {
        let mut rng = SmallRng::seed_from_u64(request_seed(config.seed, seq));
        let hang = rng.random::<f64>() < config.hang_rate;
        let fail = rng.random::<f64>() < config.failure_rate;
        let status_pick = rng.random::<u64>();
        // Drawn after the older knobs so adding these left their sequences unchanged.
        let reset = rng.random::<f64>() < config.reset_rate;
        let truncate = rng.random::<f64>() < config.truncate_rate;
        let fingerprint = content::fingerprint(messages, config.seed);
        let latency = config
            .latency
            .sample(&mut SmallRng::seed_from_u64(fingerprint ^ LATENCY_STREAM));
        let ttft = config
            .ttft
            .map(|t| t.sample(&mut SmallRng::seed_from_u64(fingerprint ^ TTFT_STREAM)));
        let statuses = &config.failure_statuses;
        let failure = (fail && !statuses.is_empty()).then(|| {
            let i = (status_pick % statuses.len() as u64) as usize;
            StatusCode::from_u16(statuses[i]).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        Self {
            hang,
            failure,
            reset,
            truncate,
            fingerprint,
            latency,
            ttft,
        }
    }
}

/// Seed for request number `seq`: mixed so neighbouring requests get unrelated streams.
fn request_seed(seed: u64, seq: u64) -> u64 {
    let mut state = seq;
    seed ^ content::splitmix64(&mut state)
}
