//! `kvtool compact`: rewrites the data files of the shards that need it (or of one shard, forced) to
//! drop dead bytes and resize tables, with a progress bar and a summary per shard. The decision and the
//! work are the engine's (`Db::compact`, `Db::compact_shard`); this file reports.

use anyhow::Context as _;

use crate::config::Global;
use crate::engine::Progress as _;
use crate::output::{bytes, print_json};
use crate::progress::{BarProgress, Mode};

/// Arguments of `kvtool compact`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --shard, shards are compacted when their data file is at least --compact-dead-fraction dead
(default 25%) or their table is far larger than its keys need; --shard N compacts shard N regardless.")]
pub struct CompactArgs {
    /// Compact only shard N (even if it does not need it).
    #[arg(long, value_name = "N")]
    pub shard: Option<u32>,
}

/// Runs `kvtool compact`.
pub fn run(a: &CompactArgs, g: &Global) -> anyhow::Result<u8> {
    let db = g.open(false)?;
    let progress = BarProgress::new(Mode::choose(g.quiet, false));
    let report = crate::engine::compact(&db, a.shard, &progress);
    progress.finish();
    let report = report.context("compaction failed")?;
    db.close().context("cannot close the store")?;
    if g.json {
        print_json(&report)?;
    } else if !g.quiet {
        for s in &report.shards {
            if s.compacted {
                eprintln!(
                    "kvtool: compact: shard {}: data {} -> {} ({} dead before), index {} -> {} pages, {} -> {} buckets, {:.2} s ({})",
                    s.shard,
                    bytes(s.data_bytes_before),
                    bytes(s.data_bytes_after),
                    bytes(s.dead_bytes_before),
                    s.index_pages_before,
                    s.index_pages_after,
                    s.buckets_before,
                    s.buckets_after,
                    s.seconds,
                    s.reason
                );
            }
        }
        eprintln!(
            "kvtool: compact: {} of {} shards compacted in {:.2} s; space amplification {:.2}x -> {:.2}x",
            report.compacted_shards,
            report.shards.len(),
            report.seconds,
            report.space_amplification_before,
            report.space_amplification_after
        );
    }
    Ok(crate::EXIT_OK)
}
