//! `kvtool rebalance`: rebuilds the store into a new number of shards (default: twice the current
//! count), with a progress bar and a summary. The rebuild is the engine's (`Db::rebalance`): the old
//! layout stays the store of record until the new one is complete, so an interrupted rebalance leaves
//! the old store.

use anyhow::Context as _;

use crate::config::Global;
use crate::engine::Progress as _;
use crate::output::{bytes, print_json};
use crate::progress::{BarProgress, Mode};

/// Arguments of `kvtool rebalance`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Every key is rewritten into the new layout; the old one stays the store of record until the new one
is complete, so an interruption leaves the old store intact. Needs room for a second copy.")]
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
    let rebuilt = crate::engine::rebalance(db, new_shards, &progress);
    progress.finish();
    let (db, report) = rebuilt.context("rebalance failed")?;
    db.close().context("cannot close the store")?;
    if g.json {
        print_json(&report)?;
    } else if !g.quiet {
        eprintln!(
            "kvtool: rebalance: {} -> {} shards, {} keys moved, {} written in {:.2} s; largest shard deviation from the mean {:.1}% -> {:.1}%",
            report.old_shards,
            report.new_shards,
            report.keys,
            bytes(report.bytes_written),
            report.seconds,
            report.max_deviation_before * 100.0,
            report.max_deviation_after * 100.0
        );
    }
    Ok(crate::EXIT_OK)
}
