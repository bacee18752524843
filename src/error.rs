//! Exit codes: 0 ok, 1 runtime failure, 2 usage or input error (as clap uses).

use crate::batch::BatchError;
use crate::config::ConfigError;
use crate::report::ReportError;

/// Exit code for usage and input errors.
pub const USAGE: u8 = 2;
/// Exit code for runtime failures.
pub const FAILURE: u8 = 1;

/// An input problem found while running (bad manifest, output folder in use); exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED: u8 = 130;

/// The user pressed Ctrl-C; what completed was written. Exit 130.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Maps an error chain to an exit code: any input error anywhere in the chain means 2.
/// Every flag, chain, target, manifest and mock-setting error reaches here as a
/// [`ConfigError`]; an output folder in use or holding another run comes as a
/// [`BatchError`] or [`ReportError`] that says it is the user's.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<Interrupted>()) {
        return INTERRUPTED;
    }
    let input = err.chain().any(|cause| {
        cause.is::<ConfigError>()
            || cause.is::<InputError>()
            || cause.is::<loadchain_mock::ConfigError>()
            || cause
                .downcast_ref::<BatchError>()
                .is_some_and(BatchError::is_input_error)
            || cause
                .downcast_ref::<ReportError>()
                .is_some_and(ReportError::is_input_error)
    });
    if input { USAGE } else { FAILURE }
}
