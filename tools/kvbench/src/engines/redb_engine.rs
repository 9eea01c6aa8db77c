//! The redb adapter (feature `redb`): one table of byte keys and values. Load batches and run-phase
//! writes commit with `Durability::None` (no fsync, like tierkv's manual sync); `sync` commits an
//! empty transaction with `Durability::Immediate`, which also lets redb free pages. Every 64th
//! write transaction is durable, as redb's docs require to bound file growth (pages are only freed
//! by durable commits: with rarer ones a 200 000-key load grew the file to 30× the data).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use redb::{Database, Durability, TableDefinition};

use super::Engine;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// redb with default cache size.
#[derive(Debug)]
pub struct Redb {
    db: Database,
    writes: AtomicU64,
}

impl Redb {
    /// Creates `dir/redb.db`.
    pub fn open(dir: &Path) -> Result<Redb> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("redb.db")).context("redb: create")?;
        Ok(Redb {
            db,
            writes: AtomicU64::new(0),
        })
    }

    fn write(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<()>) -> Result<()> {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let mut tx = self.db.begin_write()?;
        if n % 64 != 63 {
            tx.set_durability(Durability::None);
        }
        {
            let mut t = tx.open_table(TABLE)?;
            f(&mut t)?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Engine for Redb {
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        self.write(|t| {
            for (k, v) in batch {
                t.insert(*k, *v)?;
            }
            Ok(())
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(|t| {
            t.insert(key, value)?;
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<bool> {
        let tx = self.db.begin_read()?;
        let t = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let found = t.get(key)?.map(|v| v.value().len()).is_some();
        Ok(found)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.write(|t| {
            t.remove(key)?;
            Ok(())
        })
    }

    fn sync(&self) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.commit()?;
        Ok(())
    }

    fn notes(&self) -> String {
        "one write txn per batch/op with Durability::None, a durable commit every 64 and at sync"
            .into()
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()
    }
}
