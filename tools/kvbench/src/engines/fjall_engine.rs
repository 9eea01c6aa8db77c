//! The fjall adapter (feature `fjall`): one partition, default keyspace config except a 256 MiB block
//! cache (the same as RocksDB gets; fjall's default is 32 MiB); load batches go through `Batch`;
//! `sync` is `persist(SyncAll)`. Compression stays at fjall's default: values are
//! random, so it gains nothing and costs a little CPU, as it would for a user.

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::Engine;

/// fjall with default options.
pub struct Fjall {
    ks: Keyspace,
    part: PartitionHandle,
}

impl std::fmt::Debug for Fjall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fjall")
    }
}

impl Fjall {
    /// Creates a keyspace in `dir`.
    pub fn open(dir: &Path) -> Result<Fjall> {
        let ks = Config::new(dir)
            .cache_size(256 << 20)
            .open()
            .context("fjall: open keyspace")?;
        let part = ks
            .open_partition("kv", PartitionCreateOptions::default())
            .context("fjall: open partition")?;
        Ok(Fjall { ks, part })
    }
}

impl Engine for Fjall {
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        let mut b = self.ks.batch();
        for (k, v) in batch {
            b.insert(&self.part, *k, *v);
        }
        Ok(b.commit()?)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.part.insert(key, value)?)
    }

    fn get(&self, key: &[u8]) -> Result<bool> {
        Ok(self.part.get(key)?.is_some())
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        Ok(self.part.remove(key)?)
    }

    fn sync(&self) -> Result<()> {
        Ok(self.ks.persist(PersistMode::SyncAll)?)
    }

    fn notes(&self) -> String {
        "default Config but a 256 MiB block cache; default partition options; load via Batch".into()
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()
    }
}
