//! `kvtool compact`: rewrites data files to drop dead bytes (all shards, or one), with a progress bar
//! and a summary; the work is the engine's (`engine::compact`).

use anyhow::Context as _;

use crate::config::Global;
use crate::output::print_json;
use crate::progress::{BarProgress, Mode};

/// Arguments of `kvtool compact`.
#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    /// Compact only shard N.
    #[arg(long, value_name = "N")]
    pub shard: Option<u32>,
}

/// Runs `kvtool compact`.
pub fn run(a: &CompactArgs, g: &Global) -> anyhow::Result<u8> {
    let db = g.open(false)?;
    let progress = BarProgress::new(Mode::choose(g.quiet, false));
    let report = crate::engine::compact(&db, a.shard, &progress)?;
    db.close().context("cannot close the store")?;
    if g.json {
        print_json(&report)?;
    } else if !g.quiet {
        eprintln!("kvtool: compact: {report}");
    }
    Ok(crate::EXIT_OK)
}
