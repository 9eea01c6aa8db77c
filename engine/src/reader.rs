//! [`ReadOnlyDb`]: a read-only handle on a store that another process may be writing — the pattern of
//! seed notes 000 and 002 (one writer, many reader processes that see at worst the previous tick).
//! This module owns the reader's view: the manifest's layout and, per shard, a snapshot built from
//! the shard's newest durable checkpoint (page map, Bloom filter, file ends) over read-only maps of
//! its index, data and hot files. It never takes the writer lock, never writes, deletes or recovers
//! anything, and never waits for the writer. The writer's side of the protocol (announcing each
//! stored checkpoint) is in `publish.rs` and `flush::store_checkpoint`.
//!
//! What a reader sees: per shard, the newest checkpoint stored when it last looked; log records the
//! writer has not flushed yet are not visible. Before each get it loads the shard's count on the
//! publication board and reloads the shard when the count moved, so a get answers from a state no
//! older than the writer's last completed flush of that shard before the get began.
//!
//! Why reading under a working writer is safe: the writer never overwrites a page or an extent that
//! its newest checkpoint references; it reuses only those freed by an earlier flush (pages are
//! written out of place, dead extents are reused one flush after they died). A reader's snapshot may
//! be older than that, so every page is copied out of the map and validated after the copy (checksum,
//! own slot, bucket, and a generation not newer than the snapshot's), and every value is copied and
//! checked against its key's hash (`data::read_value`). A failed check means either that the writer
//! moved on — the shard is reloaded and the read retried — or real damage, which the reload tells
//! apart: it finds the same checkpoint, and the error is returned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::checkpoint::Checkpoint;
use crate::data::{self, ValueFileKind};
use crate::db::{check_snapshot, table_stats, CheckReport, Progress};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::io::{self, IoSetup, OpenHow};
use crate::layout::ShardPaths;
use crate::manifest::{Manifest, FORMAT_VERSION};
use crate::options::{check_key, Options};
use crate::page::PAGE_SIZE;
use crate::publish::{self, Board};
use crate::shard::{DirectFiles, Snapshot, Verified};
use crate::stats::{Counters, IoReport, ReadOnlyStats, Stats};

/// Reloads one read may trigger before it gives up with [`Error::Stale`] (each reload reads the
/// newest checkpoint, so only a writer flushing the same shard twice per reload can exhaust them).
const MAX_ATTEMPTS: usize = 16;

/// A read-only handle on a store (see [`crate::Db::open_read_only`]). `Send + Sync`; every method
/// takes `&self`, and gets from several threads run in parallel without a shared lock.
pub struct ReadOnlyDb {
    path: PathBuf,
    opts: Options,
    view: ArcSwap<View>,
    /// Serializes reloads; gets never wait for it (they keep the snapshot they hold).
    reloading: Mutex<()>,
    /// Shard snapshots installed after open (the writer announced a flush, or a read failed on a
    /// state the writer had moved past).
    reloads: AtomicU64,
    /// Reads that failed validation on a snapshot the writer had moved past and were retried.
    retries: AtomicU64,
    /// Gets that took the copying path (see [`ReadOnlyStats::copied_gets`]).
    copied_gets: AtomicU64,
    /// Gets check the board and reload a shard whose writer announced a flush (see `set_follow`).
    follow: AtomicBool,
}

impl std::fmt::Debug for ReadOnlyDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyDb")
            .field("path", &self.path)
            .field("shards", &self.view.load().shards.len())
            .finish()
    }
}

/// One layout of the store as this reader knows it.
struct View {
    /// The manifest's epoch (`publish::epoch`).
    epoch: u64,
    /// The board's epoch word when this view was built: a change asks for a new view.
    board_epoch: u64,
    route_bits: u32,
    route: Vec<u32>,
    shards: Vec<ReaderShard>,
    board: Option<Board>,
}

/// One shard of a view.
struct ReaderShard {
    id: u32,
    position: usize,
    paths: ShardPaths,
    snap: ArcSwap<Snapshot>,
    /// The board's count for this shard, loaded before `snap`'s checkpoint was read.
    seen: AtomicU64,
    counters: Counters,
}

impl ReadOnlyDb {
    /// Opens the store at `path` read-only. Works whether or not a writer holds the store, and
    /// never blocks it. Fails with [`Error::NoStore`] when there is no store.
    pub fn open(path: impl AsRef<Path>) -> Result<ReadOnlyDb> {
        let path = path.as_ref().to_path_buf();
        let opts = Options::default();
        let view = build_view(&path)?;
        Ok(ReadOnlyDb {
            path,
            opts,
            view: ArcSwap::from_pointee(view),
            reloading: Mutex::new(()),
            reloads: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            copied_gets: AtomicU64::new(0),
            follow: AtomicBool::new(true),
        })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of shards of the layout this handle reads.
    pub fn shards(&self) -> u32 {
        self.view.load().shards.len() as u32
    }

    /// The options this handle reads with (defaults; the store's layout comes from its manifest).
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Whether gets follow the writer's announcements (the default). Off, a shard is reloaded only
    /// by [`Self::refresh`] or when a read finds that the writer reused a page or extent its snapshot
    /// references — reads stay correct either way, only their freshness differs.
    pub fn set_follow(&self, follow: bool) {
        self.follow.store(follow, Ordering::Relaxed);
    }

    /// The value of `key` as of the writer's newest flush of its shard, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let hash = KeyHash::of(key);
        let mut attempt = 0;
        loop {
            let view = self.current_view()?;
            let shard = &view.shards[view.route[hash.shard(view.route_bits) as usize] as usize];
            self.catch_up(&view, shard)?;
            let snap = shard.snap.load();
            if let Some(answer) = self.read_in_place(&view, shard, &snap, key, hash.0) {
                return answer;
            }
            self.copied_gets.fetch_add(1, Ordering::Relaxed);
            let err = match snap.lookup(key, hash.0, &shard.counters, true) {
                Ok((v, served)) => {
                    shard.counters.served(served);
                    return Ok(v);
                }
                Err(e) if moved_on(&e) => e,
                Err(e) => return Err(e),
            };
            attempt += 1;
            if !self.reload_shard(&view, shard, Some(&snap))? {
                return Err(err);
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(stale(format!("get kept racing the writer: {err}")));
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The values of many keys, in order.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k.as_ref())).collect()
    }

    /// The fast path of a get: reads the snapshot's pages in place (each validated once, like the
    /// writer does) when the shard's publication count is the one loaded before the snapshot's
    /// checkpoint was read, both before and after the read. While it stays there, the writer has not
    /// stored the checkpoint after it (or has, without announcing it yet), and the pages and extents
    /// this snapshot references are rewritten only by the flush after *that* one — so nothing read
    /// was being rewritten. `None`: take the copying path (no board, not following, the count moved,
    /// or the read failed).
    #[inline]
    fn read_in_place(
        &self,
        view: &View,
        shard: &ReaderShard,
        snap: &Snapshot,
        key: &[u8],
        hash: u64,
    ) -> Option<Result<Option<Vec<u8>>>> {
        let board = view
            .board
            .as_ref()
            .filter(|_| self.follow.load(Ordering::Relaxed))?;
        if board.count(shard.position) != snap.published.load(Ordering::Acquire) {
            return None;
        }
        let answer = snap.lookup(key, hash, &shard.counters, false);
        // Orders the reads above before the count's second load (the seqlock reader's fence).
        std::sync::atomic::fence(Ordering::Acquire);
        if board.count(shard.position) != snap.published.load(Ordering::Acquire) {
            return None;
        }
        match answer {
            Ok((v, served)) => {
                shard.counters.served(served);
                Some(Ok(v))
            }
            Err(e) if moved_on(&e) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Catches up with the writer now: reloads the manifest when the layout changed (a rebalance or
    /// split) and every shard whose checkpoint changed. Returns whether anything changed. Gets do
    /// this by themselves for their shard when the writer announces a flush; call it to follow a
    /// store whose board is missing (a writer of an older build) or before a long scan.
    pub fn refresh(&self) -> Result<bool> {
        let _one = self.reloading.lock();
        let view = self.view.load_full();
        let manifest = load_manifest(&self.path)?;
        if publish::epoch(&manifest) != view.epoch {
            self.view.store(Arc::new(build_view(&self.path)?));
            return Ok(true);
        }
        let mut changed = false;
        for shard in &view.shards {
            changed |= self.reload_shard_locked(&view, shard, None)?;
        }
        Ok(changed)
    }

    /// Visits every key of the flushed state once with its value, shard by shard. Return `false`
    /// from `f` to stop. A shard the writer moves on under the scan is reloaded and the scan goes on
    /// at the bucket it was in (a bucket is visited whole or not at all, so nothing repeats); when the
    /// shard's table was rebuilt with another bucket count meanwhile, the scan fails with
    /// [`Error::Stale`] (run it again).
    pub fn scan(&self, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.refresh()?;
        let view = self.view.load_full();
        let no_log = |_: &[u8]| false;
        for shard in &view.shards {
            let mut from = 0;
            let mut attempt = 0;
            loop {
                let snap = shard.snap.load_full();
                let (at, err) = match snap.scan_from(from, &no_log, &mut f) {
                    Ok(true) => break,
                    Ok(false) => return Ok(()),
                    Err((at, e)) if moved_on(&e) => (at, e),
                    Err((_, e)) => return Err(e),
                };
                attempt += 1;
                if !self.reload_shard(&view, shard, Some(&snap))? {
                    return Err(err);
                }
                let buckets = shard.snap.load().ckpt.buckets;
                if attempt >= MAX_ATTEMPTS || (at > 0 && buckets != snap.ckpt.buckets) {
                    return Err(stale(format!(
                        "shard {} changed under this scan ({err}); run the scan again",
                        shard.id
                    )));
                }
                from = at;
            }
        }
        Ok(())
    }

    /// Verifies every page and value of the flushed state like [`crate::Db::check`]. A problem seen
    /// in a shard the writer moved on meanwhile is checked again on the newer checkpoint; only
    /// problems that stay on one checkpoint are reported.
    pub fn check(&self, progress: &dyn Progress) -> Result<CheckReport> {
        self.refresh()?;
        let view = self.view.load_full();
        let total = view
            .shards
            .iter()
            .map(|s| s.snap.load().ckpt.page_map.len() as u64)
            .sum();
        progress.start("check", total);
        let mut report = CheckReport::default();
        for shard in &view.shards {
            let mut attempt = 0;
            loop {
                let snap = shard.snap.load_full();
                let mut one = CheckReport::default();
                check_snapshot(&snap, &mut one);
                attempt += 1;
                if one.problems.is_empty() || !self.reload_shard(&view, shard, Some(&snap))? {
                    report.pages_checked += one.pages_checked;
                    report.values_checked += one.values_checked;
                    report.problems.extend(one.problems);
                    progress.advance(snap.ckpt.page_map.len() as u64);
                    break;
                }
                if attempt >= MAX_ATTEMPTS {
                    return Err(stale(format!(
                        "shard {} kept changing during check",
                        shard.id
                    )));
                }
            }
        }
        progress.finish();
        Ok(report)
    }

    /// The counters of this handle's reads and the figures of the flushed state it sees (log
    /// fields are 0: a reader does not see the writer's logs).
    pub fn stats(&self) -> Stats {
        let view = self.view.load();
        let per_shard = view
            .shards
            .iter()
            .map(|s| table_stats(s.id, &s.snap.load(), &s.counters))
            .collect();
        let report = IoReport {
            engine: IoSetup::mapped().batch.name(),
            direct: Default::default(),
            page_cache_pages: 0,
        };
        let mut stats = Stats::aggregate(FORMAT_VERSION, report, per_shard);
        stats.read_only = Some(ReadOnlyStats {
            reloads: self.reloads.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            copied_gets: self.copied_gets.load(Ordering::Relaxed),
        });
        stats
    }

    /// The view to read from, rebuilt first when the board announces another layout.
    fn current_view(&self) -> Result<arc_swap::Guard<Arc<View>>> {
        let view = self.view.load();
        let moved = view
            .board
            .as_ref()
            .is_some_and(|b| b.epoch() != view.board_epoch);
        if !moved {
            return Ok(view);
        }
        {
            let _one = self.reloading.lock();
            let now = self.view.load();
            // Another thread may have rebuilt it while this one waited.
            if Arc::ptr_eq(&now, &view) {
                self.view.store(Arc::new(build_view(&self.path)?));
            }
        }
        Ok(self.view.load())
    }

    /// Reloads `shard` when the board says its writer stored a newer checkpoint than the one read.
    /// When another thread is already reloading, this one goes on with the snapshot it has (still
    /// correct, one flush older) rather than wait.
    #[inline]
    fn catch_up(&self, view: &View, shard: &ReaderShard) -> Result<()> {
        let Some(board) = view
            .board
            .as_ref()
            .filter(|_| self.follow.load(Ordering::Relaxed))
        else {
            return Ok(());
        };
        let moved = || board.count(shard.position) != shard.seen.load(Ordering::Acquire);
        if moved() {
            if let Some(_one) = self.reloading.try_lock() {
                // Checked again under the lock: another thread may have just reloaded it.
                if moved() {
                    self.reload_shard_locked(view, shard, None)?;
                }
            }
        }
        Ok(())
    }

    fn reload_shard(
        &self,
        view: &View,
        shard: &ReaderShard,
        failed: Option<&Arc<Snapshot>>,
    ) -> Result<bool> {
        let _one = self.reloading.lock();
        self.reload_shard_locked(view, shard, failed)
    }

    /// Reads the shard's newest checkpoint and installs it when it differs from the current one.
    /// Returns true when the shard (or the whole layout) changed, so a read that failed on `failed`
    /// is worth retrying; false when the disk still holds the very state that failed.
    fn reload_shard_locked(
        &self,
        view: &View,
        shard: &ReaderShard,
        failed: Option<&Arc<Snapshot>>,
    ) -> Result<bool> {
        let current = shard.snap.load_full();
        if failed.is_some_and(|f| !Arc::ptr_eq(f, &current)) {
            // Another thread reloaded while this one waited for the lock.
            return Ok(true);
        }
        let count = view.board.as_ref().map_or(0, |b| b.count(shard.position));
        match load_snapshot(&shard.paths, shard.id, count, Some(&current)) {
            Ok(snap) => {
                if same_state(&snap.ckpt, &current.ckpt) {
                    // Still the newest checkpoint as of `count`: reads in place may go on.
                    current.published.store(count, Ordering::Release);
                    shard.seen.store(count, Ordering::Release);
                    return Ok(false);
                }
                shard.seen.store(count, Ordering::Release);
                shard.snap.store(Arc::new(snap));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            // The writer replaced a file after this reader read the checkpoint naming it (a
            // compaction, a table growth), or removed the layout (a rebalance): look again.
            Err(e) if is_not_found(&e) => {
                let manifest = load_manifest(&self.path)?;
                if publish::epoch(&manifest) != view.epoch {
                    self.view.store(Arc::new(build_view(&self.path)?));
                }
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

/// Errors a writer moving on under a reader produces: a page or value that no longer matches (or a
/// file that is gone). Anything else is returned as it is.
fn moved_on(e: &Error) -> bool {
    matches!(e, Error::Corruption { .. }) || is_not_found(e)
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn stale(reason: String) -> Error {
    Error::Stale(reason)
}

/// Two checkpoints describe the same table and files.
fn same_state(a: &Checkpoint, b: &Checkpoint) -> bool {
    (
        a.generation,
        a.index_file,
        a.index_slots,
        a.data_file,
        a.data_end,
        a.hot_file,
        a.hot_end,
    ) == (
        b.generation,
        b.index_file,
        b.index_slots,
        b.data_file,
        b.data_end,
        b.hot_file,
        b.hot_end,
    )
}

fn load_manifest(store: &Path) -> Result<Manifest> {
    Manifest::load(store)?.ok_or_else(|| Error::NoStore {
        path: store.to_path_buf(),
    })
}

/// Reads the manifest and every shard's checkpoint. A layout the writer replaces while this runs
/// (files of the old one vanish) is read again from its new manifest.
fn build_view(store: &Path) -> Result<View> {
    let mut attempt = 0;
    loop {
        // The board before the manifest and the checkpoints: what they show is then no older than
        // the counts remembered.
        let board = Board::open(store)?;
        let board_epoch = board.as_ref().map_or(0, Board::epoch);
        let manifest = load_manifest(store)?;
        let (route_bits, route) = manifest.routing(store)?;
        let ssd_root = manifest.ssd_root(store);
        let hdd_root = manifest.hdd_root(store);
        let mut shards = Vec::new();
        let mut vanished = None;
        for (position, spec) in manifest.shard_specs().into_iter().enumerate() {
            let paths = ShardPaths::new(&ssd_root, &hdd_root, manifest.layout, spec.id);
            let count = board.as_ref().map_or(0, |b| b.count(position));
            match load_snapshot(&paths, spec.id, count, None) {
                Ok(snap) => shards.push(ReaderShard {
                    id: spec.id,
                    position,
                    paths,
                    snap: ArcSwap::from_pointee(snap),
                    seen: AtomicU64::new(count),
                    counters: Counters::default(),
                }),
                Err(e) if is_not_found(&e) => {
                    vanished = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match vanished {
            None => {
                return Ok(View {
                    epoch: publish::epoch(&manifest),
                    board_epoch,
                    route_bits,
                    route,
                    shards,
                    board,
                });
            }
            Some(e) if attempt + 1 >= MAX_ATTEMPTS => {
                return Err(stale(format!(
                    "the store's layout kept changing while it was opened: {e}"
                )))
            }
            Some(_) => attempt += 1,
        }
    }
}

/// A snapshot of one shard's newest checkpoint over read-only maps of its files. A shard the writer
/// has not created yet reads as empty. The pages validated in `previous` (the snapshot it replaces)
/// stay validated while their generation shows they were not rewritten (see [`Verified`]).
fn load_snapshot(
    paths: &ShardPaths,
    id: u32,
    published: u64,
    previous: Option<&Snapshot>,
) -> Result<Snapshot> {
    let ckpt_path = paths.checkpoint();
    let (mut ckpt, exists) = match Checkpoint::load(&ckpt_path, id)? {
        Some(c) => (c, true),
        None => (Checkpoint::empty(), false),
    };
    let filter = ckpt.filter(&ckpt_path, Options::default().bloom_fpr)?;
    ckpt.bloom = Vec::new();
    let index_path = paths.index(ckpt.index_file);
    let data_path = paths.data(ckpt.data_file);
    let hot_path = paths.hot(ckpt.hot_file);
    let (index_map, data_map, hot_map) = if exists {
        let index = crate::flush::open_index_as(
            &index_path,
            OpenHow::READ,
            id,
            ckpt.index_file,
            ckpt.index_slots,
        )?;
        let data = data::open_for_reading(&data_path, ValueFileKind::Data, id, ckpt.data_end)?;
        let hot = data::open_for_reading(&hot_path, ValueFileKind::Hot, id, ckpt.hot_end)?;
        (
            io::map_read(&index, ckpt.index_slots as u64 * PAGE_SIZE as u64)?,
            io::map_read(&data, ckpt.data_end)?,
            io::map_read(&hot, ckpt.hot_end)?,
        )
    } else {
        (None, None, None)
    };
    let same_file = previous.filter(|p| p.ckpt.index_file == ckpt.index_file);
    let verified = Verified::generations(ckpt.index_slots, same_file.map(|p| &p.verified));
    Ok(Snapshot {
        ckpt,
        filter,
        index_path,
        index_map,
        verified,
        data_path,
        data_map,
        hot_path,
        hot_map,
        direct: DirectFiles::default(),
        io: IoSetup::mapped(),
        shared: true,
        published: AtomicU64::new(published),
    })
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<ReadOnlyDb>();
}
