//! A shard: its log parts, its published snapshot of the global table, and the read and write paths.
//!
//! Concurrency: `state` (a reader-writer lock) guards the active log part, the frozen parts awaiting
//! flush and the published [`Snapshot`]. Gets take it shared; puts and deletes take it exclusively for
//! the time of one append. The flush runs under `flusher` (one flush per shard at a time), reads the
//! frozen part and the snapshot without the state lock, writes new pages only into slots the published
//! snapshot does not reference, and takes the state lock exclusively just to publish the new snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::read_value;
use crate::error::{Error, Result};
use crate::flush::Flusher;
use crate::hash::KeyHash;
use crate::layout::ShardPaths;
use crate::log::{record_len, LogSegment, RecordKind, RecordRef, LOG_HEADER};
use crate::log_table::RobinHoodTable;
use crate::options::Options;
use crate::page::{self, Loc, PAGE_SIZE};
use crate::stats::{Counters, Served, Tier};

/// Payload bit set when a key was written more than once while in this log part (a hint that it is
/// hot; the flush may give it a hot-file copy).
pub(crate) const REWRITTEN: u64 = 1 << 32;

/// A log segment and the table of its newest record per key.
#[derive(Debug)]
pub(crate) struct LogPart {
    pub seg: LogSegment,
    pub table: RobinHoodTable,
}

impl LogPart {
    pub fn new(seg: LogSegment, expected_records: usize) -> LogPart {
        LogPart {
            seg,
            table: RobinHoodTable::with_capacity(expected_records),
        }
    }

    /// Offset of the newest record for `key`.
    #[inline]
    pub fn lookup(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.table
            .get(hash, |p| self.seg.key_at(p as u32) == key)
            .map(|p| p as u32)
    }

    /// Appends a record and points the table at it; a delete of a key that nothing older can hold
    /// drops the key from the table instead (its tombstone stays in the segment for replay).
    pub fn apply(
        &mut self,
        kind: RecordKind,
        key: &[u8],
        value: &[u8],
        hash: u64,
        older_may_hold: bool,
        seq: u64,
    ) -> Result<u32> {
        let off = self.seg.append(kind, key, value, seq)?;
        self.index(off, kind, key, hash, older_may_hold);
        Ok(off)
    }

    /// Offset of the newest record for `key` (skipping the probe when the table is empty).
    #[inline]
    pub fn find(&self, key: &[u8], hash: u64) -> Option<u32> {
        if self.table.is_empty() {
            None
        } else {
            self.lookup(key, hash)
        }
    }

    /// Points the table at the record at `off` (used by `apply` and by replay).
    pub fn index(
        &mut self,
        off: u32,
        kind: RecordKind,
        key: &[u8],
        hash: u64,
        older_may_hold: bool,
    ) {
        let seg = &self.seg;
        if kind == RecordKind::Delete && !older_may_hold {
            self.table.remove(hash, |p| seg.key_at(p as u32) == key);
            return;
        }
        // A put that replaces an earlier record of the key marks it rewritten (a hot-key hint).
        let eq = |p: u64| seg.key_at(p as u32) == key;
        self.table.insert_with(hash, eq, |old| match (old, kind) {
            (Some(_), RecordKind::Put) => off as u64 | REWRITTEN,
            _ => off as u64,
        });
    }
}

/// The published, immutable state of a shard's global table.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Durable state this snapshot reflects (its `bloom` bytes are dropped; see `filter`).
    pub ckpt: Checkpoint,
    pub filter: Filter,
    pub index_path: PathBuf,
    pub index_map: Option<Mmap>,
    /// One bit per index slot: set when the page's checksum was verified (or this process wrote it).
    pub verified: Arc<Vec<AtomicU64>>,
    pub data_path: PathBuf,
    pub data_map: Option<Mmap>,
    pub hot_path: PathBuf,
    pub hot_map: Option<Mmap>,
}

impl Snapshot {
    /// The page in `slot`, validated on first use.
    pub fn page(&self, slot: u32, bucket: u32) -> Result<&[u8]> {
        let start = slot as usize * PAGE_SIZE;
        let map = self.index_map.as_deref().unwrap_or(&[]);
        if slot == 0 || start + PAGE_SIZE > map.len() {
            return Err(Error::corruption(
                &self.index_path,
                start as u64,
                "page slot outside the index file",
            ));
        }
        let page = &map[start..start + PAGE_SIZE];
        let word = &self.verified[slot as usize / 64];
        let bit = 1u64 << (slot % 64);
        if word.load(Ordering::Relaxed) & bit == 0 {
            page::validate(page, slot, Some(bucket))
                .map_err(|reason| Error::corruption(&self.index_path, start as u64, reason))?;
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(page)
    }

    /// Walks the page chain of `bucket`, calling `f(slot, page)`.
    pub fn for_each_page<'s>(
        &'s self,
        bucket: u32,
        mut f: impl FnMut(u32, &'s [u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut slot = self.ckpt.page_map[bucket as usize];
        let mut hops = 0u32;
        while slot != 0 {
            let page = self.page(slot, bucket)?;
            if !f(slot, page)? {
                return Ok(());
            }
            slot = page::header(page).next;
            hops += 1;
            if hops > self.ckpt.index_slots {
                return Err(Error::corruption(
                    &self.index_path,
                    slot as u64 * PAGE_SIZE as u64,
                    "overflow chain loops",
                ));
            }
        }
        Ok(())
    }

    /// Finds `key` in the global table.
    pub fn find(&self, key: &[u8], hash: u64, counters: &Counters) -> Result<Option<Loc>> {
        let bucket = KeyHash(hash).bucket(self.ckpt.buckets);
        let mut found = None;
        self.for_each_page(bucket, |_, page| {
            counters.read(Tier::Index, PAGE_SIZE);
            found = page::find(page, key, hash);
            Ok(found.is_none())
        })?;
        Ok(found)
    }

    /// Reads the value at `loc` (the hot copy when there is one).
    pub fn read(&self, loc: &Loc, hash: u64, counters: &Counters) -> Result<(Vec<u8>, Served)> {
        if let Some(hot) = loc.hot_off {
            let v = read_value(
                self.hot_map.as_deref().unwrap_or(&[]),
                &self.hot_path,
                hot,
                loc.value_len,
                hash,
            )?;
            counters.read(Tier::Hot, v.len() + 4);
            return Ok((v, Served::Hot));
        }
        let v = read_value(
            self.data_map.as_deref().unwrap_or(&[]),
            &self.data_path,
            loc.data_off,
            loc.value_len,
            hash,
        )?;
        counters.read(Tier::Data, v.len() + 4);
        Ok((v, Served::Data))
    }
}

/// The mutable state of a shard.
#[derive(Debug)]
pub(crate) struct ShardState {
    pub active: LogPart,
    /// Full log parts waiting for their flush, oldest first.
    pub frozen: VecDeque<Arc<LogPart>>,
    pub snap: Arc<Snapshot>,
    pub next_seq: u64,
}

impl ShardState {
    /// The newest log record for `key`, searching the active part, then frozen parts newest first.
    #[inline]
    pub fn log_lookup(&self, key: &[u8], hash: u64) -> Option<RecordRef<'_>> {
        if let Some(off) = self.active.find(key, hash) {
            return Some(self.active.seg.record(off));
        }
        for part in self.frozen.iter().rev() {
            if let Some(off) = part.find(key, hash) {
                return Some(part.seg.record(off));
            }
        }
        None
    }

    /// True when a frozen part or the global table may hold `key`.
    pub fn older_may_hold(&self, key: &[u8], hash: u64) -> bool {
        self.frozen.iter().any(|p| p.lookup(key, hash).is_some())
            || self.snap.filter.may_contain(hash)
    }
}

/// One shard.
pub(crate) struct Shard {
    pub id: u32,
    pub paths: ShardPaths,
    pub state: RwLock<ShardState>,
    pub flusher: Mutex<Flusher>,
    pub counters: Counters,
    /// A log segment was created since the shard directory was last synced.
    pub dir_dirty: AtomicBool,
    pub opts: Arc<Options>,
    /// The store's global record sequence counter (shared by all shards; see `syncpoint.rs`).
    pub seq: Arc<AtomicU64>,
    /// Access-frequency counters of the hot tier.
    pub heat: crate::hot::Heat,
    /// Where background work (table growth) reports progress (see `Db::set_progress`).
    pub progress: Arc<parking_lot::RwLock<Option<Arc<dyn crate::db::Progress>>>>,
}

/// Makes every shard's log durable and advances the sync point (`Db`'s `sync_all`).
pub(crate) type SyncAll<'a> = &'a dyn Fn() -> Result<()>;

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("paths", &self.paths)
            .finish()
    }
}

/// Most full log parts a shard keeps before a writer must wait for (or run) a flush.
pub(crate) const MAX_FROZEN: usize = 1;

impl Shard {
    /// The value of `key`; the flag asks for a hot-set rebuild (see `hot.rs`).
    pub fn get(&self, key: &[u8], hash: u64) -> Result<(Option<Vec<u8>>, bool)> {
        let st = self.state.read();
        if let Some(rec) = st.log_lookup(key, hash) {
            self.counters
                .read(Tier::Log, record_len(rec.key, rec.value));
            let value = match rec.kind {
                RecordKind::Put => {
                    self.counters.served(Served::Log);
                    Some(rec.value.to_vec())
                }
                RecordKind::Delete => {
                    self.counters.served(Served::AbsentByLog);
                    None
                }
            };
            return Ok((value, false));
        }
        let snap = &st.snap;
        if !snap.filter.may_contain(hash) {
            self.counters
                .bloom_negatives
                .fetch_add(1, Ordering::Relaxed);
            self.counters.served(Served::AbsentByBloom);
            return Ok((None, false));
        }
        match snap.find(key, hash, &self.counters)? {
            Some(loc) => {
                let (v, served) = snap.read(&loc, hash, &self.counters)?;
                self.counters.served(served);
                let rebuild = self.heat.touch(hash, served == Served::Data);
                Ok((Some(v), rebuild))
            }
            None => {
                self.counters
                    .bloom_false_positives
                    .fetch_add(1, Ordering::Relaxed);
                self.counters.served(Served::AbsentAfterPage);
                Ok((None, false))
            }
        }
    }

    /// Applies puts and deletes in order. Returns true when a log part was frozen (a flush is due).
    pub fn write<'a>(
        &self,
        ops: impl Iterator<Item = (RecordKind, &'a [u8], &'a [u8], u64)>,
        sync_all: SyncAll<'_>,
    ) -> Result<bool> {
        let mut st = self.state.write();
        let mut rotated = false;
        for (kind, key, value, hash) in ops {
            let r;
            (st, r) = self.make_room(st, record_len(key, value), sync_all)?;
            rotated |= r;
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            self.append_locked(&mut st, kind, key, value, hash, seq)?;
        }
        Ok(rotated)
    }

    /// Makes room for `len` bytes of records in the active part: freezes it when full, and when too
    /// many parts already wait for a flush, flushes the oldest first (back-pressure; the lock is
    /// released meanwhile). Returns the guard and whether a part was frozen.
    pub fn make_room<'s>(
        &'s self,
        mut st: RwLockWriteGuard<'s, ShardState>,
        len: usize,
        sync_all: SyncAll<'_>,
    ) -> Result<(RwLockWriteGuard<'s, ShardState>, bool)> {
        if st.active.seg.fits(len) {
            return Ok((st, false));
        }
        while st.frozen.len() >= MAX_FROZEN {
            drop(st);
            self.flush_oldest(sync_all)?;
            st = self.state.write();
        }
        if st.active.seg.fits(len) {
            return Ok((st, false));
        }
        self.rotate(&mut st, len)?;
        Ok((st, true))
    }

    /// Appends one record under the shard lock (room already made) and counts it.
    pub fn append_locked(
        &self,
        st: &mut ShardState,
        kind: RecordKind,
        key: &[u8],
        value: &[u8],
        hash: u64,
        seq: u64,
    ) -> Result<()> {
        let older = kind == RecordKind::Delete && st.older_may_hold(key, hash);
        st.active.apply(kind, key, value, hash, older, seq)?;
        self.counters
            .write(Tier::Log, 1, record_len(key, value) as u64);
        match kind {
            RecordKind::Put => self.counters.puts.fetch_add(1, Ordering::Relaxed),
            RecordKind::Delete => self.counters.deletes.fetch_add(1, Ordering::Relaxed),
        };
        Ok(())
    }

    /// Freezes the active part and starts a new segment with room for at least `min_len` bytes.
    pub fn rotate(&self, st: &mut ShardState, min_len: usize) -> Result<()> {
        let seq = st.next_seq;
        let capacity = self
            .opts
            .log_capacity_bytes
            .max((LOG_HEADER + min_len) as u64);
        st.active.seg.write_out()?;
        let prev_len = st.active.seg.len() as u32;
        let seg = LogSegment::create(self.paths.log(seq), self.id, seq, capacity, prev_len)?;
        st.next_seq += 1;
        self.dir_dirty.store(true, Ordering::Release);
        let expected = st.active.table.len().max(1024);
        let old = std::mem::replace(&mut st.active, LogPart::new(seg, expected));
        if old.seg.is_empty() {
            crate::io::remove_if_exists(old.seg.path())?;
        } else {
            st.frozen.push_back(Arc::new(old));
        }
        Ok(())
    }

    /// Makes every record logged in this shard durable. Returns the global sequence counter as read
    /// under the shard lock: every record of this shard numbered below it is now durable.
    pub fn sync_log(&self) -> Result<u64> {
        // Write the active buffer out under the lock (a copy into the page cache); fsync outside it.
        // Segments with nothing new since their last sync are skipped.
        let (active, frozen, counter) = {
            let mut st = self.state.write();
            st.active.seg.write_out()?;
            let frozen: Vec<Arc<LogPart>> = st.frozen.iter().cloned().collect();
            let counter = self.seq.load(Ordering::Relaxed);
            let seg = &st.active.seg;
            let active = (
                seg.file(),
                seg.path.clone(),
                seg.synced_mark(),
                seg.written_len(),
            );
            (active, frozen, counter)
        };
        for part in &frozen {
            let seg = &part.seg;
            LogSegment::sync_file(
                &seg.file(),
                &seg.path,
                &seg.synced_mark(),
                seg.written_len(),
            )?;
        }
        LogSegment::sync_file(&active.0, &active.1, &active.2, active.3)?;
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = crate::io::sync_dir(&self.paths.ssd) {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(counter)
    }

    /// Flushes the oldest frozen part, if any. Returns whether one was flushed. Every log is synced
    /// first (`sync_all`), so no record enters a table above the durable sync point: recovery can
    /// then treat a missing sequence number above the sync point as the end of the history.
    pub fn flush_oldest(&self, sync_all: SyncAll<'_>) -> Result<bool> {
        let mut fl = self.flusher.lock();
        if self.state.read().frozen.is_empty() {
            return Ok(false);
        }
        sync_all()?;
        let (part, snap) = {
            let st = self.state.read();
            match st.frozen.front() {
                Some(p) => (p.clone(), st.snap.clone()),
                None => return Ok(false),
            }
        };
        let new_snap = crate::flush::flush_part(self, &mut fl, &part, &snap)?;
        let old_index = snap.index_path.clone();
        let new_index = new_snap.index_path.clone();
        {
            let mut st = self.state.write();
            st.snap = Arc::new(new_snap);
            let popped = st.frozen.pop_front();
            debug_assert!(popped.is_some_and(|p| Arc::ptr_eq(&p, &part)));
        }
        crate::io::remove_if_exists(part.seg.path())?;
        if old_index != new_index {
            crate::io::remove_if_exists(&old_index)?;
        }
        // Updates left the hot file clogged with dead copies: rebuild the hot set (which rewrites the
        // hot file with live copies only) so hot keys can keep their copies.
        let hot_dead = self.state.read().snap.ckpt.hot_dead_bytes;
        drop(fl);
        if self.opts.hot_capacity_bytes > 0 && hot_dead >= self.opts.hot_capacity_bytes / 4 {
            crate::hot::rebuild_hot_set(self)?;
        }
        Ok(true)
    }

    /// Freezes the active part (when it holds records) and flushes every frozen part.
    pub fn flush_all(&self, sync_all: SyncAll<'_>) -> Result<()> {
        {
            let mut st = self.state.write();
            if !st.active.seg.is_empty() {
                self.rotate(&mut st, 0)?;
            }
        }
        while self.flush_oldest(sync_all)? {}
        Ok(())
    }
}
