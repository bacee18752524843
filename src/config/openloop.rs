//! `sweep --rates` and its companions checked into a [`RateSweep`].

use crate::cli::SweepArgs;
use crate::sweep::RateSweep;

use super::{ConfigError, flag};

/// Seed of every rate step's arrival process: fixed, so a sweep repeats exactly.
pub const ARRIVAL_SEED: u64 = 42;

/// The open-loop plan of a sweep, or None for a closed-loop (`--limits`) sweep.
pub fn rate_sweep(args: &SweepArgs) -> Result<Option<RateSweep>, ConfigError> {
    let o = &args.open_loop;
    let Some(rates) = &o.rates else {
        if o.max_concurrency.is_some() {
            return Err(flag("--max-concurrency", "needs --rates (open loop)"));
        }
        if o.duration.is_some() && args.sizes.is_some() {
            return Err(flag(
                "--duration",
                "does not go with --sizes: a soak runs for a time, not a batch size",
            ));
        }
        return Ok(None);
    };
    if rates.is_empty() {
        return Err(flag("--rates", "give at least one rate, e.g. 25,50,100"));
    }
    if args.sizes.is_some() {
        return Err(flag(
            "--sizes",
            "does not go with --rates: size each rate step with --n or --duration",
        ));
    }
    let mut rates = rates.clone();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    Ok(Some(RateSweep {
        rates,
        arrivals: o.arrivals,
        duration: o.duration,
        n: args.n,
        max_concurrency: o.max_concurrency,
        seed: ARRIVAL_SEED,
    }))
}
