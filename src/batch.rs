//! `loadchain run`: a manifest of rows through the chain, durable and resumable.

use anyhow::Result;

use crate::cli::RunArgs;

/// Runs a manifest (wired up with the manifest module).
pub async fn run(_args: RunArgs) -> Result<()> {
    anyhow::bail!("loadchain run is not available yet")
}
