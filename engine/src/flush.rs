//! The flush: moves one full log part into the global table.
//!
//! 0. Sync every shard's log and advance the sync point (no record in a table is numbered above it).
//! 1. Collect the part's newest record per key, sorted by (bucket, key).
//! 2. Decide whether the table must grow: when entry bytes would pass `table_max_load` of the primary
//!    pages' payload, the table is rebuilt into a new index file with the bucket count that puts it at
//!    2/3 of that load.
//! 3. Append the live values to the data file (sequential, except that records of 4 KiB or more reuse
//!    dead extents freed by earlier flushes) and, for hot keys while the hot file has room, a hot copy.
//! 4. For every touched bucket, merge its old entries with the part's records and write the bucket's new
//!    page chain into slots that the published snapshot does not reference (out-of-place: an old page is
//!    never overwritten while a checkpoint or a reader may still use it, so no page can be torn).
//! 5. Sync the data, hot and index files; update the Bloom filter (rebuild it when it outgrew its size
//!    or its estimated false-positive rate passed `FPR_SLACK` × the target).
//! 6. Write the checkpoint atomically; it retires the log part. The caller then publishes the snapshot
//!    and deletes the log segment.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::{ValueFileKind, ValueWriter, VALUE_RECORD_HEADER};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::io::direct::AlignedBuf;
use crate::io::uring::{write_batch, WriteReq};
use crate::io::{self, le, IoSetup, OpenHow, StorageFile};
use crate::layout::ShardPaths;
use crate::log::RecordKind;
use crate::manifest::FORMAT_VERSION;
use crate::page::{self, entry_len, Loc, PAGE_PAYLOAD, PAGE_SIZE};
use crate::shard::{DirectFiles, LogPart, Shard, Snapshot, Verified, REWRITTEN};
use crate::stats::{Tier, TIERS};

const INDEX_MAGIC: &[u8; 8] = b"TKVINDEX";
/// Dead data-file records at least this long (about a page) are reused before the file grows.
pub const REUSE_MIN_BYTES: u64 = 4096;
/// A Bloom filter whose estimated false-positive rate passes `bloom_fpr × FPR_SLACK` is rebuilt.
pub const FPR_SLACK: f64 = 1.2;
/// A rebuilt Bloom filter is sized for this many times the table's keys.
pub const BLOOM_HEADROOM: f64 = 1.5;

/// What only the flush writes: the value files' append side and the index file.
#[derive(Debug)]
pub(crate) struct Flusher {
    pub data: ValueWriter,
    pub hot: ValueWriter,
    pub index_file: StorageFile,
    pub index_path: PathBuf,
}

impl Flusher {
    /// Opens a shard's writable files at the positions the checkpoint records.
    pub fn open(paths: &ShardPaths, shard: u32, ckpt: &Checkpoint) -> Result<Flusher> {
        let data = ValueWriter::open(
            paths.data(ckpt.data_file),
            ValueFileKind::Data,
            shard,
            ckpt.data_end,
        )?;
        let hot = ValueWriter::open(
            paths.hot(ckpt.hot_file),
            ValueFileKind::Hot,
            shard,
            ckpt.hot_end,
        )?;
        let index_path = paths.index(ckpt.index_file);
        let index_file = open_index(&index_path, shard, ckpt.index_file, ckpt.index_slots)?;
        Ok(Flusher {
            data,
            hot,
            index_file,
            index_path,
        })
    }
}

fn index_header(shard: u32, generation: u64) -> [u8; PAGE_SIZE] {
    let mut h = [0u8; PAGE_SIZE];
    h[..8].copy_from_slice(INDEX_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&shard.to_le_bytes());
    h[16..24].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Creates an index file holding only its header page (slot 0).
pub(crate) fn create_index(path: &Path, shard: u32, generation: u64) -> Result<StorageFile> {
    let f = io::create_rw(path)?;
    f.write_all_at(&index_header(shard, generation), 0)?;
    Ok(f)
}

/// Opens an index file for the flush and checks its header and length.
pub(crate) fn open_index(
    path: &Path,
    shard: u32,
    generation: u64,
    slots: u32,
) -> Result<StorageFile> {
    open_index_as(path, OpenHow::READ_WRITE, shard, generation, slots)
}

/// Opens an index file the way `how` says and checks its header and that it holds `slots` pages
/// (so a map of them can never reach past its end).
pub(crate) fn open_index_as(
    path: &Path,
    how: OpenHow,
    shard: u32,
    generation: u64,
    slots: u32,
) -> Result<StorageFile> {
    let f = io::open(path, how)?;
    let mut h = [0u8; 32];
    f.read_exact_at(&mut h, 0)?;
    if &h[..8] != INDEX_MAGIC || crc32fast::hash(&h[..28]) != le::u32_at(&h, 28) {
        return Err(Error::corruption(path, 0, "bad index-file header"));
    }
    let version = le::u32_at(&h, 8);
    if version != FORMAT_VERSION {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if le::u32_at(&h, 12) != shard || le::u64_at(&h, 16) != generation {
        return Err(Error::corruption(
            path,
            12,
            "index file belongs to another shard or generation",
        ));
    }
    let len = f.len()?;
    if len < slots as u64 * PAGE_SIZE as u64 {
        return Err(Error::corruption(
            path,
            len,
            format!(
                "index file is {len} bytes, the checkpoint needs {} pages",
                slots
            ),
        ));
    }
    Ok(f)
}

/// Builds the published snapshot for a checkpoint: maps the files and loads or takes the filter.
pub(crate) fn snapshot(
    fl: &Flusher,
    mut ckpt: Checkpoint,
    filter: Filter,
    verified: Verified,
    io: &IoSetup,
) -> Result<Snapshot> {
    ckpt.bloom = Vec::new();
    let index_len = ckpt.index_slots as u64 * PAGE_SIZE as u64;
    let direct_open = |on: bool, path: &Path| -> Result<Option<StorageFile>> {
        on.then(|| io::open(path, OpenHow::READ_DIRECT)).transpose()
    };
    let direct = DirectFiles {
        index: direct_open(io.direct.index, &fl.index_path)?,
        data: direct_open(io.direct.data, &fl.data.path)?,
        hot: direct_open(io.direct.hot, &fl.hot.path)?,
    };
    Ok(Snapshot {
        direct,
        shared: false,
        published: std::sync::atomic::AtomicU64::new(0),
        io: io.clone(),
        index_map: io::map_read(&fl.index_file, index_len)?,
        index_path: fl.index_path.clone(),
        verified,
        data_map: io::map_read(fl.data.file(), ckpt.data_end)?,
        data_path: fl.data.path.clone(),
        hot_map: io::map_read(fl.hot.file(), ckpt.hot_end)?,
        hot_path: fl.hot.path.clone(),
        filter,
        ckpt,
    })
}

struct Pending<'a> {
    hash: u64,
    bucket: u32,
    key: &'a [u8],
    kind: RecordKind,
    value: &'a [u8],
    hot: bool,
    /// Filled in step 3 for puts.
    loc: Option<Loc>,
    /// The key was already in the table.
    existed: bool,
}

/// Effect of the flush on the table's figures.
#[derive(Default)]
struct Delta {
    keys_added: u64,
    keys_removed: u64,
    live_bytes_added: u64,
    live_bytes_removed: u64,
    entry_bytes_added: u64,
    entry_bytes_removed: u64,
    data_dead: u64,
    hot_dead: u64,
    /// Data extents this flush frees (reusable from the next flush on).
    freed: Vec<(u64, u32)>,
}

impl Delta {
    fn drop_old(&mut self, key: &[u8], loc: &Loc) {
        let rec = VALUE_RECORD_HEADER + loc.value_len as u64;
        self.live_bytes_removed += (key.len() + loc.value_len as usize) as u64;
        self.entry_bytes_removed += entry_len(key.len(), loc) as u64;
        self.data_dead += rec;
        if rec >= REUSE_MIN_BYTES {
            self.freed.push((loc.data_off, rec as u32));
        }
        if loc.hot_off.is_some() {
            self.hot_dead += rec;
        }
    }

    fn add_new(&mut self, key: &[u8], loc: &Loc) {
        self.live_bytes_added += (key.len() + loc.value_len as usize) as u64;
        self.entry_bytes_added += entry_len(key.len(), loc) as u64;
    }
}

/// Flushes `part` on top of `snap`; returns the new snapshot (the caller publishes it).
pub(crate) fn flush_part(
    shard: &Shard,
    fl: &mut Flusher,
    part: &LogPart,
    snap: &Snapshot,
) -> Result<Snapshot> {
    let opts = &shard.opts;
    let old = &snap.ckpt;
    let counters = &shard.counters;
    let generation = old.generation + 1;

    // 1. The part's newest record per key.
    let mut max_seq = old.max_seq;
    let mut pending: Vec<Pending<'_>> = part
        .table
        .iter()
        .map(|(_, payload)| {
            let rec = part.seg.record(payload as u32);
            max_seq = max_seq.max(rec.seq);
            let hash = KeyHash::of(rec.key).0;
            Pending {
                hash,
                bucket: 0,
                key: rec.key,
                kind: rec.kind,
                value: rec.value,
                hot: payload & REWRITTEN != 0,
                loc: None,
                existed: false,
            }
        })
        .collect();

    // 2. Growth.
    let put_bytes: u64 = pending
        .iter()
        .filter(|p| p.kind == RecordKind::Put)
        .map(|p| (page::DIR_BYTES + page::ENTRY_HEADER + 6 + p.key.len()) as u64)
        .sum();
    // Past `table_max_load` the table is rebuilt with room to grow (load 2/3 of the maximum after the
    // rebuild, so rebuilds are amortized); flushes only grow it, compaction may also shrink it.
    let needed = old.entry_bytes + put_bytes;
    let rebuild = needed > 0
        && needed as f64 > PAGE_PAYLOAD as f64 * old.buckets as f64 * opts.table_max_load;
    let buckets = if rebuild {
        old.buckets
            .max(buckets_for(needed, opts.table_max_load * 2.0 / 3.0))
    } else {
        old.buckets
    };
    for p in pending.iter_mut() {
        p.bucket = KeyHash(p.hash).bucket(buckets);
    }
    pending.sort_unstable_by(|a, b| a.bucket.cmp(&b.bucket).then_with(|| a.key.cmp(b.key)));

    // 3. Values: data file always (a value of a page or more first reuses a dead extent freed by an
    // earlier flush: no published snapshot references those), hot file for hot keys while it has room.
    // Free extents by length (best fit: the smallest extent that holds the record).
    let mut data_free: std::collections::BTreeMap<u32, Vec<u64>> =
        std::collections::BTreeMap::new();
    for (off, len) in &old.data_free {
        data_free.entry(*len).or_default().push(*off);
    }
    let mut reused = 0u64;
    for p in pending.iter_mut().filter(|p| p.kind == RecordKind::Put) {
        let rec = VALUE_RECORD_HEADER + p.value.len() as u64;
        let extent = if rec >= REUSE_MIN_BYTES {
            data_free.range(rec as u32..).next().map(|(len, _)| *len)
        } else {
            None
        };
        let data_off = match extent {
            Some(len) => {
                let offs = data_free.get_mut(&len).expect("the length was just found");
                let off = offs.pop().expect("lengths are kept only with offsets");
                if offs.is_empty() {
                    data_free.remove(&len);
                }
                fl.data.write_at(off, p.hash, p.value)?;
                reused += rec;
                // A remainder too small to reuse stays dead (compaction reclaims it).
                let rest = len as u64 - rec;
                if rest >= REUSE_MIN_BYTES {
                    data_free.entry(rest as u32).or_default().push(off + rec);
                }
                off
            }
            None => fl.data.append(p.hash, p.value)?,
        };
        let hot_off =
            if crate::hot::admit_on_flush(shard, p.hash, p.hot, fl.hot.end(), p.value.len()) {
                Some(fl.hot.append(p.hash, p.value)?)
            } else {
                None
            };
        p.loc = Some(Loc {
            value_len: p.value.len() as u32,
            data_off,
            hot_off,
        });
    }

    // 4. Pages.
    let mut delta = Delta::default();
    let mut out: Vec<(u32, Box<[u8; PAGE_SIZE]>)> = Vec::new();
    let find_pending = |pending: &[Pending<'_>], bucket: u32, key: &[u8]| {
        pending
            .binary_search_by(|p| p.bucket.cmp(&bucket).then_with(|| p.key.cmp(key)))
            .ok()
    };
    let (page_map, free_slots, index_slots, overflow_pages, index_file) = if rebuild {
        // Every surviving entry, re-bucketed.
        let progress = shard.progress.read().clone();
        if let Some(p) = &progress {
            p.start(
                &format!("grow table of shard {} to {buckets} buckets", shard.id),
                old.page_map.len() as u64,
            );
        }
        let mut all: Vec<(u32, &[u8], Loc, u8)> =
            Vec::with_capacity(old.table_keys as usize + pending.len());
        for b in 0..old.page_map.len() as u32 {
            if let Some(p) = &progress {
                p.advance(1);
            }
            snap.for_each_page(b, |_, page| {
                for (k, loc, fp) in page::entries(page) {
                    let nb = KeyHash::of(k).bucket(buckets);
                    match find_pending(&pending, nb, k) {
                        Some(i) => {
                            pending[i].existed = true;
                            delta.drop_old(k, &loc);
                        }
                        None => all.push((nb, k, loc, fp)),
                    }
                }
                Ok(true)
            })?;
        }
        for p in &pending {
            if let Some(loc) = p.loc {
                all.push((p.bucket, p.key, loc, page::fingerprint(p.hash)));
                delta.add_new(p.key, &loc);
            }
        }
        all.sort_unstable_by_key(|e| e.0);
        let (page_map, next, overflow) = encode_table(&all, buckets, generation, &mut out);
        if let Some(p) = &progress {
            p.finish();
        }
        let new_gen = old.index_file + 1;
        let path = shard.paths.index(new_gen);
        let file = create_index(&path, shard.id, new_gen)?;
        shard.counters.table_growths.fetch_add(1, Ordering::Relaxed);
        (
            page_map,
            Vec::new(),
            next,
            overflow,
            Some((file, path, new_gen)),
        )
    } else {
        let mut page_map = old.page_map.clone();
        let mut free = old.free_slots.clone();
        let mut freed = Vec::new();
        let mut slots = old.index_slots;
        let mut overflow = old.overflow_pages;
        let mut start = 0usize;
        while start < pending.len() {
            let b = pending[start].bucket;
            let end = start
                + pending[start..]
                    .iter()
                    .take_while(|p| p.bucket == b)
                    .count();
            let mut merged: Vec<(&[u8], Loc, u8)> = Vec::new();
            let mut old_pages = 0u64;
            snap.for_each_page(b, |slot, page| {
                freed.push(slot);
                old_pages += 1;
                for (k, loc, fp) in page::entries(page) {
                    match find_pending(&pending[start..end], b, k) {
                        Some(i) => {
                            pending[start + i].existed = true;
                            delta.drop_old(k, &loc);
                        }
                        None => merged.push((k, loc, fp)),
                    }
                }
                Ok(true)
            })?;
            for p in &pending[start..end] {
                if let Some(loc) = p.loc {
                    merged.push((p.key, loc, page::fingerprint(p.hash)));
                    delta.add_new(p.key, &loc);
                }
            }
            overflow -= old_pages.saturating_sub(1);
            if merged.is_empty() {
                page_map[b as usize] = 0;
            } else {
                let first = out.len();
                page::encode_bucket(
                    b,
                    generation,
                    merged,
                    || {
                        free.pop().unwrap_or_else(|| {
                            slots += 1;
                            slots - 1
                        })
                    },
                    &mut out,
                );
                page_map[b as usize] = out[first].0;
                overflow += (out.len() - first - 1) as u64;
            }
            start = end;
        }
        free.extend(freed);
        (page_map, free, slots, overflow, None)
    };
    for p in &pending {
        match (p.kind, p.existed) {
            (RecordKind::Put, false) => delta.keys_added += 1,
            (RecordKind::Delete, true) => delta.keys_removed += 1,
            _ => {}
        }
    }

    let index_generation = index_file.as_ref().map_or(old.index_file, |f| f.2);
    let index_file_ref = match &index_file {
        Some((f, _, _)) => f,
        None => &fl.index_file,
    };
    let writes = write_pages(index_file_ref, &mut out, &shard.io, index_generation)?;
    counters.write(Tier::Index, writes, (out.len() * PAGE_SIZE) as u64);
    counters
        .pages_written
        .fetch_add(out.len() as u64, Ordering::Relaxed);

    // 5. Durability of everything the checkpoint will reference.
    fl.data.sync()?;
    let (b, w) = fl.data.take_io();
    counters.write(Tier::Data, w, b);
    if fl.hot.end() > old.hot_end {
        fl.hot.sync()?;
        let (b, w) = fl.hot.take_io();
        counters.write(Tier::Hot, w, b);
    }
    index_file_ref.sync_data()?;
    if let Some((file, path, _)) = index_file {
        fl.index_file = file;
        fl.index_path = path;
    }

    let table_keys = old.table_keys + delta.keys_added - delta.keys_removed;
    let mut ckpt = Checkpoint {
        generation,
        index_file: index_generation,
        index_slots,
        buckets,
        data_end: fl.data.end(),
        hot_end: fl.hot.end(),
        log_flushed_seq: part.seg.seq,
        max_seq,
        data_file: old.data_file,
        hot_file: old.hot_file,
        table_keys,
        table_live_bytes: old.table_live_bytes + delta.live_bytes_added - delta.live_bytes_removed,
        entry_bytes: old.entry_bytes + delta.entry_bytes_added - delta.entry_bytes_removed,
        overflow_pages,
        data_dead_bytes: (old.data_dead_bytes + delta.data_dead).saturating_sub(reused),
        hot_dead_bytes: old.hot_dead_bytes + delta.hot_dead,
        bloom_capacity: 0,
        bloom_inserted: 0,
        bloom_removed: 0,
        written_total: [0; TIERS],
        page_map,
        free_slots,
        data_free: data_free
            .into_iter()
            .flat_map(|(len, offs)| offs.into_iter().map(move |off| (off, len)))
            .chain(std::mem::take(&mut delta.freed))
            .collect(),
        bloom: Vec::new(),
    };

    // Verified bits: pages this flush wrote are known good; others keep their state.
    let verified = Verified::bits(index_slots);
    if !rebuild {
        for (w, old) in verified.bit_words().iter().zip(snap.verified.bit_words()) {
            w.store(old.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
    for (slot, page) in &out {
        verified.mark(*slot, page::header(&page[..]).generation);
    }

    // Bloom filter: add the new keys, or rebuild when the table outgrew it.
    // Add the new keys to a copy of the filter, unless the table outgrew it or deletes left so many
    // stale bits that its estimated false-positive rate passed the target by `FPR_SLACK`: then rebuild
    // it from the table's keys, sized 1.5× (DRAM ≤ 1.5 × 1.2 bytes per key at 1 % between rebuilds).
    let grown_filter = (!rebuild && table_keys <= snap.filter.capacity).then(|| {
        let mut f = snap.filter.clone();
        for p in pending
            .iter()
            .filter(|p| p.kind == RecordKind::Put && !p.existed)
        {
            f.insert(p.hash);
        }
        f.removed += delta.keys_removed;
        f
    });
    let grown_filter = grown_filter.filter(|f| f.estimated_fpr() <= opts.bloom_fpr * FPR_SLACK);
    let rebuild_filter = grown_filter.is_none();
    let mut filter = grown_filter.unwrap_or_else(|| {
        Filter::new((table_keys as f64 * BLOOM_HEADROOM) as u64, opts.bloom_fpr)
    });
    if rebuild_filter {
        counters.bloom_rebuilds.fetch_add(1, Ordering::Relaxed);
    }
    let mut new_snap = snapshot(fl, ckpt.clone(), filter.clone(), verified, &shard.io)?;
    if rebuild_filter {
        for b in 0..new_snap.ckpt.page_map.len() as u32 {
            new_snap.for_each_page(b, |_, page| {
                for (k, _, _) in page::entries(page) {
                    filter.insert(KeyHash::of(k).0);
                }
                Ok(true)
            })?;
        }
    }

    // 6. The checkpoint retires the log part.
    ckpt.bloom_capacity = filter.capacity;
    ckpt.bloom_inserted = filter.inserted;
    ckpt.bloom_removed = filter.removed;
    ckpt.bloom = filter.to_bytes();
    counters.flushes.fetch_add(1, Ordering::Relaxed);
    store_checkpoint(shard, &mut ckpt)?;
    new_snap.filter = filter;
    new_snap.ckpt.bloom_capacity = ckpt.bloom_capacity;
    new_snap.ckpt.bloom_inserted = ckpt.bloom_inserted;
    new_snap.ckpt.bloom_removed = ckpt.bloom_removed;
    new_snap.ckpt.written_total = ckpt.written_total;
    Ok(new_snap)
}

/// Stamps the cumulative written bytes into `ckpt` and stores it atomically. The persisted totals
/// include every write before this checkpoint; the checkpoint's own bytes are counted after it.
pub(crate) fn store_checkpoint(shard: &Shard, ckpt: &mut Checkpoint) -> Result<()> {
    for tier in 0..TIERS {
        ckpt.written_total[tier] = shard.counters.written_before[tier].load(Ordering::Relaxed)
            + shard.counters.tiers[tier]
                .write_bytes
                .load(Ordering::Relaxed);
    }
    let bytes = ckpt.store(&shard.paths.checkpoint(), shard.id)?;
    shard.counters.write(Tier::Meta, 1, bytes);
    // Only once the checkpoint is durable under its name: a reader that sees the new count finds it.
    shard.board.publish(shard.position);
    Ok(())
}

/// Encodes entries sorted by bucket into a fresh table of `buckets` buckets whose pages take slots 1,
/// 2, … in bucket order. Returns the page map, the slot count (header included) and overflow pages.
pub(crate) fn encode_table(
    all: &[(u32, &[u8], Loc, u8)],
    buckets: u32,
    generation: u64,
    out: &mut Vec<(u32, Box<[u8; PAGE_SIZE]>)>,
) -> (Vec<u32>, u32, u64) {
    let mut page_map = vec![0u32; buckets as usize];
    let mut next = 1u32;
    let mut overflow = 0u64;
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        let first = out.len();
        page::encode_bucket(
            group[0].0,
            generation,
            group.iter().map(|e| (e.1, e.2, e.3)),
            || {
                next += 1;
                next - 1
            },
            out,
        );
        page_map[group[0].0 as usize] = out[first].0;
        overflow += (out.len() - first - 1) as u64;
    }
    (page_map, next, overflow)
}

/// Writes pages in slot order as one batch (io_uring, or positioned writes), coalescing runs of
/// consecutive slots into one write of at most 4 MiB: each page is written once and a flush issues
/// at most one write per page. Then puts every page into the shard's page cache (write-through, see
/// `io/page_cache.rs`) for the index file of `generation`. Returns the number of writes issued.
pub(crate) fn write_pages(
    file: &StorageFile,
    out: &mut [(u32, Box<[u8; PAGE_SIZE]>)],
    io: &IoSetup,
    generation: u64,
) -> Result<u64> {
    out.sort_unstable_by_key(|(slot, _)| *slot);
    // Runs of consecutive slots: (first slot, bytes).
    let mut runs: Vec<(u32, Vec<u8>)> = Vec::new();
    for (slot, page) in out.iter() {
        match runs.last_mut() {
            Some((first, bytes))
                if *first as usize + bytes.len() / PAGE_SIZE == *slot as usize
                    && bytes.len() < 4 << 20 =>
            {
                bytes.extend_from_slice(&page[..])
            }
            _ => runs.push((*slot, page.to_vec())),
        }
    }
    let reqs: Vec<WriteReq<'_>> = runs
        .iter()
        .map(|(first, bytes)| WriteReq {
            file,
            offset: *first as u64 * PAGE_SIZE as u64,
            buf: bytes,
        })
        .collect();
    write_batch(io.batch, &reqs)?;
    if let Some(cache) = &io.cache {
        for (slot, page) in out.iter() {
            let mut buf = AlignedBuf::zeroed(PAGE_SIZE);
            buf.as_mut_slice()[..PAGE_SIZE].copy_from_slice(&page[..]);
            cache.insert(generation, *slot, Arc::new(buf));
        }
    }
    Ok(runs.len() as u64)
}

/// The bucket count a table of `entry_bytes` needs at `load` (at least 1).
pub(crate) fn buckets_for(entry_bytes: u64, load: f64) -> u32 {
    ((entry_bytes as f64 / (PAGE_PAYLOAD as f64 * load)).ceil() as u64).clamp(1, u32::MAX as u64)
        as u32
}

/// A table written in full into a new index file (the next generation) and synced.
pub(crate) struct RebuiltTable {
    pub file: StorageFile,
    pub path: PathBuf,
    pub generation: u64,
    pub page_map: Vec<u32>,
    pub slots: u32,
    pub overflow: u64,
}

/// Writes `all` (sorted by bucket) as a fresh table of `buckets` buckets into the index file after
/// `old_index_file`, syncs it, and counts the writes.
pub(crate) fn write_rebuilt_table(
    shard: &Shard,
    all: &[(u32, &[u8], Loc, u8)],
    buckets: u32,
    generation: u64,
    old_index_file: u64,
) -> Result<RebuiltTable> {
    let mut out = Vec::new();
    let (page_map, slots, overflow) = encode_table(all, buckets, generation, &mut out);
    let index_gen = old_index_file + 1;
    let path = shard.paths.index(index_gen);
    let file = create_index(&path, shard.id, index_gen)?;
    let writes = write_pages(&file, &mut out, &shard.io, index_gen)?;
    file.sync_data()?;
    shard
        .counters
        .write(Tier::Index, writes, (out.len() * PAGE_SIZE) as u64);
    shard
        .counters
        .pages_written
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    Ok(RebuiltTable {
        file,
        path,
        generation: index_gen,
        page_map,
        slots,
        overflow,
    })
}

/// Makes a rebuilt table live once the checkpoint naming it is stored: the flusher writes to the new
/// index file, readers get the new snapshot, the old index file is deleted. The caller swaps any new
/// value file into `fl` first and deletes the old one after.
pub(crate) fn install_rebuilt(
    shard: &Shard,
    fl: &mut Flusher,
    ckpt: Checkpoint,
    filter: Filter,
    table: RebuiltTable,
) -> Result<()> {
    let old_index = std::mem::replace(&mut fl.index_path, table.path);
    fl.index_file = table.file;
    let verified = Verified::bits(ckpt.index_slots);
    for w in verified.bit_words() {
        w.store(u64::MAX, Ordering::Relaxed);
    }
    let snap = snapshot(fl, ckpt, filter, verified, &shard.io)?;
    {
        let mut st = shard.state.write();
        st.snap = Arc::new(snap);
        shard.set_quiet(&st);
    }
    io::remove_if_exists(&old_index)
}
