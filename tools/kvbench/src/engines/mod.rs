//! One adapter per in-process engine behind the [`Engine`] trait: open a store in a directory, load
//! batches, put, get, delete, make durable, report counters. Peers from crates.io sit behind cargo
//! features (`redb`, `fjall`, `candystore`) so the default build stays light. External engines
//! (RocksDB, tkrzw) are not here: see [`crate::external`].
//!
//! Every adapter uses the engine's defaults except where a default would make the comparison
//! meaningless (compression off where values are random anyway; no fsync per operation, since tierkv's
//! default is a manual sync); each deviation is listed by [`Engine::notes`] and in `docs/benchmarks.md`.

use std::path::Path;

use anyhow::{bail, Result};

mod null_engine;
mod tierkv_engine;

#[cfg(feature = "candystore")]
mod candystore_engine;
#[cfg(feature = "fjall")]
mod fjall_engine;
#[cfg(feature = "redb")]
mod redb_engine;

/// A key-value engine as the driver sees it. `Send + Sync`: client threads share one handle.
pub trait Engine: Send + Sync {
    /// Writes a batch of the load phase (`(key, value)` pairs, new keys).
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()>;
    /// Sets one key.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Reads one key; true when found. The value is read in full.
    fn get(&self, key: &[u8]) -> Result<bool>;
    /// Removes one key.
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// Makes every acknowledged write durable.
    fn sync(&self) -> Result<()>;
    /// DRAM per key of the engine's in-memory indexes, when the engine reports it.
    fn dram_bytes_per_key(&self) -> Option<f64> {
        None
    }
    /// Engine-specific counters (a JSON snapshot), when the engine has them.
    fn counters(&self) -> Option<serde_json::Value> {
        None
    }
    /// How this adapter departs from the engine's defaults.
    fn notes(&self) -> String {
        String::new()
    }
    /// Closes the store cleanly (its own shutdown work counts in the run's bytes written).
    fn close(self: Box<Self>) -> Result<()>;
}

/// In-process engines compiled into this binary.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["tierkv", "null"];
    if cfg!(feature = "redb") {
        v.push("redb");
    }
    if cfg!(feature = "fjall") {
        v.push("fjall");
    }
    if cfg!(feature = "candystore") {
        v.push("candystore");
    }
    v
}

/// All in-process engine names kvbench knows, compiled in or not.
pub const IN_PROCESS: &[&str] = &["tierkv", "null", "redb", "fjall", "candystore"];

/// Opens engine `name` on a fresh directory `dir`, sized for `keys` keys.
pub fn open(name: &str, dir: &Path, keys: u64) -> Result<Box<dyn Engine>> {
    let _ = keys;
    match name {
        "tierkv" => Ok(Box::new(tierkv_engine::TierKv::open(dir)?)),
        "null" => Ok(Box::new(null_engine::Null)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(redb_engine::Redb::open(dir)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall_engine::Fjall::open(dir)?)),
        #[cfg(feature = "candystore")]
        "candystore" => Ok(Box::new(candystore_engine::Candy::open(dir, keys)?)),
        n if IN_PROCESS.contains(&n) => {
            bail!("engine `{n}` is not compiled into this kvbench: rebuild with `--features {n}`")
        }
        n => bail!(
            "unknown in-process engine `{n}` (known: {})",
            IN_PROCESS.join(", ")
        ),
    }
}
