//! [`Db`]: the public handle. Opens or creates a store (manifest, lock, per-shard recovery), routes
//! each key to its shard, runs the background flusher, and answers stats and checks.
//!
//! Recovery of a shard on open: load its checkpoint (page map, Bloom filter, file ends), open the index,
//! data and hot files at the checkpointed ends, then replay every log segment newer than the
//! checkpoint's `log_flushed_seq` into log parts that wait for a flush. A torn tail ends replay: the
//! rest of that segment and any later segment are unsynced writes and are dropped, so what survives is
//! always a prefix of the write history.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::batch::{BatchOp, WriteBatch};
use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::compaction::CompactReport;
use crate::data::read_value;
use crate::error::{Error, IoContext, Result};
use crate::flush::{self, Flusher};
use crate::hash::KeyHash;
use crate::io::{self, IoSetup, WriterLock};
use crate::layout::ShardPaths;
use crate::log::{LogSegment, RecordKind};
use crate::manifest::{self, Manifest, FORMAT_VERSION};
use crate::options::{check_key, check_value, Options, SyncPolicy};
use crate::page::{self, PAGE_SIZE};
use crate::shard::{DirectFiles, LogPart, Shard, ShardState, Snapshot, Verified};
use crate::stats::{Counters, IoReport, ShardStats, Stats, TiersStats};
use crate::syncpoint::SyncPoint;

/// Receives progress of long operations (check, compact, rebalance), e.g. to draw a progress bar.
pub trait Progress: Send + Sync {
    /// A new phase named `what` of `total` units (0 = unknown).
    fn start(&self, what: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The phase ended.
    fn finish(&self);
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// One problem found by [`Db::check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckProblem {
    /// The file holding the damaged record or page.
    pub file: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// What [`Db::check`] verified and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Global-table pages whose checksum, own slot and bucket were verified.
    pub pages_checked: u64,
    /// Log records whose checksum was verified.
    pub log_records_checked: u64,
    /// Value records (data and hot) read back and matched to their entry's key.
    pub values_checked: u64,
    /// Everything found wrong; empty when the store is healthy.
    pub problems: Vec<CheckProblem>,
}

enum Msg {
    /// Flush the shard with this id (not position).
    Flush(u32),
    RebuildHotSet(u32),
    Stop,
}

struct Inner {
    path: PathBuf,
    manifest: Manifest,
    opts: Arc<Options>,
    /// Hash bits that index `route`.
    route_bits: u32,
    /// Top `route_bits` bits of a key's hash → index into `shards`.
    route: Vec<u32>,
    shards: Vec<Shard>,
    poisoned: AtomicBool,
    poison_reason: Mutex<String>,
    flusher_tx: Mutex<Option<mpsc::Sender<Msg>>>,
    sync_point: Mutex<SyncPoint>,
    _lock: WriterLock,
}

/// A tierkv store. `Send + Sync`: share it between threads (e.g. in an `Arc`); all methods take `&self`.
pub struct Db {
    inner: Arc<Inner>,
    background: Option<JoinHandle<()>>,
    closed: bool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

impl Db {
    /// Opens the store at `path`, creating it when missing (unless `opts.create_if_missing` is off).
    /// For an existing store its recorded layout (shard count, tier directories) wins over `opts`.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let auto_split = opts.auto_split_deviation;
        let db = Db::open_layout(path, opts)?;
        if auto_split > 0.0 {
            let policy = crate::RebalancePolicy {
                max_deviation: auto_split,
            };
            if policy.choose(&db.stats()).is_some() {
                return Ok(db.maintain(&NoProgress)?.0);
            }
        }
        Ok(db)
    }

    /// Opens (or creates) the store without applying the automatic split policy.
    fn open_layout(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let path = path.as_ref().to_path_buf();
        let existing = Manifest::load(&path)?;
        if existing.is_none() && !opts.create_if_missing {
            return Err(Error::NoStore { path });
        }
        io::create_dir_durable(&path)?;
        let lock = WriterLock::acquire(&path)?;
        let manifest = match Manifest::load(&path)? {
            Some(m) => m,
            None => {
                let m = Manifest {
                    format_version: FORMAT_VERSION,
                    layout: 1,
                    shards: opts.shards,
                    ssd_dir: match &opts.ssd_dir {
                        Some(d) => manifest::absolute(d)?,
                        None => PathBuf::from("ssd"),
                    },
                    hdd_dir: match &opts.hdd_dir {
                        Some(d) => manifest::absolute(d)?,
                        None => PathBuf::from("hdd"),
                    },
                    split: Vec::new(),
                };
                m.store(&path)?;
                m
            }
        };
        let (route_bits, route) = manifest.routing(&path)?;
        let mut opts = opts;
        opts.shards = manifest.shards;
        opts.ssd_dir = Some(manifest.ssd_root(&path));
        opts.hdd_dir = Some(manifest.hdd_root(&path));
        let opts = Arc::new(opts);
        let ssd_root = manifest.ssd_root(&path);
        let hdd_root = manifest.hdd_root(&path);
        // An unfinished rebalance's new layout, or the layout a finished one replaced.
        crate::rebalance::remove_other_layouts(&ssd_root, manifest.layout)?;
        crate::rebalance::remove_other_layouts(&hdd_root, manifest.layout)?;
        let specs = manifest.shard_specs();
        let ids: Vec<u32> = specs.iter().map(|s| s.id).collect();
        crate::rebalance::remove_other_shards(&ssd_root, &hdd_root, manifest.layout, &ids)?;
        let mut sync_point = SyncPoint::open(&path)?;
        let mut recovering = Vec::with_capacity(specs.len());
        for spec in &specs {
            let paths = ShardPaths::new(&ssd_root, &hdd_root, manifest.layout, spec.id);
            recovering.push(recover_shard(spec.id, paths, &opts, sync_point.value)?);
        }
        let board = Arc::new(crate::publish::Board::announce(
            &path,
            crate::publish::epoch(&manifest),
            recovering.len(),
        )?);
        let (shards, _) = finish_recovery(recovering, &mut sync_point, &opts, &board)?;
        let inner = Arc::new(Inner {
            manifest: manifest.clone(),
            path,
            opts: opts.clone(),
            route_bits,
            route,
            shards,
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(String::new()),
            flusher_tx: Mutex::new(None),
            sync_point: Mutex::new(sync_point),
            _lock: lock,
        });
        let mut db = Db {
            inner,
            background: None,
            closed: false,
        };
        if opts.background_flush {
            let (tx, rx) = mpsc::channel();
            let worker = db.inner.clone();
            let handle = std::thread::Builder::new()
                .name("tierkv-flush".into())
                .spawn(move || background_flusher(worker, rx))
                .map_err(|e| Error::io(&db.inner.path, e))?;
            *db.inner.flusher_tx.lock() = Some(tx);
            db.background = Some(handle);
        }
        // Log parts recovered from a crash wait for their flush.
        for shard in &db.inner.shards {
            if !shard.state.read().frozen.is_empty() {
                db.after_rotation(shard)?;
            }
        }
        Ok(db)
    }

    /// Opens the store at `path` read-only, beside the process that writes it (or with no writer):
    /// no lock is taken and the writer is never blocked. The handle sees, per shard, the writer's
    /// newest flush and follows later ones by itself; see [`ReadOnlyDb`](crate::ReadOnlyDb).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<crate::ReadOnlyDb> {
        crate::ReadOnlyDb::open(path)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets where work the engine does by itself — a table growing into more buckets during a flush —
    /// reports its progress (`None` = nowhere, the default).
    pub fn set_progress(&self, progress: Option<Arc<dyn Progress>>) {
        if let Some(shard) = self.inner.shards.first() {
            *shard.progress.write() = progress;
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> u32 {
        self.inner.shards.len() as u32
    }

    /// The options in force (with the stored layout filled in).
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    #[inline]
    fn shard_of(&self, hash: KeyHash) -> &Shard {
        &self.inner.shards[self.inner.shard_index(hash)]
    }

    fn check_writable(&self) -> Result<()> {
        if self.inner.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned(self.inner.poison_reason.lock().clone()));
        }
        Ok(())
    }

    /// Marks the handle failed: an I/O error during a write, flush or sync may have left the files in a
    /// state this process cannot vouch for; only a reopen (which recovers from disk) clears it.
    fn poison<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if matches!(e, Error::Io { .. } | Error::Corruption { .. }) {
                self.inner.poison(e);
            }
        }
        r
    }

    fn after_rotation(&self, shard: &Shard) -> Result<()> {
        match &*self.inner.flusher_tx.lock() {
            Some(tx) => {
                let _ = tx.send(Msg::Flush(shard.id));
                Ok(())
            }
            None => {
                let r = (|| {
                    while shard.flush_oldest(&|| self.inner.sync_all())? {}
                    Ok(())
                })();
                self.poison(r)
            }
        }
    }

    fn write_ops<'a>(
        &self,
        shard: &Shard,
        ops: impl Iterator<Item = (RecordKind, &'a [u8], &'a [u8], u64)>,
    ) -> Result<()> {
        self.check_writable()?;
        let rotated = self.poison(shard.write(ops, &|| self.inner.sync_all()))?;
        if rotated {
            self.after_rotation(shard)?;
        }
        if self.inner.opts.sync == SyncPolicy::EveryWrite {
            self.poison(shard.sync_log())?;
        }
        Ok(())
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let h = KeyHash::of(key);
        self.write_ops(
            self.shard_of(h),
            std::iter::once((RecordKind::Put, key, value, h.0)),
        )
    }

    /// Removes `key` (a no-op when absent).
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        let h = KeyHash::of(key);
        self.write_ops(
            self.shard_of(h),
            std::iter::once((RecordKind::Delete, key, &[][..], h.0)),
        )
    }

    /// Applies a batch: every operation is validated first (an invalid one rejects the whole batch and
    /// applies nothing). The batch takes one contiguous run of sequence numbers, in its order, while it
    /// holds the locks of every shard it touches, so after a crash it is either whole or cut at an
    /// operation boundary like any other stretch of the history (see [`WriteBatch`]).
    pub fn write_batch(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        for op in &batch.ops {
            check_key(op.key())?;
            if let BatchOp::Put { value, .. } = op {
                check_value(value)?;
            }
        }
        self.check_writable()?;
        let hashes: Vec<KeyHash> = batch.ops.iter().map(|op| KeyHash::of(op.key())).collect();
        // Bytes per touched shard (ascending shard order is also the lock order).
        let mut need: Vec<(u32, usize)> = Vec::new();
        {
            let mut per_shard = vec![0usize; self.inner.shards.len()];
            for (op, h) in batch.ops.iter().zip(&hashes) {
                let value_len = match op {
                    BatchOp::Put { value, .. } => value.len(),
                    BatchOp::Delete { .. } => 0,
                };
                per_shard[self.inner.shard_index(*h)] +=
                    crate::log::RECORD_HEADER + op.key().len() + value_len;
            }
            for (id, bytes) in per_shard.into_iter().enumerate() {
                if bytes > 0 {
                    need.push((id as u32, bytes));
                }
            }
        }
        let sync_all = || self.inner.sync_all();
        let mut rotated = vec![false; need.len()];
        let mut guards = loop {
            for (i, &(id, bytes)) in need.iter().enumerate() {
                let shard = &self.inner.shards[id as usize];
                let (_, r) = self.poison(shard.make_room(shard.state.write(), bytes, &sync_all))?;
                rotated[i] |= r;
            }
            let guards: Vec<_> = need
                .iter()
                .map(|&(id, _)| self.inner.shards[id as usize].state.write())
                .collect();
            if guards
                .iter()
                .zip(&need)
                .all(|(g, &(_, bytes))| g.active.seg.fits(bytes))
            {
                break guards;
            }
        };
        let slot_of = |shard: u32| {
            need.binary_search_by_key(&shard, |n| n.0)
                .expect("shard is in need")
        };
        let base = self.inner.shards[0]
            .seq
            .fetch_add(batch.ops.len() as u64, Ordering::Relaxed);
        let mut result = Ok(());
        // Prefetch the log-table slot a few operations ahead: each insert is a cache miss otherwise.
        const AHEAD: usize = 6;
        for h in hashes.iter().take(AHEAD) {
            guards[slot_of(self.inner.shard_index(*h) as u32)]
                .active
                .table
                .prefetch(h.0);
        }
        for (i, (op, h)) in batch.ops.iter().zip(&hashes).enumerate() {
            if let Some(ahead) = hashes.get(i + AHEAD) {
                guards[slot_of(self.inner.shard_index(*ahead) as u32)]
                    .active
                    .table
                    .prefetch(ahead.0);
            }
            let shard_id = self.inner.shard_index(*h) as u32;
            let shard = &self.inner.shards[shard_id as usize];
            let st = &mut guards[slot_of(shard_id)];
            let (kind, value) = match op {
                BatchOp::Put { value, .. } => (RecordKind::Put, value.as_slice()),
                BatchOp::Delete { .. } => (RecordKind::Delete, &[][..]),
            };
            result = shard.append_locked(st, kind, op.key(), value, h.0, base + i as u64);
            if result.is_err() {
                break;
            }
        }
        drop(guards);
        self.poison(result)?;
        for (i, &(id, _)) in need.iter().enumerate() {
            let shard = &self.inner.shards[id as usize];
            if rotated[i] {
                self.after_rotation(shard)?;
            }
            if self.inner.opts.sync == SyncPolicy::EveryWrite {
                self.poison(shard.sync_log())?;
            }
        }
        Ok(())
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let h = KeyHash::of(key);
        let shard = self.shard_of(h);
        let (value, rebuild_hot) = shard.get(key, h.0)?;
        if rebuild_hot {
            if let Some(tx) = &*self.inner.flusher_tx.lock() {
                let _ = tx.send(Msg::RebuildHotSet(shard.id));
            }
        }
        Ok(value)
    }

    /// Rebuilds every shard's hot set now from its access counters (the background thread does it
    /// by itself when many gets reach the data file). Returns the hot copies written.
    pub fn rebuild_hot_sets(&self) -> Result<u64> {
        self.check_writable()?;
        let mut copies = 0;
        for shard in &self.inner.shards {
            copies += self.poison(crate::hot::rebuild_hot_set(shard))?;
        }
        Ok(copies)
    }

    /// The values of many keys, in order. When a tier is read with direct I/O, the batch's page
    /// reads are submitted together, then its value reads (io_uring when available): the queue
    /// depth is the batch size. Through memory maps, keys are looked up one after another.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        if !self.inner.opts.direct_io.any() || keys.len() < 2 {
            return keys.iter().map(|k| self.get(k.as_ref())).collect();
        }
        let mut batch = Vec::with_capacity(keys.len());
        for k in keys {
            let key = k.as_ref();
            check_key(key)?;
            let h = KeyHash::of(key);
            batch.push((key, h.0, self.inner.shard_index(h)));
        }
        let (values, rebuild) = crate::shard::multi_get_batched(&self.inner.shards, &batch)?;
        if !rebuild.is_empty() {
            if let Some(tx) = &*self.inner.flusher_tx.lock() {
                for id in rebuild {
                    let _ = tx.send(Msg::RebuildHotSet(id));
                }
            }
        }
        Ok(values)
    }

    /// Makes every write acknowledged before this call durable.
    pub fn sync(&self) -> Result<()> {
        self.check_writable()?;
        self.poison(self.inner.sync_all())
    }

    /// Moves every log into the global tables now (and makes it durable).
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let r = self
            .inner
            .each_shard_parallel(|shard| shard.flush_all(&|| self.inner.sync_all()));
        self.poison(r)
    }

    /// Visits every live key once with its value, shard by shard (no order within a shard). Return
    /// `false` from `f` to stop. Flushes of the shard being visited wait until it is done.
    pub fn scan(&self, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        for shard in &self.inner.shards {
            let _no_flush = shard.flusher.lock();
            let st = shard.state.read();
            let mut log_view: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
            for part in std::iter::once(&st.active).chain(st.frozen.iter().rev().map(|p| &**p)) {
                for (_, payload) in part.table.iter() {
                    let rec = part.seg.record(payload as u32);
                    log_view.entry(rec.key).or_insert(match rec.kind {
                        RecordKind::Put => Some(rec.value),
                        RecordKind::Delete => None,
                    });
                }
            }
            let shadowed = |k: &[u8]| log_view.contains_key(k);
            if !st
                .snap
                .scan_from(0, &shadowed, &mut f)
                .map_err(|(_, e)| e)?
            {
                return Ok(());
            }
            for (k, v) in log_view {
                if let Some(v) = v {
                    if !f(k, v) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Verifies every checksum and cross-reference: each page (checksum, own slot, bucket), each log
    /// record, and each entry's value record (readable, and its checksum binds it to the entry's key).
    pub fn check(&self, progress: &dyn Progress) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let total: u64 = self
            .inner
            .shards
            .iter()
            .map(|s| s.state.read().snap.ckpt.page_map.len() as u64)
            .sum();
        progress.start("check", total);
        for shard in &self.inner.shards {
            let _no_flush = shard.flusher.lock();
            let st = shard.state.read();
            for part in std::iter::once(&st.active).chain(st.frozen.iter().map(|p| &**p)) {
                let (n, bad) = part.seg.verify();
                report.log_records_checked += n;
                if let Some((offset, reason)) = bad {
                    report.problems.push(CheckProblem {
                        file: part.seg.path().to_path_buf(),
                        offset,
                        reason,
                    });
                }
            }
            check_snapshot(&st.snap, &mut report);
            progress.advance(st.snap.ckpt.page_map.len() as u64);
        }
        progress.finish();
        Ok(report)
    }

    /// Compacts every shard that needs it (a data file at least `compact_dead_fraction` dead, or a
    /// table with far more buckets than its keys need): live values are rewritten into a new data file,
    /// the table rebuilt at its needed size, the Bloom filter rebuilt. Reads continue meanwhile.
    pub fn compact(&self, progress: &dyn Progress) -> Result<CompactReport> {
        self.compact_shards(0..self.inner.shards.len() as u32, false, progress)
    }

    /// Compacts one shard whether or not it needs it.
    pub fn compact_shard(&self, shard: u32, progress: &dyn Progress) -> Result<CompactReport> {
        if shard as usize >= self.inner.shards.len() {
            return Err(Error::InvalidArgument(format!(
                "shard {shard} does not exist (the store has {})",
                self.inner.shards.len()
            )));
        }
        self.compact_shards(shard..shard + 1, true, progress)
    }

    fn compact_shards(
        &self,
        shards: std::ops::Range<u32>,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<CompactReport> {
        self.check_writable()?;
        let started = std::time::Instant::now();
        let mut report = CompactReport {
            space_amplification_before: self.stats().space_amplification,
            ..CompactReport::default()
        };
        for id in shards {
            let shard = &self.inner.shards[id as usize];
            let r = self.poison(crate::compaction::compact_shard(shard, progress, force))?;
            report.compacted_shards += r.compacted as u32;
            report.shards.push(r);
        }
        report.space_amplification_after = self.stats().space_amplification;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Rebuilds every shard into `new_shards` shards (a power of two) — the seed note's "full
    /// rebuild" — and returns the reopened store. The old layout stays the store of record until the
    /// new one is complete and the manifest is switched atomically; a crash before that leaves the old
    /// store, after it the new one, never a mix. The handle is consumed: the store is flushed first and
    /// nothing can read or write it through this handle meanwhile.
    pub fn rebalance(
        mut self,
        new_shards: u32,
        progress: &dyn Progress,
    ) -> Result<(Db, crate::RebalanceReport)> {
        let opts = Options {
            shards: new_shards,
            ..(*self.inner.opts).clone()
        };
        opts.validate()?;
        let before = self.stats().shard_key_max_deviation;
        self.shutdown()?;
        let inner = &self.inner;
        let mut report = crate::rebalance::rebuild(
            &inner.path,
            &inner.manifest,
            &inner.shards,
            new_shards,
            &opts,
            progress,
        )?;
        let path = inner.path.clone();
        drop(self);
        let db = Db::open(&path, opts)?;
        report.max_deviation_before = before;
        report.max_deviation_after = db.stats().shard_key_max_deviation;
        Ok((db, report))
    }

    /// Splits one shard (its index in `stats().per_shard`) in two by the next bit of the key hash,
    /// without rebuilding the others (hash-bit sharding, seed note 003), and returns the reopened
    /// store. Crash-safe like [`Db::rebalance`]: the new halves are built beside the shard and the
    /// manifest switch is the commit point.
    pub fn split_shard(
        mut self,
        shard: u32,
        progress: &dyn Progress,
    ) -> Result<(Db, crate::RebalanceReport)> {
        if shard as usize >= self.inner.shards.len() {
            return Err(Error::InvalidArgument(format!(
                "shard {shard} does not exist (the store has {})",
                self.inner.shards.len()
            )));
        }
        let before = self.stats().shard_key_max_deviation;
        self.shutdown()?;
        let inner = &self.inner;
        let mut report = crate::rebalance::split(
            &inner.path,
            &inner.manifest,
            &inner.shards,
            shard as usize,
            &inner.opts,
            progress,
        )?;
        // The shard count in the options only matters when a store is created: the manifest wins.
        let (path, opts) = (
            inner.path.clone(),
            Options {
                shards: 1,
                ..(*inner.opts).clone()
            },
        );
        drop(self);
        let db = Db::open(&path, opts)?;
        report.max_deviation_before = before;
        report.max_deviation_after = db.stats().shard_key_max_deviation;
        Ok((db, report))
    }

    /// Applies the automatic rebalancing policy (`Options::auto_split_deviation`): while the largest
    /// shard's key count passes the mean by more than that fraction, split it. `Db::open` runs it when
    /// the option is set and the policy asks for a split. Returns the store and what was done.
    pub fn maintain(self, progress: &dyn Progress) -> Result<(Db, Vec<crate::RebalanceReport>)> {
        let policy = crate::RebalancePolicy {
            max_deviation: self.inner.opts.auto_split_deviation,
        };
        let mut db = self;
        let mut reports = Vec::new();
        // Each split adds a shard; a bound keeps a pathological store from looping.
        for _ in 0..64 {
            match policy.choose(&db.stats()) {
                Some(crate::RebalanceChoice::Split { shard }) => {
                    let (next, report) = db.split_shard(shard, progress)?;
                    db = next;
                    reports.push(report);
                }
                None => break,
            }
        }
        Ok((db, reports))
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> Stats {
        let per_shard = self.inner.shards.iter().map(shard_stats).collect();
        let io = &self.inner.shards[0].io;
        let report = IoReport {
            engine: io.batch.name(),
            direct: io.direct,
            page_cache_pages: self
                .inner
                .shards
                .iter()
                .filter_map(|s| s.io.cache.as_ref())
                .map(|c| c.capacity() as u64)
                .sum(),
        };
        Stats::aggregate(FORMAT_VERSION, report, per_shard)
    }

    /// Flushes every log, writes the checkpoints and releases the store. Dropping a `Db` does the same
    /// but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(tx) = self.inner.flusher_tx.lock().take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(h) = self.background.take() {
            if h.join().is_err() {
                // A bug, not an I/O error: leave the files as they are; reopening replays the logs.
                self.inner.poison(&Error::Poisoned(
                    "the background flush thread panicked".into(),
                ));
            }
        }
        self.check_writable()?;
        let r = self.inner.each_shard_parallel(|shard| {
            shard.flush_all(&|| self.inner.sync_all())?;
            let st = shard.state.read();
            let mut ckpt = st.snap.ckpt.clone();
            ckpt.bloom = st.snap.filter.to_bytes();
            drop(st);
            flush::store_checkpoint(shard, &mut ckpt)?;
            let st = shard.state.read();
            if st.active.seg.is_empty() {
                io::remove_if_exists(st.active.seg.path())?;
            }
            Ok(())
        });
        self.poison(r)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    /// The shard with id `id`. Ids are not positions: a split gives its halves new ids.
    fn shard_by_id(&self, id: u32) -> Option<&Shard> {
        match self.shards.get(id as usize) {
            Some(s) if s.id == id => Some(s),
            _ => self.shards.iter().find(|s| s.id == id),
        }
    }

    /// Index in `shards` of the shard owning `hash`.
    #[inline]
    fn shard_index(&self, hash: KeyHash) -> usize {
        self.route[hash.shard(self.route_bits) as usize] as usize
    }

    /// Runs `f` on every shard, spread over one thread per core (shards share nothing, so their
    /// flushes run in parallel). Returns the first error.
    fn each_shard_parallel(&self, f: impl Fn(&Shard) -> Result<()> + Sync) -> Result<()> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.shards.len());
        if threads <= 1 {
            return self.shards.iter().try_for_each(&f);
        }
        let f = &f;
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || self.shards.iter().skip(t).step_by(threads).try_for_each(f))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(Error::Poisoned("a flush thread panicked".into())))
                })
                .collect::<Result<Vec<()>>>()
                .map(|_| ())
        })
    }

    /// Syncs every shard's log, then records the global sync point: every record numbered below it
    /// is durable in every shard.
    fn sync_all(&self) -> Result<()> {
        let mut durable = u64::MAX;
        for shard in &self.shards {
            durable = durable.min(shard.sync_log()?);
        }
        let mut sp = self.sync_point.lock();
        if durable > sp.value {
            sp.store(durable)?;
        }
        Ok(())
    }

    fn poison(&self, e: &Error) {
        let mut reason = self.poison_reason.lock();
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            *reason = e.to_string();
        }
    }
}

fn background_flusher(inner: Arc<Inner>, rx: mpsc::Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Stop => return,
            Msg::RebuildHotSet(id) => {
                if inner.poisoned.load(Ordering::Acquire) {
                    continue;
                }
                let Some(shard) = inner.shard_by_id(id) else {
                    continue;
                };
                if let Err(e) = crate::hot::rebuild_hot_set(shard) {
                    inner.poison(&e);
                }
            }
            Msg::Flush(id) => {
                if inner.poisoned.load(Ordering::Acquire) {
                    continue;
                }
                let Some(shard) = inner.shard_by_id(id) else {
                    continue;
                };
                loop {
                    match shard.flush_oldest(&|| inner.sync_all()) {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(e) => {
                            inner.poison(&e);
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// A replayed segment, its records `(offset, kind, seq)`, and the end of the bytes it held.
type ReplayedSegment = (LogSegment, Vec<(u32, RecordKind, u64)>, u64);

/// A shard between reading its files and becoming live: its replayed segments wait for the global
/// cut (see `syncpoint.rs`).
struct Recovering {
    id: u32,
    paths: ShardPaths,
    fl: Flusher,
    snap: Snapshot,
    io: IoSetup,
    counters: Counters,
    /// Replayed segments, oldest first, each with its records `(offset, kind, seq)` and the end of
    /// the bytes it held (valid + torn).
    segments: Vec<ReplayedSegment>,
    next_log: u64,
}

/// Opens (or creates) one shard and replays its unflushed log segments (without applying them).
fn recover_shard(id: u32, paths: ShardPaths, opts: &Options, durable: u64) -> Result<Recovering> {
    io::create_dir_durable(&paths.ssd)?;
    io::create_dir_durable(&paths.hdd)?;
    let ckpt = match Checkpoint::load(&paths.checkpoint(), id)? {
        Some(c) => c,
        None => {
            let c = Checkpoint::empty();
            let f = flush::create_index(&paths.index(0), id, 0)?;
            f.sync_data()?;
            c.store(&paths.checkpoint(), id)?;
            c
        }
    };
    let filter = ckpt.filter(&paths.checkpoint(), opts.bloom_fpr)?;
    let fl = Flusher::open(&paths, id, &ckpt)?;
    let verified = Verified::bits(ckpt.index_slots);
    let counters = Counters::default();
    for (t, w) in ckpt.written_total.iter().enumerate() {
        counters.written_before[t].store(*w, Ordering::Relaxed);
    }
    let flushed_seq = ckpt.log_flushed_seq;
    let io = IoSetup::for_shard(opts, opts.shards)?;
    let snap: Snapshot = flush::snapshot(&fl, ckpt, filter, verified, &io)?;

    // Leftovers: segments already flushed, index files of other generations, temp files.
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(&paths.ssd).at(&paths.ssd)? {
        let entry = entry.at(&paths.ssd)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = ShardPaths::log_seq(name) {
            if seq <= flushed_seq {
                io::remove_if_exists(&entry.path())?;
            } else {
                seqs.push(seq);
            }
        } else if let Some(g) = ShardPaths::index_generation(name) {
            if g != snap.ckpt.index_file {
                io::remove_if_exists(&entry.path())?;
            }
        } else if let Some(g) = ShardPaths::hot_generation(name) {
            if g != snap.ckpt.hot_file {
                io::remove_if_exists(&entry.path())?;
            }
        } else if name.ends_with(".tmp") {
            io::remove_if_exists(&entry.path())?;
        }
    }
    seqs.sort_unstable();
    // Data files of other generations: a compaction that did not reach its checkpoint, or the file
    // a completed one replaced.
    for entry in std::fs::read_dir(&paths.hdd).at(&paths.hdd)? {
        let entry = entry.at(&paths.hdd)?;
        let name = entry.file_name();
        if let Some(g) = name.to_str().and_then(ShardPaths::data_generation) {
            if g != snap.ckpt.data_file {
                io::remove_if_exists(&entry.path())?;
            }
        }
    }

    // Per shard, what survives is a prefix of its log: a torn tail (or a lost tail of an older
    // segment, or a segment whose header never reached the disk) ends it.
    let mut segments = Vec::new();
    let mut torn_seen = false;
    let mut prev_valid: Option<u64> = None;
    let mut next_log = flushed_seq + 1;
    for seq in seqs {
        next_log = next_log.max(seq + 1);
        let path = paths.log(seq);
        if torn_seen || LogSegment::header_never_durable(&path, id, seq, durable)? {
            io::remove_if_exists(&path)?;
            torn_seen = true;
            continue;
        }
        let mut records = Vec::new();
        let (seg, end) = LogSegment::replay(path.clone(), id, seq, durable, |off, rec| {
            records.push((off, rec.kind, rec.seq));
            Ok(())
        })?;
        if prev_valid.is_some_and(|v| v < end.prev_len as u64) {
            drop(seg);
            io::remove_if_exists(&path)?;
            torn_seen = true;
            continue;
        }
        prev_valid = Some(end.valid_len);
        torn_seen = end.torn_bytes > 0;
        segments.push((seg, records, end.valid_len + end.torn_bytes));
    }
    Ok(Recovering {
        id,
        paths,
        fl,
        snap,
        io,
        counters,
        segments,
        next_log,
    })
}

/// Cuts every recovering shard at the global history's durable prefix, applies what is kept, and
/// makes the shards live. Returns the shards and the next global sequence number.
fn finish_recovery(
    mut shards: Vec<Recovering>,
    sync_point: &mut SyncPoint,
    opts: &Arc<Options>,
    board: &Arc<crate::publish::Board>,
) -> Result<(Vec<Shard>, u64)> {
    let durable = sync_point.value;
    let mut seqs: Vec<u64> = shards
        .iter()
        .flat_map(|r| r.segments.iter().flat_map(|s| s.1.iter().map(|rec| rec.2)))
        .filter(|&s| s >= durable)
        .collect();
    seqs.sort_unstable();
    let cut = crate::syncpoint::first_gap(&seqs, durable);
    let mut next_seq = durable.max(cut);
    for r in &shards {
        next_seq = next_seq.max(r.snap.ckpt.max_seq + 1);
        for (_, records, _) in &r.segments {
            if let Some(last) = records.last() {
                next_seq = next_seq.max(last.2 + 1);
            }
        }
    }
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(next_seq));
    let progress: Arc<RwLock<Option<Arc<dyn Progress>>>> = Arc::default();
    let mut live = Vec::with_capacity(shards.len());
    for r in shards.iter_mut() {
        // Discard the suffix past the cut (a shard's records are in sequence order).
        let mut keep = Vec::new();
        let mut discarding = false;
        for (mut seg, mut records, end) in r.segments.drain(..) {
            if discarding {
                let path = seg.path.clone();
                drop(seg);
                io::remove_if_exists(&path)?;
                continue;
            }
            if let Some(first_bad) = records.iter().position(|rec| rec.2 >= cut) {
                seg.discard_from(records[first_bad].0, end)?;
                records.truncate(first_bad);
                discarding = true;
            }
            // What we keep may still be only in the page cache: make it durable before the sync
            // point moves past it.
            seg.file().sync_data()?;
            if records.is_empty() {
                let path = seg.path.clone();
                drop(seg);
                io::remove_if_exists(&path)?;
            } else {
                keep.push((seg, records));
            }
        }
        let mut frozen: std::collections::VecDeque<Arc<LogPart>> = Default::default();
        for (seg, records) in keep {
            let mut part = LogPart::new(seg, records.len());
            for (off, kind, _) in records {
                let key = part.seg.key_at(off).to_vec();
                let hash = KeyHash::of(&key).0;
                let older = kind == RecordKind::Delete
                    && (frozen.iter().any(|p| p.lookup(&key, hash).is_some())
                        || r.snap.filter.may_contain(hash));
                part.index(off, kind, &key, hash, older);
            }
            frozen.push_back(Arc::new(part));
        }
        let prev_len = frozen.back().map_or(0, |p| p.seg.len() as u32);
        let active_seg = LogSegment::create(
            r.paths.log(r.next_log),
            r.id,
            r.next_log,
            opts.log_capacity_bytes,
            prev_len,
        )?;
        io::sync_dir(&r.paths.ssd)?;
        let placeholder = Recovering::placeholder_snapshot(&r.snap);
        let snap = std::mem::replace(&mut r.snap, placeholder);
        live.push((
            r.id,
            r.paths.clone(),
            snap,
            active_seg,
            frozen,
            r.next_log + 1,
        ));
    }
    let mut out = Vec::with_capacity(live.len());
    for (position, ((id, paths, snap, active_seg, frozen, next_log), r)) in
        live.into_iter().zip(shards).enumerate()
    {
        let state = ShardState {
            active: LogPart::new(active_seg, 1024),
            frozen,
            snap: Arc::new(snap),
            next_seq: next_log,
        };
        let shard = Shard {
            id,
            paths,
            quiet: arc_swap::ArcSwapOption::empty(),
            state: RwLock::new(state),
            flusher: Mutex::new(r.fl),
            counters: r.counters,
            dir_dirty: AtomicBool::new(false),
            opts: opts.clone(),
            seq: counter.clone(),
            heat: crate::hot::Heat::new(opts.hot_capacity_bytes),
            progress: progress.clone(),
            io: r.io,
            board: board.clone(),
            position,
        };
        shard.set_quiet(&shard.state.write());
        out.push(shard);
    }
    // Everything numbered below `next_seq` that survived is durable now (synced above).
    if next_seq > sync_point.value {
        sync_point.store(next_seq)?;
    }
    Ok((out, next_seq))
}

impl Recovering {
    /// An empty stand-in used while moving the real snapshot out.
    fn placeholder_snapshot(snap: &Snapshot) -> Snapshot {
        Snapshot {
            ckpt: Checkpoint::default(),
            filter: Filter::new(1024, 0.01),
            index_path: snap.index_path.clone(),
            index_map: None,
            verified: Verified::bits(0),
            data_path: snap.data_path.clone(),
            data_map: None,
            hot_path: snap.hot_path.clone(),
            hot_map: None,
            direct: DirectFiles::default(),
            io: snap.io.clone(),
            shared: false,
            published: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// Checks every page and value a snapshot references, adding what is wrong to `report`. Pages are
/// copied before they are validated and parsed (a `shared` snapshot's map may change under it).
pub(crate) fn check_snapshot(snap: &Snapshot, report: &mut CheckReport) {
    let map = snap.index_map.as_deref().unwrap_or(&[]);
    let mut copy = [0u8; PAGE_SIZE];
    for (bucket, &primary) in snap.ckpt.page_map.iter().enumerate() {
        let mut slot = primary;
        let mut hops = 0;
        while slot != 0 && hops <= snap.ckpt.index_slots {
            hops += 1;
            let at = slot as usize * PAGE_SIZE;
            let problem = |reason: String| CheckProblem {
                file: snap.index_path.clone(),
                offset: at as u64,
                reason,
            };
            if at + PAGE_SIZE > map.len() {
                report.problems.push(problem(format!(
                    "bucket {bucket}: page slot {slot} outside the file"
                )));
                break;
            }
            copy.copy_from_slice(&map[at..at + PAGE_SIZE]);
            let p = &copy[..];
            report.pages_checked += 1;
            if let Err(reason) =
                page::validate(p, slot, Some(bucket as u32)).and_then(|h| snap.check_generation(&h))
            {
                report.problems.push(problem(reason));
                break;
            }
            for (k, loc, _) in page::entries(p) {
                let hash = KeyHash::of(k).0;
                let mut check = |map: &Option<memmap2::Mmap>, path: &Path, off: u64| {
                    report.values_checked += 1;
                    if let Err(Error::Corruption { offset, reason, .. }) = read_value(
                        map.as_deref().unwrap_or(&[]),
                        path,
                        off,
                        loc.value_len,
                        hash,
                    ) {
                        report.problems.push(CheckProblem {
                            file: path.to_path_buf(),
                            offset,
                            reason: format!("{reason} (key {})", String::from_utf8_lossy(k)),
                        });
                    }
                };
                check(&snap.data_map, &snap.data_path, loc.data_off);
                if let Some(h) = loc.hot_off {
                    check(&snap.hot_map, &snap.hot_path, h);
                }
            }
            slot = page::header(p).next;
        }
    }
}

/// A shard's figures as its log and its table give them.
fn shard_stats(shard: &Shard) -> ShardStats {
    let st = shard.state.read();
    let snap = &st.snap;
    let mut s = table_stats(shard.id, snap, &shard.counters);
    let mut log_records = st.active.table.len() as u64;
    let mut log_bytes = st.active.seg.len() as u64;
    let mut log_dram = st.active.table.dram_bytes() as u64;
    for p in &st.frozen {
        log_records += p.table.len() as u64;
        log_bytes += p.seg.len() as u64;
        log_dram += p.table.dram_bytes() as u64;
    }
    // Live keys: table keys, plus log puts of keys the table lacks, minus log deletes of keys it has.
    let mut live = s.table_keys as i64;
    let mut log_live_bytes = 0u64;
    let mut seen: HashMap<&[u8], ()> = HashMap::new();
    for part in std::iter::once(&st.active).chain(st.frozen.iter().rev().map(|p| &**p)) {
        for (_, payload) in part.table.iter() {
            let rec = part.seg.record(payload as u32);
            if seen.insert(rec.key, ()).is_some() {
                continue;
            }
            if rec.kind == RecordKind::Put {
                log_live_bytes += (rec.key.len() + rec.value.len()) as u64;
            }
            let hash = KeyHash::of(rec.key).0;
            let in_table = snap.filter.may_contain(hash)
                && snap
                    .find(rec.key, hash, &Counters::default())
                    .ok()
                    .flatten()
                    .is_some();
            match (rec.kind, in_table) {
                (RecordKind::Put, false) => live += 1,
                (RecordKind::Delete, true) => live -= 1,
                _ => {}
            }
        }
    }
    let probe = st.active.table.probe_stats();
    let heat = shard.heat.dram_bytes();
    s.live_keys = live.max(0) as u64;
    s.log_records = log_records;
    s.log_bytes = log_bytes;
    s.log_live_bytes = log_live_bytes;
    s.table_dram_bytes += log_dram + snap.verified.dram_bytes() + heat;
    s.heat_dram_bytes = heat;
    s.log_probe_mean = probe.mean_probe;
    s.log_probe_max = probe.max_probe as u64;
    s
}

/// A shard's figures as its global table (the snapshot) and its counters give them; the log fields
/// are 0 and the live keys are the table's (a read-only handle sees no log).
pub(crate) fn table_stats(id: u32, snap: &Snapshot, cnt: &Counters) -> ShardStats {
    let c = &snap.ckpt;
    ShardStats {
        shard: id,
        live_keys: c.table_keys,
        table_keys: c.table_keys,
        table_live_bytes: c.table_live_bytes,
        buckets: c.page_map.len() as u64,
        overflow_pages: c.overflow_pages,
        table_load: c.entry_bytes as f64 / (c.page_map.len() as f64 * page::PAGE_PAYLOAD as f64),
        index_file_pages: c.index_slots as u64,
        data_bytes: c.data_end,
        data_dead_bytes: c.data_dead_bytes,
        hot_bytes: c.hot_end,
        bloom_keys: snap.filter.inserted,
        bloom_estimated_fpr: snap.filter.estimated_fpr(),
        bloom_dram_bytes: snap.filter.dram_bytes(),
        table_dram_bytes: c.page_map.len() as u64 * 4,
        generation: c.generation,
        tiers: TiersStats::from_counters(cnt),
        gets: cnt.gets_snapshot(),
        puts: cnt.puts.load(Ordering::Relaxed),
        deletes: cnt.deletes.load(Ordering::Relaxed),
        flushes: cnt.flushes.load(Ordering::Relaxed),
        pages_written: cnt.pages_written.load(Ordering::Relaxed),
        bloom_negatives: cnt.bloom_negatives(),
        bloom_false_positives: cnt.bloom_false_positives(),
        table_growths: cnt.table_growths.load(Ordering::Relaxed),
        bloom_rebuilds: cnt.bloom_rebuilds.load(Ordering::Relaxed),
        hot_rebuilds: cnt.hot_rebuilds.load(Ordering::Relaxed),
        ..ShardStats::default()
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Db>();
}
