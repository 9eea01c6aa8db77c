//! The candystore adapter (feature `candystore`): default `Config` with `expected_number_of_keys`
//! set to the workload's key count (so it starts with enough shards instead of splitting during the
//! load). No batch API: a load batch is a loop of `set`. `sync` is `flush`.

use std::path::Path;

use anyhow::{anyhow, Result};
use candystore::{CandyStore, Config};

use super::Engine;

/// candystore sized for the workload.
pub struct Candy {
    db: CandyStore,
}

impl std::fmt::Debug for Candy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Candy")
    }
}

impl Candy {
    /// Creates a store in `dir` sized for `keys` keys.
    pub fn open(dir: &Path, keys: u64) -> Result<Candy> {
        let cfg = Config {
            expected_number_of_keys: keys as usize,
            ..Config::default()
        };
        let db = CandyStore::open(dir, cfg).map_err(|e| anyhow!("candystore: open: {e:#}"))?;
        Ok(Candy { db })
    }
}

fn err(e: anyhow::Error) -> anyhow::Error {
    anyhow!("candystore: {e:#}")
}

impl Engine for Candy {
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        for (k, v) in batch {
            self.db.set(*k, *v).map_err(err)?;
        }
        Ok(())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.set(key, value).map_err(err)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<bool> {
        Ok(self.db.get(key).map_err(err)?.is_some())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.db.remove(key).map_err(err)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.db.flush().map_err(err)
    }

    fn notes(&self) -> String {
        "default Config with expected_number_of_keys = keys; no batch API (load = set loop)".into()
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()
    }
}
