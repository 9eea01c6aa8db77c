//! The one seam between kvtool and the `tierkv` engine: every engine item the commands use is named
//! here, and the maintenance operations (`compact`, `rebalance`) sit behind small functions that adapt
//! the engine's calls to what the commands need.

#[cfg(test)]
pub use tierkv::ShardStats;
pub use tierkv::{
    CheckReport, CompactReport, Db, DirectIo, Error, IoEngine, Options, Progress, ReadOnlyDb,
    RebalanceReport, Stats, SyncPolicy, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN,
};

/// A store opened by a command that only reads (`get`, `export`, `stats`, `check`): as its writer
/// when no other process holds it, or read-only beside the process that does.
#[derive(Debug)]
pub enum Reader {
    /// This process holds the store (its open recovered the logs, so it sees everything).
    Writer(Db),
    /// Another process writes the store: this one sees the writer's newest flushes.
    ReadOnly(ReadOnlyDb),
}

impl Reader {
    /// The values of `keys`, in order.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> tierkv::Result<Vec<Option<Vec<u8>>>> {
        match self {
            Reader::Writer(db) => db.multi_get(keys),
            Reader::ReadOnly(db) => db.multi_get(keys),
        }
    }

    /// Every live key with its value (see `Db::scan` and `ReadOnlyDb::scan`).
    pub fn scan(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> tierkv::Result<()> {
        match self {
            Reader::Writer(db) => db.scan(f),
            Reader::ReadOnly(db) => db.scan(f),
        }
    }

    /// The full verification.
    pub fn check(&self, progress: &dyn Progress) -> tierkv::Result<CheckReport> {
        match self {
            Reader::Writer(db) => db.check(progress),
            Reader::ReadOnly(db) => db.check(progress),
        }
    }

    /// Every counter.
    pub fn stats(&self) -> Stats {
        match self {
            Reader::Writer(db) => db.stats(),
            Reader::ReadOnly(db) => db.stats(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        match self {
            Reader::Writer(db) => db.options(),
            Reader::ReadOnly(db) => db.options(),
        }
    }

    /// Releases the store (a writer flushes and checkpoints; a reader has nothing to write).
    pub fn close(self) -> tierkv::Result<()> {
        match self {
            Reader::Writer(db) => db.close(),
            Reader::ReadOnly(_) => Ok(()),
        }
    }
}

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
