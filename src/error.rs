//! Exit codes: 0 ok, 1 runtime failure, 2 usage or input error (as clap uses).

use crate::chain::ChainError;
use crate::config::ConfigError;
use crate::report::ReportError;
use crate::target::TargetError;

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
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<Interrupted>()) {
        return INTERRUPTED;
    }
    for cause in err.chain() {
        let input = cause.is::<ConfigError>()
            || cause.is::<ChainError>()
            || cause.is::<TargetError>()
            || cause.is::<InputError>()
            || cause.is::<loadchain_mock::ConfigError>()
            || cause
                .downcast_ref::<ReportError>()
                .is_some_and(ReportError::is_input_error)
            || cause
                .downcast_ref::<crate::manifest::ManifestError>()
                .is_some_and(crate::manifest::ManifestError::is_input_error);
        if input {
            return USAGE;
        }
    }
    FAILURE
}
