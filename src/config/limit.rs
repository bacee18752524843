//! `auto` limits: how high the adaptive controller may go.

use super::check_open_files;
use crate::endpoint::Endpoint;

/// Highest limit an `auto` run may reach when nothing lower bounds it: far above any quota
/// we know of for chains of a few seconds, low enough to stay a sane number of connections.
pub const AUTO_CEILING: usize = 1000;

/// The ceiling of an `auto` run over `rows` rows: at most [`AUTO_CEILING`], the row count,
/// and what the open-file limit allows (halved until it fits, so `auto` never fails a check
/// that the user did not ask for by number).
pub fn auto_ceiling(rows: usize, endpoint: &Endpoint, open_files: Option<u64>) -> usize {
    let mut ceiling = AUTO_CEILING.min(rows).max(1);
    while ceiling > 1 && check_open_files("--limit", ceiling, endpoint, open_files).is_err() {
        ceiling /= 2;
    }
    ceiling
}
