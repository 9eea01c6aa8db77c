//! The one seam between kvtool and the `tierkv` engine: every engine item the commands use is named
//! here, and the maintenance operations (`compact`, `rebalance`) sit behind small functions that adapt
//! the engine's calls to what the commands need.

#[cfg(test)]
pub use tierkv::ShardStats;
pub use tierkv::{
    CompactReport, Db, DirectIo, Error, IoEngine, Options, Progress, RebalanceReport, Stats,
    SyncPolicy, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN,
};

/// Compacts every shard that needs it, or the one shard given (whether or not it needs it).
pub fn compact(
    db: &Db,
    shard: Option<u32>,
    progress: &dyn Progress,
) -> anyhow::Result<CompactReport> {
    let r = match shard {
        None => db.compact(progress),
        Some(n) => db.compact_shard(n, progress),
    };
    Ok(r?)
}

/// Rebuilds the store into `new_shards` shards; the handle is consumed and the reopened store returned.
pub fn rebalance(
    db: Db,
    new_shards: u32,
    progress: &dyn Progress,
) -> anyhow::Result<(Db, RebalanceReport)> {
    Ok(db.rebalance(new_shards, progress)?)
}
