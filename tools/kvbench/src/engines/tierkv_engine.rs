//! The tierkv adapter: default [`tierkv::Options`], load through `write_batch`, and the engine's own
//! counters (reads per get, bytes written per tier) in the result.

use std::path::Path;

use anyhow::{Context, Result};
use tierkv::{Db, Options, Stats, WriteBatch};

use super::Engine;

/// tierkv with default options.
#[derive(Debug)]
pub struct TierKv {
    db: Db,
}

impl TierKv {
    /// Creates a store in `dir`.
    pub fn open(dir: &Path) -> Result<TierKv> {
        let db = Db::open(dir, Options::default())
            .with_context(|| format!("tierkv: opening {}", dir.display()))?;
        Ok(TierKv { db })
    }
}

/// Reads per get and bytes written per tier, from a stats snapshot.
fn summarize(s: &Stats) -> serde_json::Value {
    let t = &s.tiers;
    let gets = s.gets.total.max(1) as f64;
    let reads = t.log.read_ops + t.index.read_ops + t.hot.read_ops + t.data.read_ops;
    serde_json::json!({
        "reads_per_get": reads as f64 / gets,
        "index_reads_per_get": t.index.read_ops as f64 / gets,
        "gets": s.gets,
        "written_bytes": {
            "log": t.log.write_bytes,
            "index": t.index.write_bytes,
            "hot": t.hot.write_bytes,
            "data": t.data.write_bytes,
            "meta": t.meta.write_bytes,
        },
        "flushes": s.flushes,
        "pages_written": s.pages_written,
        "bloom_false_positives": s.bloom_false_positives,
        "dram_bytes_per_flushed_key": s.dram_bytes_per_flushed_key,
        "bloom_dram_bytes": s.bloom_dram_bytes,
        "table_dram_bytes": s.table_dram_bytes,
        "live_keys": s.live_keys,
        "shards": s.shards,
    })
}

impl Engine for TierKv {
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        let mut b = WriteBatch::with_capacity(batch.len());
        for (k, v) in batch {
            b.put(*k, *v);
        }
        Ok(self.db.write_batch(&b)?)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put(key, value)?)
    }

    fn get(&self, key: &[u8]) -> Result<bool> {
        Ok(self.db.get(key)?.is_some())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        Ok(self.db.delete(key)?)
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.sync()?)
    }

    fn dram_bytes_per_key(&self) -> Option<f64> {
        // Bloom filters + log tables + page maps over live keys: everything the engine keeps in DRAM
        // per key (the engine's own `dram_bytes_per_flushed_key` leaves the log tables out).
        let s = self.db.stats();
        (s.live_keys > 0)
            .then(|| (s.bloom_dram_bytes + s.table_dram_bytes) as f64 / s.live_keys as f64)
    }

    fn counters(&self) -> Option<serde_json::Value> {
        Some(summarize(&self.db.stats()))
    }

    fn notes(&self) -> String {
        "default Options (8 shards, 64 MiB logs, manual sync); load via write_batch".into()
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.db.close()?)
    }
}
