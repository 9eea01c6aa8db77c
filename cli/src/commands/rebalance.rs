//! `kvtool rebalance`: changes the number of shards (default: twice the current count), with a
//! progress bar and a summary; the work is the engine's (`engine::rebalance`).

use anyhow::Context as _;

use crate::config::Global;
use crate::output::print_json;
use crate::progress::{BarProgress, Mode};

/// Arguments of `kvtool rebalance`.
#[derive(clap::Args, Debug)]
pub struct RebalanceArgs {
    /// The new shard count, a power of two [default: twice the current count].
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
}

/// Runs `kvtool rebalance`.
pub fn run(a: &RebalanceArgs, g: &Global) -> anyhow::Result<u8> {
    let db = g.open(false)?;
    let new_shards = match a.shards {
        Some(n) => n,
        None => db.stats().shards.saturating_mul(2),
    };
    if new_shards == 0 || !new_shards.is_power_of_two() {
        anyhow::bail!("--shards must be a power of two, got {new_shards}");
    }
    let progress = BarProgress::new(Mode::choose(g.quiet, false));
    let report = crate::engine::rebalance(&db, new_shards, &progress)?;
    db.close().context("cannot close the store")?;
    if g.json {
        print_json(&report)?;
    } else if !g.quiet {
        eprintln!("kvtool: rebalance: {report}");
    }
    Ok(crate::EXIT_OK)
}
