//! `--exec` for `run` and `sweep`: the program becomes the endpoint and the whole chain.

use std::sync::Arc;

use super::{ConfigError, flag};
use crate::chain::{Chain, Row};
use crate::cli::{CommonArgs, PoolingArg, SweepArgs};
use crate::endpoint::Endpoint;
use crate::exec::ExecCommand;

/// The program as the endpoint, and the one-step chain (named `exec`, for reports) that runs
/// it once per row: `{{placeholders}}` must name one of `columns`; `--timeout` bounds each
/// run and `--max-response-bytes` the stdout kept.
pub(super) fn exec_endpoint(
    source: &str,
    shell: bool,
    columns: &[String],
    common: &CommonArgs,
) -> Result<(Endpoint, Chain), ConfigError> {
    // -H sends nothing here, but a forged framing header is refused as everywhere else.
    crate::endpoint::check_headers(&common.target.headers)?;
    let exec = ExecCommand::parse(
        source,
        shell,
        columns,
        common.calls.timeout,
        common.target.max_response_bytes,
    )
    .map_err(|e| flag("--exec", e.to_string()))?;
    // One step per row; its prompt is never sent.
    let mut chain = Chain::default_steps(1)?;
    chain.steps[0].name = "exec".to_string();
    Ok((Endpoint::Exec(Arc::new(exec)), chain))
}

/// `sweep --exec`: the program over the sweep's synthetic rows (`{{id}}`, `{{topic}}`).
/// Refuses what would measure nothing: `--mock-*` flags (no mock runs) and `--pooling off`
/// (a program opens no connection loadchain could leave unpooled); `both`, the default, is
/// measured as `on` only, and the report says so.
pub(super) fn sweep_exec(args: &SweepArgs, source: &str) -> Result<(Endpoint, Chain), ConfigError> {
    if args.common.mock.any() {
        return Err(flag(
            "--mock-*",
            "mock settings make no sense with --exec: no mock runs",
        ));
    }
    if args.pooling == PoolingArg::Off {
        return Err(flag(
            "--pooling",
            "off makes no sense with --exec: loadchain opens no connections for a program",
        ));
    }
    exec_endpoint(source, args.shell, &Row::synthetic_columns(), &args.common)
}
