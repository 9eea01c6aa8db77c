//! The one seam between kvtool and the `tierkv` engine: every engine item the commands use is named
//! here, and the maintenance operations sit behind small functions, so that one the engine does not
//! provide yet (`rebalance`) reports "not available in this build" and switching it on is local.

#[cfg(test)]
pub use tierkv::ShardStats;
pub use tierkv::{
    CompactReport, Db, Error, Options, Progress, Stats, SyncPolicy, WriteBatch, MAX_KEY_LEN,
    MAX_VALUE_LEN,
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

/// Runs `rebalance` to `new_shards` shards when this build's engine has it.
pub fn rebalance(
    _db: &Db,
    _new_shards: u32,
    _progress: &dyn Progress,
) -> anyhow::Result<serde_json::Value> {
    Err(unavailable("rebalance"))
}

fn unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} is not available in this build (the engine does not provide it yet)")
}
