//! A shard: its log parts, its published snapshot of the global table, and the read and write paths.
//!
//! Concurrency: `state` (a reader-writer lock) guards the active log part, the frozen parts awaiting
//! flush and the published [`Snapshot`]. Gets take it shared — except while the shard's log is empty,
//! when they answer from the snapshot in `quiet` without any lock (see [`Shard::get_while_quiet`]);
//! puts and deletes take it exclusively for the time of one append. The flush runs under `flusher`
//! (one flush per shard at a time), reads the frozen part and the snapshot without the state lock, writes new pages only into slots the published
//! snapshot does not reference, and takes the state lock exclusively just to publish the new snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use memmap2::Mmap;
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::{check_record_bounds, checked_value, read_value, record_bytes};
use crate::error::{Error, Result};
use crate::flush::Flusher;
use crate::hash::KeyHash;
use crate::io::direct::{AlignedBuf, AlignedRange};
use crate::io::page_cache::CachedPage;
use crate::io::uring::{read_batch, ReadReq};
use crate::io::{IoSetup, StorageFile};
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

/// The files a snapshot reads with direct I/O (opened `O_DIRECT`), per tier; `None` reads the map.
#[derive(Debug, Default)]
pub(crate) struct DirectFiles {
    pub index: Option<StorageFile>,
    pub data: Option<StorageFile>,
    pub hot: Option<StorageFile>,
}

/// A page as a read returns it: borrowed from the index map, or read with direct I/O (and cached).
#[derive(Debug)]
pub(crate) enum PageBytes<'s> {
    Mapped(&'s [u8]),
    Read(CachedPage),
}

impl PageBytes<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            PageBytes::Mapped(p) => p,
            PageBytes::Read(p) => &p.as_slice()[..PAGE_SIZE],
        }
    }
}

/// Which of a snapshot's index pages were validated (magic, checksum, own slot, bucket, layout), so
/// a page read in place is validated once rather than on every read.
#[derive(Debug, Clone)]
pub(crate) enum Verified {
    /// One bit per slot, set once the page was validated or this process wrote it: a writer's
    /// snapshots, whose referenced pages no one else rewrites.
    Bits(Arc<Vec<AtomicU64>>),
    /// Per slot, the generation of the page last validated in it ([`Verified::NONE`]: none yet): a
    /// read-only handle's snapshots, which share it across reloads of one index file. The writer
    /// process reuses slots, but a rewrite always gives the page a newer generation (the flush's), so
    /// a page whose header still shows the validated generation is the page that was validated, and a
    /// reload re-validates only the pages the writer rewrote since. This holds for pages read in
    /// place, which the reader does only while the seqlock of `reader.rs` shows that nothing the
    /// snapshot references is being rewritten; every copied page is validated in full.
    Generations(Arc<Vec<AtomicU64>>),
}

impl Verified {
    /// No generation validated yet.
    const NONE: u64 = u64::MAX;

    /// A bit set for `slots` slots, all clear.
    pub fn bits(slots: u32) -> Verified {
        Verified::Bits(Arc::new(
            (0..(slots as usize).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        ))
    }

    /// Per-slot generations for `slots` slots: those of `previous` (a read-only handle's snapshot of
    /// the same index file), shared when it covers as many slots, none otherwise.
    pub fn generations(slots: u32, previous: Option<&Verified>) -> Verified {
        let previous: &[AtomicU64] = match previous {
            Some(Verified::Generations(g)) if g.len() >= slots as usize => {
                return Verified::Generations(g.clone())
            }
            Some(Verified::Generations(g)) => g,
            _ => &[],
        };
        let g = (0..slots as usize)
            .map(|i| {
                let old = previous.get(i).map(|g| g.load(Ordering::Relaxed));
                AtomicU64::new(old.unwrap_or(Self::NONE))
            })
            .collect();
        Verified::Generations(Arc::new(g))
    }

    /// Whether the page now in `slot` (expected to belong to `bucket`) was validated.
    #[inline]
    fn covers(&self, slot: u32, bucket: u32, page: &[u8]) -> bool {
        match self {
            Verified::Bits(bits) => {
                bits[slot as usize / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
            }
            Verified::Generations(g) => {
                let h = page::header(page);
                let seen = g.get(slot as usize).map(|g| g.load(Ordering::Relaxed));
                seen.is_some_and(|seen| seen != Self::NONE && seen == h.generation)
                    && h.slot == slot
                    && h.bucket == bucket
            }
        }
    }

    /// Records that the page of `generation` in `slot` was validated.
    #[inline]
    pub fn mark(&self, slot: u32, generation: u64) {
        match self {
            Verified::Bits(bits) => {
                bits[slot as usize / 64].fetch_or(1 << (slot % 64), Ordering::Relaxed);
            }
            Verified::Generations(g) => {
                if let Some(g) = g.get(slot as usize) {
                    g.store(generation, Ordering::Relaxed);
                }
            }
        }
    }

    /// The bit words of a writer's set (empty for per-slot generations).
    pub fn bit_words(&self) -> &[AtomicU64] {
        match self {
            Verified::Bits(bits) => bits,
            Verified::Generations(_) => &[],
        }
    }

    /// DRAM it takes, bytes.
    pub fn dram_bytes(&self) -> u64 {
        match self {
            Verified::Bits(w) | Verified::Generations(w) => w.len() as u64 * 8,
        }
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
    /// Which pages were validated, so each is validated once rather than on every read.
    pub verified: Verified,
    pub data_path: PathBuf,
    pub data_map: Option<Mmap>,
    pub hot_path: PathBuf,
    pub hot_map: Option<Mmap>,
    /// Files `get` and `multi_get` read with direct I/O.
    pub direct: DirectFiles,
    pub io: IoSetup,
    /// Another process writes these files (this is a read-only handle's snapshot, see `reader.rs`):
    /// the writer may reuse the slots and extents this snapshot references once it has flushed twice
    /// more, so pages are read in place only while the publication board shows nothing was reused
    /// (`reader.rs`), and otherwise copied out of the map and validated after the copy, on every
    /// read; a page newer than `ckpt.generation` is refused (the caller refreshes and retries).
    pub shared: bool,
    /// For a `shared` snapshot: the writer's publication count for this shard, loaded before the
    /// checkpoint was read (`reader.rs`: while the count stays there, nothing this snapshot
    /// references can be rewritten, so pages may be read in place). Advanced when the count moved
    /// but a reload found this very checkpoint still the newest (as when a writer opens and bumps
    /// every count): the checkpoint was then read after the newer count was loaded.
    pub published: AtomicU64,
}

impl Snapshot {
    /// The answer for `key` in this snapshot — Bloom filter, then page chain (pages copied out first
    /// when `copy`), then value — and where it was served from. The caller counts the get once it
    /// keeps the answer; the reads and the filter's verdicts are counted as they happen.
    #[inline]
    pub fn lookup(
        &self,
        key: &[u8],
        hash: u64,
        counters: &Counters,
        copy: bool,
    ) -> Result<(Option<Vec<u8>>, Served)> {
        if !self.filter.may_contain(hash) {
            counters.bloom_negative();
            return Ok((None, Served::AbsentByBloom));
        }
        match self.find_as(key, hash, counters, copy)? {
            Some(loc) => {
                let (v, served) = self.read(&loc, hash, counters)?;
                Ok((Some(v), served))
            }
            None => {
                counters.bloom_false_positive();
                Ok((None, Served::AbsentAfterPage))
            }
        }
    }

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
        if self.verified.covers(slot, bucket, page) {
            // Cheap header checks only; a shared snapshot still refuses a page newer than itself.
            self.check_generation(&page::header(page))
                .map_err(|reason| Error::corruption(&self.index_path, start as u64, reason))?;
        } else {
            let h = page::validate(page, slot, Some(bucket))
                .and_then(|h| self.check_generation(&h).map(|()| h))
                .map_err(|reason| Error::corruption(&self.index_path, start as u64, reason))?;
            self.verified.mark(slot, h.generation);
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
            self.check_hops(slot, hops)?;
        }
        Ok(())
    }

    /// Checks that `slot` may follow `hops` pages of a chain (a longer chain loops).
    fn check_hops(&self, slot: u32, hops: u32) -> Result<()> {
        if hops > self.ckpt.index_slots {
            return Err(Error::corruption(
                &self.index_path,
                slot as u64 * PAGE_SIZE as u64,
                "overflow chain loops",
            ));
        }
        Ok(())
    }

    /// The page in `slot` for a `get`: from the shard's page cache, read with direct I/O, or from
    /// the map; counts a read of the index tier when it reaches the file.
    pub fn page_for_get(
        &self,
        slot: u32,
        bucket: u32,
        counters: &Counters,
    ) -> Result<PageBytes<'_>> {
        self.page_for_get_as(slot, bucket, counters, self.shared)
    }

    /// [`Self::page_for_get`], copying a mapped page out first when `copy` (a `shared` snapshot's
    /// reader decides when the map may be read in place).
    pub fn page_for_get_as(
        &self,
        slot: u32,
        bucket: u32,
        counters: &Counters,
        copy: bool,
    ) -> Result<PageBytes<'_>> {
        let Some(file) = &self.direct.index else {
            counters.read(Tier::Index, PAGE_SIZE);
            if copy {
                return self.copied_page(slot, bucket).map(PageBytes::Read);
            }
            return self.page(slot, bucket).map(PageBytes::Mapped);
        };
        if let Some(page) = self.cached_page(slot, counters) {
            return Ok(PageBytes::Read(page));
        }
        let offset = self.page_offset(slot)?;
        let mut buf = AlignedBuf::zeroed(PAGE_SIZE);
        file.read_exact_at(&mut buf.as_mut_slice()[..PAGE_SIZE], offset)?;
        counters.read(Tier::Index, PAGE_SIZE);
        self.accept_page(buf, slot, bucket).map(PageBytes::Read)
    }

    /// A private copy of the page in `slot`, validated after the copy: the only way a `shared`
    /// snapshot reads a page, so a concurrent rewrite by the writer process is seen whole or caught
    /// (checksum, own slot, bucket, generation), never half-used.
    fn copied_page(&self, slot: u32, bucket: u32) -> Result<CachedPage> {
        let start = self.page_offset(slot)? as usize;
        let map = self.index_map.as_deref().unwrap_or(&[]);
        let Some(bytes) = map.get(start..start + PAGE_SIZE) else {
            return Err(Error::corruption(
                &self.index_path,
                start as u64,
                "page slot outside the index file",
            ));
        };
        let mut buf = AlignedBuf::zeroed(PAGE_SIZE);
        buf.as_mut_slice()[..PAGE_SIZE].copy_from_slice(bytes);
        self.accept_page(buf, slot, bucket)
    }

    /// The cached copy of `slot`, counted as a cache hit.
    fn cached_page(&self, slot: u32, counters: &Counters) -> Option<CachedPage> {
        let page = self.io.cache.as_ref()?.get(self.ckpt.index_file, slot)?;
        counters.cache_hit(Tier::Index);
        Some(page)
    }

    /// File offset of `slot`, checked against the index file's length.
    fn page_offset(&self, slot: u32) -> Result<u64> {
        let offset = slot as u64 * PAGE_SIZE as u64;
        if slot == 0 || slot >= self.ckpt.index_slots {
            return Err(Error::corruption(
                &self.index_path,
                offset,
                "page slot outside the index file",
            ));
        }
        Ok(offset)
    }

    /// Validates a page read with direct I/O (or copied from a shared map) and caches it.
    fn accept_page(&self, buf: AlignedBuf, slot: u32, bucket: u32) -> Result<CachedPage> {
        let offset = slot as u64 * PAGE_SIZE as u64;
        page::validate(&buf.as_slice()[..PAGE_SIZE], slot, Some(bucket))
            .and_then(|h| self.check_generation(&h))
            .map_err(|reason| Error::corruption(&self.index_path, offset, reason))?;
        let page = Arc::new(buf);
        if let Some(cache) = &self.io.cache {
            cache.insert(self.ckpt.index_file, slot, page.clone());
        }
        Ok(page)
    }

    /// In a `shared` snapshot, refuses a page written after this snapshot's checkpoint: its slot
    /// was freed and reused by a later flush of the writer, so it is not the page the checkpoint
    /// references (pages in a slot only ever get newer generations).
    pub fn check_generation(&self, h: &page::PageHeader) -> std::result::Result<(), String> {
        if self.shared && h.generation > self.ckpt.generation {
            return Err(format!(
                "page of generation {} is newer than this reader's checkpoint (generation {}): \
                 the writer reused its slot",
                h.generation, self.ckpt.generation
            ));
        }
        Ok(())
    }

    /// Walks the page chain of `bucket` the way a get reads pages (mapped, copied when `shared`, or
    /// read with direct I/O), calling `f` with each page until it returns false.
    pub fn walk_chain(
        &self,
        bucket: u32,
        counters: &Counters,
        copy: bool,
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        let mut slot = self.ckpt.page_map[bucket as usize];
        let mut hops = 0;
        while slot != 0 {
            let page = self.page_for_get_as(slot, bucket, counters, copy)?;
            if !f(page.bytes()) {
                return Ok(());
            }
            slot = page::header(page.bytes()).next;
            hops += 1;
            self.check_hops(slot, hops)?;
        }
        Ok(())
    }

    /// Finds `key` in the global table.
    pub fn find(&self, key: &[u8], hash: u64, counters: &Counters) -> Result<Option<Loc>> {
        self.find_as(key, hash, counters, self.shared)
    }

    /// [`Self::find`], copying each mapped page out first when `copy`.
    pub fn find_as(
        &self,
        key: &[u8],
        hash: u64,
        counters: &Counters,
        copy: bool,
    ) -> Result<Option<Loc>> {
        let bucket = KeyHash(hash).bucket(self.ckpt.buckets);
        let mut found = None;
        self.walk_chain(bucket, counters, copy, |page| {
            found = page::find(page, key, hash);
            found.is_none()
        })?;
        Ok(found)
    }

    /// Visits the entries of buckets `from..` with their values, bucket by bucket, skipping keys
    /// `shadowed` says a newer log record hides. Stops when `f` returns false. Returns the bucket
    /// being visited when an error struck (a read-only scan resumes there after a refresh) with the
    /// error, or `Ok(true)` when `f` never asked to stop.
    pub fn scan_from(
        &self,
        from: u32,
        shadowed: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> std::result::Result<bool, (u32, Error)> {
        // Scans are not gets: their page and value reads stay out of the shard's counters.
        let uncounted = Counters::default();
        for b in from..self.ckpt.page_map.len() as u32 {
            let mut go_on = true;
            let mut failed = None;
            // The bucket's entries are collected first: a bucket is visited whole or not at all, so
            // a scan resumed at bucket `b` repeats nothing.
            let mut entries: Vec<(Vec<u8>, Loc)> = Vec::new();
            self.walk_chain(b, &uncounted, self.shared, |p| {
                entries.extend(page::entries(p).map(|(k, loc, _)| (k.to_vec(), loc)));
                true
            })
            .map_err(|e| (b, e))?;
            let mut values = Vec::with_capacity(entries.len());
            for (k, loc) in &entries {
                if shadowed(k) {
                    continue;
                }
                match self.read(loc, KeyHash::of(k).0, &uncounted) {
                    Ok((v, _)) => values.push((k, v)),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                return Err((b, e));
            }
            for (k, v) in values {
                if !f(k, &v) {
                    go_on = false;
                    break;
                }
            }
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Where the value at `loc` is read from: the hot copy when there is one.
    fn value_source(&self, loc: &Loc) -> ValueSource<'_> {
        match loc.hot_off {
            Some(off) => ValueSource {
                tier: Tier::Hot,
                served: Served::Hot,
                path: &self.hot_path,
                map: self.hot_map.as_deref().unwrap_or(&[]),
                file: self.direct.hot.as_ref(),
                end: self.ckpt.hot_end,
                off,
            },
            None => ValueSource {
                tier: Tier::Data,
                served: Served::Data,
                path: &self.data_path,
                map: self.data_map.as_deref().unwrap_or(&[]),
                file: self.direct.data.as_ref(),
                end: self.ckpt.data_end,
                off: loc.data_off,
            },
        }
    }

    /// Reads the value at `loc` (the hot copy when there is one).
    pub fn read(&self, loc: &Loc, hash: u64, counters: &Counters) -> Result<(Vec<u8>, Served)> {
        let src = self.value_source(loc);
        let v = match src.file {
            None => {
                let v = read_value(src.map, src.path, src.off, loc.value_len, hash)?;
                counters.read(src.tier, record_bytes(loc.value_len));
                v
            }
            Some(file) => {
                check_record_bounds(src.end, src.path, src.off, loc.value_len)?;
                let range = AlignedRange::covering(src.off, record_bytes(loc.value_len));
                let mut buf = range.buffer();
                file.read_at_least(buf.as_mut_slice(), range.offset, 0, range.skip + range.want)?;
                counters.read(src.tier, range.len);
                checked_value(range.wanted(&buf), src.path, src.off, hash)?.to_vec()
            }
        };
        Ok((v, src.served))
    }
}

/// The file a value is read from and how.
struct ValueSource<'s> {
    tier: Tier,
    served: Served,
    path: &'s std::path::Path,
    map: &'s [u8],
    /// The direct-I/O file, when the tier is read that way.
    file: Option<&'s StorageFile>,
    /// The file's end as the snapshot knows it.
    end: u64,
    off: u64,
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
    /// No record waits in the log: no active record, no frozen part.
    #[inline]
    pub fn log_is_empty(&self) -> bool {
        self.frozen.is_empty() && self.active.seg.is_empty()
    }

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
    /// How the shard's files are read and written (batched I/O, direct tiers, page cache).
    pub io: IoSetup,
    /// Where each stored checkpoint is announced to read-only processes (`publish.rs`), and this
    /// shard's position on it (its index in routing order).
    pub board: Arc<crate::publish::Board>,
    pub position: usize,
    /// The published snapshot while the shard's log is empty (no active records, no frozen part),
    /// else `None`: a get then answers from it without taking the state lock (see
    /// [`Shard::get_while_quiet`]). Written only under the state's write lock, by
    /// [`Shard::set_quiet`] and by the first append into an empty log.
    pub quiet: ArcSwapOption<Snapshot>,
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
        if let Some(answer) = self.get_while_quiet(key, hash) {
            return answer;
        }
        let st = self.state.read();
        if let Some(answer) = self.answer_from_log(&st, key, hash) {
            return Ok((answer, false));
        }
        let (v, served) = st.snap.lookup(key, hash, &self.counters, st.snap.shared)?;
        Ok((v, self.count_answer(served, hash)))
    }

    /// A get that takes no lock, on a shard whose log is empty: the answer is the published
    /// snapshot's, so the get writes no shared cache line (threads reading one shard do not slow
    /// each other down) and skips the log. `None` when the log is not empty, or when a write or a
    /// new snapshot came during the read: the caller then takes the state lock.
    ///
    /// Why reading the snapshot without the lock is safe: the lock is what keeps a flush from
    /// publishing while a get reads, and the pages and extents a snapshot references are reused only
    /// by the flush *after* the one that replaces it (`flush.rs`). Here, a replacement (or the first
    /// write, which must come before any flush) changes `quiet` under the write lock, and `quiet` is
    /// loaded again after the read, behind an acquire fence (a seqlock on the snapshot pointer; the
    /// snapshot is held, so its address cannot come back): while it still holds the same snapshot,
    /// nothing that snapshot references was rewritten, and the answer stands. A read that raced a
    /// rewrite is dropped, whatever it found (a page validated earlier is not validated again).
    #[inline]
    fn get_while_quiet(&self, key: &[u8], hash: u64) -> Option<Result<(Option<Vec<u8>>, bool)>> {
        let quiet = self.quiet.load();
        let snap = quiet.as_ref()?;
        let answer = snap.lookup(key, hash, &self.counters, false);
        std::sync::atomic::fence(Ordering::Acquire);
        let still = self.quiet.load();
        if !still.as_ref().is_some_and(|now| Arc::ptr_eq(now, snap)) {
            return None;
        }
        Some(answer.map(|(v, served)| (v, self.count_answer(served, hash))))
    }

    /// Counts a get the snapshot answered ([`Snapshot::lookup`] counted the filter's part); true
    /// asks for a hot-set rebuild.
    fn count_answer(&self, served: Served, hash: u64) -> bool {
        match served {
            Served::Hot | Served::Data => self.count_found(served, hash),
            _ => {
                self.counters.served(served);
                false
            }
        }
    }

    /// Offers the state's snapshot to lock-free gets when its log is empty, or withdraws it. Called
    /// under the state's write lock after the snapshot or the log parts changed.
    pub fn set_quiet(&self, st: &ShardState) {
        self.quiet.store(st.log_is_empty().then(|| st.snap.clone()));
    }

    /// The answer for `key` when the log or the Bloom filter gives it (counted), or `None` when the
    /// global table must be searched.
    #[allow(clippy::option_option)]
    fn answer_in_memory(&self, st: &ShardState, key: &[u8], hash: u64) -> Option<Option<Vec<u8>>> {
        if let Some(answer) = self.answer_from_log(st, key, hash) {
            return Some(answer);
        }
        if !st.snap.filter.may_contain(hash) {
            self.counters.bloom_negative();
            self.counters.served(Served::AbsentByBloom);
            return Some(None);
        }
        None
    }

    /// The answer for `key` when a log part holds a record of it (counted), else `None`.
    #[allow(clippy::option_option)]
    fn answer_from_log(&self, st: &ShardState, key: &[u8], hash: u64) -> Option<Option<Vec<u8>>> {
        if let Some(rec) = st.log_lookup(key, hash) {
            self.counters
                .read(Tier::Log, record_len(rec.key, rec.value));
            return Some(match rec.kind {
                RecordKind::Put => {
                    self.counters.served(Served::Log);
                    Some(rec.value.to_vec())
                }
                RecordKind::Delete => {
                    self.counters.served(Served::AbsentByLog);
                    None
                }
            });
        }
        None
    }

    /// Counts a get answered from a value file; true asks for a hot-set rebuild.
    fn count_found(&self, served: Served, hash: u64) -> bool {
        self.counters.served(served);
        self.heat.touch(hash, served == Served::Data)
    }

    /// Counts a get the global table answered "absent" (a Bloom false positive).
    fn count_absent_after_page(&self) {
        self.counters.bloom_false_positive();
        self.counters.served(Served::AbsentAfterPage);
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
        if st.log_is_empty() {
            // The log stops being empty: lock-free gets must stop answering from the snapshot alone
            // before the record can be seen.
            self.quiet.store(None);
        }
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
            let active = (seg.file(), seg.synced_mark(), seg.written_len());
            (active, frozen, counter)
        };
        for part in &frozen {
            let seg = &part.seg;
            LogSegment::sync_file(&seg.file(), &seg.synced_mark(), seg.written_len())?;
        }
        LogSegment::sync_file(&active.0, &active.1, active.2)?;
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
            self.set_quiet(&st);
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

/// The values of a batch in key order, and the shards asking for a hot-set rebuild.
pub(crate) type BatchValues = (Vec<Option<Vec<u8>>>, Vec<u32>);

/// One key of a batched `multi_get` still being looked up in its shard's global table.
struct Probe {
    /// Index of the key in the batch.
    at: usize,
    shard: usize,
    bucket: u32,
    slot: u32,
    hops: u32,
}

/// `multi_get` over shards whose snapshots read files with direct I/O: every key's log and Bloom
/// filter first, then all the batch's page reads submitted together (one round per overflow hop),
/// then all its value reads submitted together, each round at the batch's queue depth. The shards
/// the batch touches are read-locked in shard order for its duration (as one `get` locks its shard),
/// so no flush can publish and reuse a slot or extent under it. Returns the values in key order and
/// the shards whose access counters ask for a hot-set rebuild.
pub(crate) fn multi_get_batched(
    shards: &[Shard],
    keys: &[(&[u8], u64, usize)],
) -> Result<BatchValues> {
    let mut touched: Vec<usize> = keys.iter().map(|k| k.2).collect();
    touched.sort_unstable();
    touched.dedup();
    let guards: Vec<_> = touched.iter().map(|&i| shards[i].state.read()).collect();
    let state = |shard: usize| &guards[touched.binary_search(&shard).expect("locked")];

    let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
    let mut probes = Vec::new();
    for (at, &(key, hash, shard)) in keys.iter().enumerate() {
        let st = state(shard);
        match shards[shard].answer_in_memory(st, key, hash) {
            Some(answer) => out[at] = answer,
            None => {
                let bucket = KeyHash(hash).bucket(st.snap.ckpt.buckets);
                probes.push(Probe {
                    at,
                    shard,
                    bucket,
                    slot: st.snap.ckpt.page_map[bucket as usize],
                    hops: 0,
                })
            }
        }
    }

    // Pages, one round per chain hop.
    let mut found: Vec<(usize, usize, Loc)> = Vec::new();
    while !probes.is_empty() {
        let pages = read_pages(shards, &state, &probes)?;
        let mut next = Vec::new();
        for (mut p, page) in probes.into_iter().zip(pages) {
            let (key, hash, _) = keys[p.at];
            let Some(page) = page else {
                shards[p.shard].count_absent_after_page();
                continue;
            };
            if let Some(loc) = page::find(page.bytes(), key, hash) {
                found.push((p.at, p.shard, loc));
                continue;
            }
            p.slot = page::header(page.bytes()).next;
            p.hops += 1;
            state(p.shard).snap.check_hops(p.slot, p.hops)?;
            next.push(p);
        }
        probes = next;
    }

    // Values.
    let values = read_values(shards, &state, keys, &found)?;
    let mut rebuild = Vec::new();
    for ((at, shard, _), (value, served)) in found.into_iter().zip(values) {
        if shards[shard].count_found(served, keys[at].1) {
            rebuild.push(shards[shard].id);
        }
        out[at] = Some(value);
    }
    rebuild.dedup();
    Ok((out, rebuild))
}

/// The page each probe is at (`None` for an empty chain), reading every page that is neither mapped
/// nor cached in one batch. Two probes at the same page share its read.
fn read_pages<'s, G: std::ops::Deref<Target = ShardState> + 's>(
    shards: &[Shard],
    state: &impl Fn(usize) -> &'s G,
    probes: &[Probe],
) -> Result<Vec<Option<PageBytes<'s>>>> {
    let mut pages: Vec<Option<PageBytes<'s>>> = Vec::with_capacity(probes.len());
    // Reads to issue: (shard, slot, bucket) → index in `reads`.
    let mut reads: Vec<(usize, u32, u32)> = Vec::new();
    let mut wait: Vec<(usize, usize)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let snap = &state(p.shard).snap;
        let counters = &shards[p.shard].counters;
        if p.slot == 0 {
            pages.push(None);
        } else if snap.direct.index.is_none() {
            pages.push(Some(snap.page_for_get(p.slot, p.bucket, counters)?));
        } else if let Some(page) = snap.cached_page(p.slot, counters) {
            pages.push(Some(PageBytes::Read(page)));
        } else {
            snap.page_offset(p.slot)?;
            let r = match reads
                .iter()
                .position(|&(s, slot, _)| s == p.shard && slot == p.slot)
            {
                Some(r) => {
                    // A second key waiting on the same page: served by the first read.
                    counters.cache_hit(Tier::Index);
                    r
                }
                None => {
                    reads.push((p.shard, p.slot, p.bucket));
                    reads.len() - 1
                }
            };
            wait.push((i, r));
            pages.push(None);
        }
    }
    if reads.is_empty() {
        return Ok(pages);
    }
    let mut bufs: Vec<AlignedBuf> = reads
        .iter()
        .map(|_| AlignedBuf::zeroed(PAGE_SIZE))
        .collect();
    let batch = state(reads[0].0).snap.io.batch;
    let mut reqs: Vec<ReadReq<'_>> = reads
        .iter()
        .zip(bufs.iter_mut())
        .map(|(&(shard, slot, _), buf)| ReadReq {
            file: state(shard)
                .snap
                .direct
                .index
                .as_ref()
                .expect("direct index"),
            offset: slot as u64 * PAGE_SIZE as u64,
            buf: &mut buf.as_mut_slice()[..PAGE_SIZE],
            need: PAGE_SIZE,
        })
        .collect();
    read_batch(batch, &mut reqs)?;
    drop(reqs);
    let mut accepted = Vec::with_capacity(reads.len());
    for (&(shard, slot, bucket), buf) in reads.iter().zip(bufs) {
        shards[shard].counters.read(Tier::Index, PAGE_SIZE);
        accepted.push(state(shard).snap.accept_page(buf, slot, bucket)?);
    }
    for (i, r) in wait {
        pages[i] = Some(PageBytes::Read(accepted[r].clone()));
    }
    Ok(pages)
}

/// The value each found key's location holds, reading every value of a direct-I/O tier in one
/// batch and the others from their maps.
fn read_values<'s, G: std::ops::Deref<Target = ShardState> + 's>(
    shards: &[Shard],
    state: &impl Fn(usize) -> &'s G,
    keys: &[(&[u8], u64, usize)],
    found: &[(usize, usize, Loc)],
) -> Result<Vec<(Vec<u8>, Served)>> {
    let mut values: Vec<Option<(Vec<u8>, Served)>> = Vec::with_capacity(found.len());
    let mut direct: Vec<(usize, AlignedRange)> = Vec::new();
    for (i, (at, shard, loc)) in found.iter().enumerate() {
        let snap = &state(*shard).snap;
        let src = snap.value_source(loc);
        if src.file.is_none() {
            values.push(Some(snap.read(
                loc,
                keys[*at].1,
                &shards[*shard].counters,
            )?));
        } else {
            check_record_bounds(src.end, src.path, src.off, loc.value_len)?;
            direct.push((
                i,
                AlignedRange::covering(src.off, record_bytes(loc.value_len)),
            ));
            values.push(None);
        }
    }
    if !direct.is_empty() {
        let mut bufs: Vec<AlignedBuf> = direct.iter().map(|(_, r)| r.buffer()).collect();
        let batch = state(found[direct[0].0].1).snap.io.batch;
        let mut reqs: Vec<ReadReq<'_>> = direct
            .iter()
            .zip(bufs.iter_mut())
            .map(|((i, r), buf)| {
                let (_, shard, loc) = &found[*i];
                ReadReq {
                    file: state(*shard)
                        .snap
                        .value_source(loc)
                        .file
                        .expect("direct tier"),
                    offset: r.offset,
                    buf: buf.as_mut_slice(),
                    need: r.skip + r.want,
                }
            })
            .collect();
        read_batch(batch, &mut reqs)?;
        drop(reqs);
        for ((i, r), buf) in direct.iter().zip(&bufs) {
            let (at, shard, loc) = &found[*i];
            let src = state(*shard).snap.value_source(loc);
            shards[*shard].counters.read(src.tier, r.len);
            let v = checked_value(r.wanted(buf), src.path, src.off, keys[*at].1)?;
            values[*i] = Some((v.to_vec(), src.served));
        }
    }
    Ok(values
        .into_iter()
        .map(|v| v.expect("every value read"))
        .collect())
}
