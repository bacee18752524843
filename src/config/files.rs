//! Open files: a limit that would run out of file descriptors is refused before the run.

use super::{ConfigError, flag};
use crate::endpoint::Endpoint;

/// File descriptors kept free for everything that is not a connection (stdio, report files,
/// the runtime, the mock's listener).
const SPARE_FILES: u64 = 64;

/// This process's open-file limit (after `main` raised the soft limit to the hard one), or
/// None where there is no such limit to read.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Refuses a limit that would run out of file descriptors: every connection is one, two
/// with the embedded mock in the same process. Without this check, `--limits 5000` under
/// `ulimit -n 1024` turned into thousands of failed calls that looked like the server's fault.
pub fn check_open_files(
    flag: &'static str,
    limit: usize,
    endpoint: &Endpoint,
    available: Option<u64>,
) -> Result<(), ConfigError> {
    let Some(available) = available else {
        return Ok(());
    };
    let per_connection: u64 = if matches!(endpoint, Endpoint::Embedded(_)) {
        2
    } else {
        1
    };
    let needed = limit as u64 * per_connection + SPARE_FILES;
    if needed <= available {
        return Ok(());
    }
    Err(self::flag(
        flag,
        format!(
            "{limit} concurrent connections need about {needed} open files{} but this \
             process may open only {available}; raise the limit with `ulimit -n {needed}` \
             (past the hard limit that needs root) or choose a lower limit",
            if per_connection == 2 {
                " (two per connection with the embedded mock)"
            } else {
                ""
            }
        ),
    ))
}
