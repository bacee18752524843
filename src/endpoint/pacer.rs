//! Header-aware pacing (`--pace on`, the default): one pacer per run, shared by every call of
//! it, that reads the quota each response announces and holds the next send back when the
//! quota would not cover it, instead of sending into a 429.
//!
//! The picture of a quota is the latest response's `remaining` (fresher sends win over
//! older ones answering late), minus what this run sent after that call, plus what the quota
//! has refilled since. A bucket's picture is a running level, charged at every send and
//! capped at what the bucket holds when full (`remaining` plus its refill until the reset):
//! a bucket of one stays one refill apart past its reset instead of seeming endless. How it
//! refills depends on the provider: OpenAI and Anthropic refill a
//! bucket continuously (whole again at the announced reset), others reset a fixed window at
//! once. The pacer starts by assuming a bucket and switches to a window when two responses
//! name the same reset instant while `remaining` fell, which a bucket never does.
//!
//! A bucket's sends go while it covers them and then one refill apart. A window's sends, once
//! what is left falls under a low-water mark (5 % of the limit), are spread until the reset
//! rather than sent at once and followed by a wall of 429s. A `retry-after-ms` on a 429 or
//! 503 holds every send until it has passed (at most 1 s). The lock is held for
//! arithmetic only, never across an await; each wait is at most 250 ms before the picture is
//! looked at again, so fresher headers take effect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::time::Instant;

use super::quota::{QuotaHeaders, QuotaState};

/// Longest single sleep before the pacer looks at its picture again.
const RECHECK: Duration = Duration::from_millis(250);
/// Under this share of the limit, a window's sends are spread instead of sent at once.
const LOW_WATER: f64 = 0.05;
/// Longest a `retry-after` holds every send: the quota picture covers longer waits, and a
/// server asking for hours must not stall the calls the runner already gave up on.
const MAX_HOLD: Duration = Duration::from_secs(1);
/// A bucket that holds fewer units than this absorbs no jitter: two sends that reach the
/// server closer than one refill apart meet a 429. Its sends go at [`SMALL_BUCKET_PACE`] of
/// the refill rate, so an arrival up to 5 % of a refill early still finds a unit.
const SMALL_BUCKET: f64 = 4.0;
const SMALL_BUCKET_PACE: f64 = 0.95;

/// The largest quotas a server announced, for the report's settings (`announced_quota`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    /// Requests per minute (the requests quota's `limit`).
    #[serde(rename = "requests_per_min")]
    pub requests: Option<u64>,
    /// Tokens per minute (the tokens quota's `limit`).
    #[serde(rename = "tokens_per_min")]
    pub tokens: Option<u64>,
}

impl Announced {
    /// Takes in a response's quotas, keeping the largest limit of each.
    pub fn record(&mut self, q: &QuotaHeaders) {
        self.requests = self.requests.max(q.requests.and_then(|r| r.limit));
        self.tokens = self.tokens.max(q.tokens.and_then(|t| t.limit));
    }

    /// Whether any quota was announced.
    pub fn any(&self) -> bool {
        self.requests.is_some() || self.tokens.is_some()
    }
}

/// What the servers of a whole sweep or run announced, shared by all its clients (paced or
/// not), read once at the end for the report.
#[derive(Debug, Clone, Default)]
pub struct AnnouncedLog(Arc<Mutex<Announced>>);

impl AnnouncedLog {
    /// Takes in one response's quotas.
    pub fn record(&self, q: &QuotaHeaders) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(q);
    }

    /// The largest quotas seen so far; None when no response announced one.
    pub fn get(&self) -> Option<Announced> {
        let a = *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        a.any().then_some(a)
    }
}

/// A send the pacer let through: where it stood in the run's sends, for its response.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    seq: u64,
    /// When the send was booked: servers count a request's quota as it arrives, so the
    /// `remaining` its answer carries is the bucket's level then, not at the answer.
    at: Instant,
    requests_before: f64,
    tokens_before: f64,
    tokens: f64,
}

/// One quota as the pacer sees it.
#[derive(Debug, Clone, Copy)]
struct Track {
    limit: f64,
    remaining: f64,
    reset_at: Instant,
    /// This run's sends (in the quota's units) up to and including the observed call.
    sent_mark: f64,
    /// The send sequence number of the observed call: older answers are ignored.
    seq: u64,
    /// Refills continuously (bucket) rather than all at once at `reset_at` (window).
    continuous: bool,
    /// The first observation of the current reset period, to tell a bucket from a window
    /// over many sends (two answers in a row differ by too little to tell).
    anchor: Anchor,
    /// A bucket's level at `level_at`: the observed `remaining` less this run's sends the
    /// server had not counted yet, and then less each send booked since.
    level: f64,
    level_at: Instant,
    /// What a bucket holds when full: what it held plus its refill until the announced
    /// reset (the instant it is whole again), at most the per-minute limit. A small burst
    /// (OpenAI-style `limit` 12,000 with `remaining` 0 and a reset of 5 ms) is a bucket of 1,
    /// not of 12,000: past its reset it refills one unit per refill time, no faster.
    capacity: f64,
}

/// `remaining` and the reset instant as first seen in a reset period.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    remaining: f64,
    observed: Instant,
    reset_at: Instant,
}

impl Track {
    /// What the quota holds for this run at `now`, given `sent` units sent so far.
    fn available(&self, now: Instant, sent: f64) -> f64 {
        if self.continuous {
            let passed = now.saturating_duration_since(self.level_at).as_secs_f64();
            return (self.level + self.refill_rate() * passed).min(self.capacity);
        }
        if now >= self.reset_at {
            return f64::INFINITY;
        }
        self.remaining - (sent - self.sent_mark)
    }

    /// Takes `cost` units out of a bucket at `now` (a window counts sends instead).
    fn book(&mut self, now: Instant, cost: f64) {
        if self.continuous {
            self.level = self.available(now, 0.0) - cost;
            self.level_at = now;
        }
    }

    /// Units per second a bucket refills: a per-minute quota's limit over a minute. (Not
    /// the missing part over the reset: a bucket may hold less than a minute's worth.)
    fn refill_rate(&self) -> f64 {
        if self.continuous {
            self.limit / 60.0
        } else {
            0.0
        }
    }

    /// How long until `cost` more units are there, and the gap to leave after a send when
    /// the quota runs low.
    fn wait_and_gap(&self, now: Instant, sent: f64, cost: f64) -> (Duration, Duration) {
        let left = self.available(now, sent);
        if left.is_infinite() {
            return (Duration::ZERO, Duration::ZERO);
        }
        let to_reset = self.reset_at.saturating_duration_since(now);
        let rate = self.refill_rate();
        // A send dearer than the full bucket waits for it to be full, then goes into debt.
        let need = if rate > 0.0 {
            cost.min(self.capacity)
        } else {
            cost
        };
        let wait = if left >= need {
            Duration::ZERO
        } else if rate > 0.0 {
            let pace = if self.capacity < SMALL_BUCKET {
                rate * SMALL_BUCKET_PACE
            } else {
                rate
            };
            Duration::from_secs_f64((need - left) / pace)
        } else {
            to_reset
        };
        // A bucket's own refill spreads the sends once what is left is spent: spreading
        // earlier only makes a batch that ends before the quota does slower.
        let gap = if rate > 0.0 || left - cost >= self.limit * LOW_WATER {
            Duration::ZERO
        } else {
            // Spread what is left over the rest of the window.
            to_reset.div_f64(((left - cost) / cost).max(0.0) + 1.0)
        };
        (wait, gap)
    }
}

#[derive(Debug)]
struct State {
    seq: u64,
    requests_sent: f64,
    tokens_sent: f64,
    requests: Option<Track>,
    tokens: Option<Track>,
    hold_until: Option<Instant>,
    next_slot: Option<Instant>,
    announced: Announced,
}

/// Paces one run's sends by the quota its responses announce (see the module docs).
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            state: Mutex::new(State {
                seq: 0,
                requests_sent: 0.0,
                tokens_sent: 0.0,
                requests: None,
                tokens: None,
                hold_until: None,
                next_slot: None,
                announced: Announced::default(),
            }),
        }
    }
}

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain numbers: a panic elsewhere leaves them usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the quota covers one more request of `tokens` estimated tokens, then books
    /// it. Without any announced quota it returns at once.
    pub async fn wait(&self, tokens: u32) -> Ticket {
        let cost = f64::from(tokens.max(1));
        loop {
            let sleep = {
                let mut s = self.lock();
                let now = Instant::now();
                let mut wait = s
                    .hold_until
                    .map_or(Duration::ZERO, |h| h.saturating_duration_since(now));
                wait = wait.max(
                    s.next_slot
                        .map_or(Duration::ZERO, |n| n.saturating_duration_since(now)),
                );
                let mut gap = Duration::ZERO;
                for (track, sent, units) in [
                    (s.requests, s.requests_sent, 1.0),
                    (s.tokens, s.tokens_sent, cost),
                ] {
                    if let Some(t) = track {
                        let (w, g) = t.wait_and_gap(now, sent, units);
                        wait = wait.max(w);
                        gap = gap.max(g);
                    }
                }
                if wait.is_zero() {
                    let ticket = Ticket {
                        seq: s.seq,
                        at: now,
                        requests_before: s.requests_sent,
                        tokens_before: s.tokens_sent,
                        tokens: cost,
                    };
                    s.seq += 1;
                    s.requests_sent += 1.0;
                    s.tokens_sent += cost;
                    if let Some(t) = s.requests.as_mut() {
                        t.book(now, 1.0);
                    }
                    if let Some(t) = s.tokens.as_mut() {
                        t.book(now, cost);
                    }
                    s.next_slot = (!gap.is_zero()).then_some(now + gap);
                    return ticket;
                }
                wait.min(RECHECK)
            };
            tokio::time::sleep(sleep).await;
        }
    }

    /// Takes in what the response to `ticket`'s send announced: its quotas, and a
    /// `retry_after` (on a 429 or 503) that holds every send until it has passed.
    pub fn observe(
        &self,
        ticket: &Ticket,
        quota: Option<&QuotaHeaders>,
        retry_after: Option<Duration>,
    ) {
        let mut s = self.lock();
        let now = Instant::now();
        if let Some(wait) = retry_after {
            let until = now + wait.min(MAX_HOLD);
            s.hold_until = Some(s.hold_until.map_or(until, |h| h.max(until)));
        }
        let Some(q) = quota else { return };
        s.announced.record(q);
        if let Some(r) = q.requests {
            let mark = ticket.requests_before + 1.0;
            let unseen = s.requests_sent - mark;
            s.requests = update(s.requests, r, now, (mark, unseen), ticket);
        }
        if let Some(t) = q.tokens {
            let mark = ticket.tokens_before + ticket.tokens;
            let unseen = s.tokens_sent - mark;
            s.tokens = update(s.tokens, t, now, (mark, unseen), ticket);
        }
    }

    /// The largest quotas announced so far.
    pub fn announced(&self) -> Announced {
        self.lock().announced
    }
}

/// The new picture of a quota after a response: kept as it was when the response is older
/// than the one the picture comes from. The pair is this run's sends up to the observed call,
/// and those after it that the server had not counted yet.
fn update(
    old: Option<Track>,
    q: QuotaState,
    now: Instant,
    (sent_mark, unseen): (f64, f64),
    ticket: &Ticket,
) -> Option<Track> {
    let seq = ticket.seq;
    if old.is_some_and(|o| o.seq > seq) {
        return old;
    }
    let remaining = q.remaining as f64;
    let limit = q
        .limit
        .map(|l| l as f64)
        .or(old.map(|o| o.limit))
        .unwrap_or(remaining)
        .max(remaining);
    // No reset said: assume a per-minute quota that is whole within the minute.
    let reset_at = now + q.reset.unwrap_or(Duration::from_secs(60));
    let mut continuous = old.is_none_or(|o| o.continuous);
    if let Some(o) = old
        && now < o.reset_at
        && remaining > o.remaining + 1.0
    {
        // Refilled before the reset: only a bucket does that.
        continuous = true;
    }
    let anchor = match old {
        Some(o) if now < o.anchor.reset_at => o.anchor,
        _ => Anchor {
            remaining,
            observed: now,
            reset_at,
        },
    };
    // A bucket's reset moves later by one unit's refill time per unit consumed; a window's
    // end stays put. `k` whole units fewer means at least `k - 1` consumed, whatever the
    // rounding of partly refilled ones. Reset instants are read at arrival, so latency
    // jitter blurs them: only a move far beyond that counts.
    let consumed = (anchor.remaining - remaining - 1.0).max(0.0);
    let expected = Duration::from_secs_f64(consumed * 60.0 / limit.max(1.0));
    let drift = reset_at.max(anchor.reset_at) - reset_at.min(anchor.reset_at);
    let tolerance =
        Duration::from_millis(50).max(anchor.reset_at.duration_since(anchor.observed) / 100);
    if expected >= tolerance * 10 && drift < expected / 2 {
        continuous = false;
    }
    let refill = reset_at.duration_since(now).as_secs_f64() * limit / 60.0;
    let capacity = (remaining + refill).min(limit).max(1.0);
    // The level when the server counted this call, less what was sent after it, refilled
    // since, as of now. The refill between those sends is what a full bucket wastes, which
    // this sum cannot see; the running level, capped at every send, can: the lower wins.
    let since = now.saturating_duration_since(ticket.at).as_secs_f64();
    let mut level = (remaining - unseen + since * limit / 60.0).min(capacity);
    if let Some(o) = old.filter(|o| o.continuous) {
        level = level.min(o.available(now, 0.0));
    }
    Some(Track {
        anchor,
        limit,
        remaining,
        reset_at,
        sent_mark,
        seq,
        continuous,
        level,
        level_at: now,
        capacity,
    })
}

#[cfg(test)]
mod tests;
