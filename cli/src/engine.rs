//! The one seam between kvtool and the `tierkv` engine: every engine item the commands use is named
//! here, and the maintenance operations that a build may lack (`compact`, `rebalance`) sit behind
//! small functions so that switching them on is a one-line change.

#[cfg(test)]
pub use tierkv::ShardStats;
pub use tierkv::{
    Db, Error, Options, Progress, Stats, SyncPolicy, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN,
};

/// Runs `compact` (all shards, or one) when this build's engine has it.
pub fn compact(
    _db: &Db,
    _shard: Option<u32>,
    _progress: &dyn Progress,
) -> anyhow::Result<serde_json::Value> {
    Err(unavailable("compact"))
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
