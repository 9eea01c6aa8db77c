//! The write side of `kvtool load`: records are gathered into `WriteBatch`es and written either on the
//! calling thread or by writer threads, one per group of shards. A record goes to the writer chosen by
//! the top bits of its key hash — the same bits that choose its shard — so all records of a key reach
//! the store in input order, and writers never contend for a shard. `barrier` waits until everything
//! handed over is written (used before a sync); `finish` drains and joins the writers and reports the
//! first write error. Owns no parsing and no policy on bad input.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Context as _;
use tierkv::hash::KeyHash;

use crate::engine::{Db, WriteBatch};
use crate::input::Item;

/// Batches queued per writer before the parser waits.
const QUEUE: usize = 4;

enum Msg {
    Batch(WriteBatch),
    Barrier(Sender<()>),
}

/// Hands batches to the store.
pub struct BatchWriter<'scope, 'env> {
    db: Option<&'env Db>,
    batches: Vec<WriteBatch>,
    senders: Vec<SyncSender<Msg>>,
    handles: Vec<ScopedJoinHandle<'scope, anyhow::Result<()>>>,
    free: Receiver<WriteBatch>,
    bits: u32,
    batch_size: usize,
    /// Records handed over (written, or queued for a writer).
    pub handed_over: u64,
}

impl std::fmt::Debug for BatchWriter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("writers", &self.senders.len())
            .finish_non_exhaustive()
    }
}

impl<'scope, 'env> BatchWriter<'scope, 'env> {
    /// A writer into `db` (`None`: count only, for `--dry-run`) with `threads` writer threads (a power
    /// of two; 1 writes on the calling thread).
    pub fn new(
        scope: &'scope Scope<'scope, 'env>,
        db: Option<&'env Db>,
        threads: usize,
        batch_size: usize,
    ) -> Self {
        let threads = if db.is_some() { threads.max(1) } else { 1 };
        let bits = threads.trailing_zeros();
        let (free_tx, free) = mpsc::channel::<WriteBatch>();
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        if threads > 1 {
            let db = db.expect("threads only with a store");
            for _ in 0..threads {
                let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
                let free_tx = free_tx.clone();
                senders.push(tx);
                handles.push(scope.spawn(move || write_loop(db, rx, free_tx)));
            }
        }
        BatchWriter {
            db,
            batches: (0..threads)
                .map(|_| WriteBatch::with_capacity(batch_size))
                .collect(),
            senders,
            handles,
            free,
            bits,
            batch_size,
            handed_over: 0,
        }
    }

    /// The store written to (`None` for a dry run).
    pub fn db(&self) -> Option<&'env Db> {
        self.db
    }

    /// Adds a record; returns true when a batch was handed over.
    pub fn add(&mut self, item: Item) -> anyhow::Result<bool> {
        let key = match &item {
            Item::Put(k, _) | Item::Delete(k) => k,
        };
        let part = if self.bits == 0 {
            0
        } else {
            KeyHash::of(key).shard(self.bits) as usize
        };
        let b = &mut self.batches[part];
        match item {
            Item::Put(k, v) => b.put(k, v),
            Item::Delete(k) => b.delete(k),
        };
        if b.len() >= self.batch_size {
            self.hand_over(part)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn hand_over(&mut self, part: usize) -> anyhow::Result<()> {
        if self.batches[part].is_empty() {
            return Ok(());
        }
        let n = self.batches[part].len() as u64;
        if self.senders.is_empty() {
            if let Some(db) = self.db {
                db.write_batch(&self.batches[part])
                    .context("cannot write a batch to the store")?;
            }
            self.batches[part].clear();
        } else {
            let fresh = self
                .free
                .try_recv()
                .unwrap_or_else(|_| WriteBatch::with_capacity(self.batch_size));
            let full = std::mem::replace(&mut self.batches[part], fresh);
            self.senders[part]
                .send(Msg::Batch(full))
                .map_err(|_| anyhow::anyhow!("a writer thread stopped"))?;
        }
        self.handed_over += n;
        Ok(())
    }

    /// Hands over every partial batch and waits until everything handed over is written.
    pub fn barrier(&mut self) -> anyhow::Result<()> {
        for part in 0..self.batches.len() {
            self.hand_over(part)?;
        }
        let (done_tx, done_rx) = mpsc::channel();
        for s in &self.senders {
            s.send(Msg::Barrier(done_tx.clone()))
                .map_err(|_| anyhow::anyhow!("a writer thread stopped"))?;
        }
        drop(done_tx);
        let mut acked = 0;
        while acked < self.senders.len() {
            match done_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(()) => acked += 1,
                // A writer that failed leaves its barrier unanswered in its queue (which stays
                // alive while we hold its sender): stop waiting once any writer has ended.
                Err(mpsc::RecvTimeoutError::Timeout)
                    if !self.handles.iter().any(|h| h.is_finished()) => {}
                Err(_) => anyhow::bail!("a writer thread stopped"),
            }
        }
        Ok(())
    }

    /// Writes what is left, stops the writers, and returns the first error: a writer's error first (it
    /// is the cause when handing over failed), else `fed`, the outcome of feeding records.
    pub fn finish<T>(mut self, fed: anyhow::Result<T>) -> anyhow::Result<T> {
        let flushed = if fed.is_ok() {
            (0..self.batches.len()).try_for_each(|p| self.hand_over(p))
        } else {
            Ok(())
        };
        self.senders.clear();
        let mut writer_error = None;
        for h in self.handles.drain(..) {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")));
            if let Err(e) = r {
                writer_error.get_or_insert(e);
            }
        }
        match writer_error {
            Some(e) => Err(e),
            None => flushed.and(fed),
        }
    }
}

fn write_loop(db: &Db, rx: Receiver<Msg>, free: Sender<WriteBatch>) -> anyhow::Result<()> {
    for msg in rx {
        match msg {
            Msg::Batch(mut b) => {
                db.write_batch(&b)
                    .context("cannot write a batch to the store")?;
                b.clear();
                let _ = free.send(b);
            }
            Msg::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Options;

    #[test]
    fn barrier_returns_when_a_writer_failed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db"), Options::default()).unwrap();
        let r = std::thread::scope(|scope| {
            let mut w = BatchWriter::new(scope, Some(&db), 2, 1);
            // A key the engine refuses: its writer thread stops with the error.
            w.add(Item::Put(vec![b'k'; 5000], b"v".to_vec())).unwrap();
            for i in 0..50u32 {
                // Fill the failed writer's queue too; handing over may fail once it is gone.
                if w.add(Item::Put(i.to_be_bytes().to_vec(), b"v".to_vec()))
                    .is_err()
                {
                    break;
                }
            }
            let barrier = w.barrier();
            (barrier.is_err(), w.finish(Ok(())))
        });
        assert!(r.0, "the barrier reported success after a writer failed");
        let e = r.1.unwrap_err();
        assert!(format!("{e:#}").contains("key"), "{e:#}");
    }
}
