//! `loadchain plan`: flags (and `--from DIR`) → [`PlanInput`] → text or JSON on stdout.

use std::io::Write as _;

use anyhow::Result;

use crate::cli::PlanArgs;
use crate::error::InputError;
use crate::plan::{PlanError, PlanInput, read_measured};

/// Runs `loadchain plan`; every input problem exits 2 naming its flag.
pub fn run(args: &PlanArgs) -> Result<()> {
    let input = input(args).map_err(|e| InputError(e.to_string()))?;
    let plan = input.plan();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&plan)?)?;
    } else {
        write!(stdout, "{}", crate::plan::render(&input, &plan))?;
    }
    Ok(())
}

/// Flags over what `--from` measured, then the cross-flag checks.
fn input(args: &PlanArgs) -> Result<PlanInput, PlanError> {
    let measured = args.from.as_deref().map(read_measured).transpose()?;
    let chain_time = args
        .chain_time
        .or(measured.as_ref().map(|m| m.chain_time))
        .ok_or_else(|| {
            PlanError::Input("--chain-time is needed (e.g. --chain-time 25s), or --from DIR".into())
        })?;
    let calls_per_chain = match (args.steps, &measured) {
        (Some(steps), _) => steps as f64,
        (None, Some(m)) => m.calls_per_chain,
        (None, None) => 3.0,
    };
    let tokens_per_call = args
        .tokens_per_call
        .map(f64::from)
        .or(measured.as_ref().and_then(|m| m.tokens_per_call));
    let input = PlanInput {
        rpm: args.rpm,
        tpm: args.tpm,
        calls_per_chain,
        chain_time,
        tokens_per_call,
        n: args.n,
        limit: args.limit,
    };
    input.validate()?;
    Ok(input)
}
