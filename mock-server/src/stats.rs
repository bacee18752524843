//! Server-side counters behind `GET /stats` and [`crate::MockServer::stats`].
//!
//! All counters are lock-free atomics so that 10,000 concurrent requests never contend on a
//! mutex; per-status counts live in a fixed array indexed by status code. Counters use
//! `Relaxed` ordering: each is exact on its own, and a snapshot taken while requests are
//! running is a best-effort view across counters (no cross-counter consistency is promised).
//!
//! The control-plane endpoints (`/health`, `/stats`, `/stats/reset`) are not counted as
//! requests, so observing the server does not change what it reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

const STATUS_MIN: u16 = 100;
const STATUS_SLOTS: usize = 500; // 100..=599

/// A point-in-time copy of the counters, as served by `GET /stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests received on API paths since start or the last reset (answered or not).
    pub requests_total: u64,
    /// Answered requests by HTTP status code (hung requests have no status).
    pub requests_by_status: BTreeMap<u16, u64>,
    /// TCP connections that carried API traffic: the figure that shows whether a client
    /// pools connections. A connection counts when its first request on any path other than
    /// `/health`, `/stats` and `/stats/reset` arrives, so watching the server (a client's
    /// own `GET /stats`) does not add to it.
    pub connections_accepted: u64,
    /// Connections counted in `connections_accepted` that are open right now (not reset
    /// by a reset).
    pub connections_open: u64,
    /// Requests being processed right now, including queued and hung ones (not reset).
    pub in_flight: u64,
    /// Highest `in_flight` seen since start or the last reset.
    pub peak_in_flight: u64,
    /// Requests that were chosen to hang (never answered).
    pub hung: u64,
    /// Requests refused with 429 by the rate limiter (also counted under status 429).
    pub rate_limited: u64,
    /// Responses chosen to end in a TCP reset mid-body (`reset_rate`; counted under 200).
    #[serde(default)]
    pub reset: u64,
    /// Responses chosen to be cut short by a clean close mid-body (`truncate_rate`; counted
    /// under 200).
    #[serde(default)]
    pub truncated: u64,
}

/// The live counters shared by every connection task.
pub(crate) struct Stats {
    requests_total: AtomicU64,
    by_status: Box<[AtomicU64]>,
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    hung: AtomicU64,
    rate_limited: AtomicU64,
    reset: AtomicU64,
    truncated: AtomicU64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            requests_total: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
        }
    }

    /// Counts a new API request and marks it in flight until the guard drops, which also
    /// happens when hyper drops a hung request's future at shutdown or on disconnect.
    /// Returns the request's arrival sequence number (0-based since start).
    pub(crate) fn begin_request(self: &Arc<Self>) -> (u64, InFlightGuard) {
        let seq = self.requests_total.fetch_add(1, Relaxed);
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Relaxed);
        (
            seq,
            InFlightGuard {
                stats: Arc::clone(self),
            },
        )
    }

    pub(crate) fn record_status(&self, status: u16) {
        if let Some(slot) = status
            .checked_sub(STATUS_MIN)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            slot.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn record_hung(&self) {
        self.hung.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_reset(&self) {
        self.reset.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_truncated(&self) {
        self.truncated.fetch_add(1, Relaxed);
    }

    /// Counts a connection that carries API traffic; it stays open until the guard drops.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
        ConnectionGuard {
            stats: Arc::clone(self),
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let requests_by_status = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Relaxed);
                // i < 500, so the status always fits in u16.
                (n > 0).then(|| (STATUS_MIN + i as u16, n))
            })
            .collect();
        StatsSnapshot {
            requests_total: self.requests_total.load(Relaxed),
            requests_by_status,
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            peak_in_flight: self.peak_in_flight.load(Relaxed),
            hung: self.hung.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            reset: self.reset.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
        }
    }

    /// Zeroes the counters; gauges (open connections, in flight) keep their value and the
    /// peak restarts from the current in-flight count.
    ///
    /// The request sequence number used for seeding restarts too, so a reset followed by a
    /// sequential run repeats the same random choices as a fresh server.
    pub(crate) fn reset(&self) {
        self.requests_total.store(0, Relaxed);
        for c in self.by_status.iter() {
            c.store(0, Relaxed);
        }
        self.connections_accepted.store(0, Relaxed);
        self.hung.store(0, Relaxed);
        self.rate_limited.store(0, Relaxed);
        self.reset.store(0, Relaxed);
        self.truncated.store(0, Relaxed);
        self.peak_in_flight
            .store(self.in_flight.load(Relaxed), Relaxed);
    }
}

/// Decrements `in_flight` when a request ends, however it ends.
pub(crate) struct InFlightGuard {
    stats: Arc<Stats>,
}

impl InFlightGuard {
    /// Requests in flight on the whole server now (this one included), for
    /// `load_slowdown`.
    pub(crate) fn in_flight(&self) -> u64 {
        self.stats.in_flight.load(Relaxed)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Decrements `connections_open` when the connection ends.
pub(crate) struct ConnectionGuard {
    stats: Arc<Stats>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Relaxed);
    }
}
