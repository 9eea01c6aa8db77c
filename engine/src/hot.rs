//! The hot tier's policy: which values get a copy in the shard's hot file (SSD).
//!
//! Admission by access frequency: every get answered from the global table bumps the key's saturating
//! counters in a two-row count-min sketch with conservative update (each row picked by different hash
//! bits; only the smallest counters grow, so collisions inflate estimates little), halved after every
//! rebuild so old popularity fades. The sketch holds `hot_capacity_bytes / 16` counters per row.
//! When enough gets since the last rebuild were served from the data file (HDD), the shard's hot set
//! is rebuilt in the background: the hottest keys (counter ≥ 2) that fit in 90 %
//! of `hot_capacity_bytes` get copies in a new hot file generation, every other entry loses its hot
//! offset (eviction), and the table is rewritten with the new offsets. The threshold doubles after
//! each rebuild, so a workload without skew pays for only a logarithmic number of rebuilds. Between
//! rebuilds, a flush gives a hot copy to a new value of a key that is hot, while the hot file has room.
//!
//! Crash safety is the compaction's: new hot and index files become the store of record with the
//! checkpoint that names them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use crate::checkpoint::Checkpoint;
use crate::data::{ValueFileKind, ValueWriter, VALUE_FILE_HEADER, VALUE_RECORD_HEADER};
use crate::error::Result;
use crate::flush;
use crate::hash::KeyHash;
use crate::io;
use crate::page::{self, Loc};
use crate::shard::Shard;
use crate::stats::Tier;

/// A key read at least this often (by its counter) is hot.
pub(crate) const HOT_THRESHOLD: u8 = 2;

/// Per-shard access-frequency counters and rebuild trigger.
#[derive(Debug)]
pub(crate) struct Heat {
    counters: Box<[AtomicU8]>,
    mask: u64,
    /// Gets served from the data file since the last rebuild.
    data_reads: AtomicU64,
    /// Data reads that trigger the next rebuild.
    threshold: AtomicU64,
    /// A rebuild was requested and has not run yet.
    requested: AtomicBool,
}

impl Heat {
    /// Counters for a hot file of `hot_capacity` bytes (none when it is 0).
    pub fn new(hot_capacity: u64) -> Heat {
        let n = if hot_capacity == 0 {
            0
        } else {
            (hot_capacity / 16).clamp(4096, 1 << 24).next_power_of_two()
        };
        Heat {
            counters: (0..2 * n).map(|_| AtomicU8::new(0)).collect(),
            mask: n.saturating_sub(1),
            data_reads: AtomicU64::new(0),
            threshold: AtomicU64::new(10_000),
            requested: AtomicBool::new(false),
        }
    }

    /// True when the hot tier is off.
    pub fn is_off(&self) -> bool {
        self.counters.is_empty()
    }

    /// Counts a get of `hash` answered from the table; returns true when a rebuild should start.
    #[inline]
    pub fn touch(&self, hash: u64, from_data: bool) -> bool {
        if self.counters.is_empty() {
            return false;
        }
        let (a, b) = self.cells(hash);
        let (va, vb) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        let min = va.min(vb);
        if min < u8::MAX {
            // Conservative update: raise only the counters at the minimum.
            if va == min {
                a.store(min + 1, Ordering::Relaxed);
            }
            if vb == min {
                b.store(min + 1, Ordering::Relaxed);
            }
        }
        from_data
            && self.data_reads.fetch_add(1, Ordering::Relaxed) + 1
                >= self.threshold.load(Ordering::Relaxed)
            && !self.requested.swap(true, Ordering::AcqRel)
    }

    /// The two counters of `hash`: one per row, indexed by different bits of the hash.
    #[inline]
    fn cells(&self, hash: u64) -> (&AtomicU8, &AtomicU8) {
        let row = self.mask as usize + 1;
        (
            &self.counters[(hash & self.mask) as usize],
            &self.counters[row + (hash.rotate_right(29) & self.mask) as usize],
        )
    }

    /// The estimated access count of `hash`.
    #[inline]
    pub fn get(&self, hash: u64) -> u8 {
        if self.counters.is_empty() {
            return 0;
        }
        let (a, b) = self.cells(hash);
        a.load(Ordering::Relaxed).min(b.load(Ordering::Relaxed))
    }

    /// After a rebuild: halve the counters, double the threshold, re-arm the trigger.
    fn rebuilt(&self) {
        for c in self.counters.iter() {
            c.store(c.load(Ordering::Relaxed) / 2, Ordering::Relaxed);
        }
        self.data_reads.store(0, Ordering::Relaxed);
        let t = self.threshold.load(Ordering::Relaxed);
        self.threshold.store(t.saturating_mul(2), Ordering::Relaxed);
        self.requested.store(false, Ordering::Release);
    }

    /// DRAM held by the counters.
    pub fn dram_bytes(&self) -> u64 {
        self.counters.len() as u64
    }
}

/// Rebuilds a shard's hot set from its counters. Returns the number of hot copies written.
pub(crate) fn rebuild_hot_set(shard: &Shard) -> Result<u64> {
    let opts = &shard.opts;
    if shard.heat.is_off() {
        return Ok(0);
    }
    let mut fl = shard.flusher.lock();
    let snap = shard.state.read().snap.clone();
    let old = &snap.ckpt;

    // Every entry, with its counter.
    let mut all: Vec<(u32, &[u8], Loc, u8)> = Vec::with_capacity(old.table_keys as usize);
    let mut candidates: Vec<(u8, usize, u64)> = Vec::new();
    for b in 0..old.page_map.len() as u32 {
        snap.for_each_page(b, |_, p| {
            for (k, loc, fp) in page::entries(p) {
                let hash = KeyHash::of(k).0;
                let heat = shard.heat.get(hash);
                if heat >= HOT_THRESHOLD {
                    candidates.push((heat, all.len(), hash));
                }
                all.push((b, k, loc, fp));
            }
            Ok(true)
        })?;
    }
    candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    // 10 % stays free for flushes to give new values of hot keys their hot copies.
    let budget = opts.hot_capacity_bytes / 10 * 9;
    let hot_gen = old.hot_file + 1;
    let hot_path = shard.paths.hot(hot_gen);
    io::remove_if_exists(&hot_path)?;
    let mut hot = ValueWriter::open(hot_path, ValueFileKind::Hot, shard.id, 0)?;
    let mut chosen = vec![false; all.len()];
    let mut used = 0u64;
    let mut copies = 0u64;
    for (_, i, hash) in &candidates {
        let loc = all[*i].2;
        let rec = VALUE_RECORD_HEADER + loc.value_len as u64;
        if used + rec > budget {
            continue;
        }
        let value = snap.read(&loc, *hash, &shard.counters)?.0;
        all[*i].2.hot_off = Some(hot.append(*hash, &value)?);
        chosen[*i] = true;
        used += rec;
        copies += 1;
    }
    for (i, e) in all.iter_mut().enumerate() {
        if !chosen[i] {
            e.2.hot_off = None;
        }
    }
    hot.sync()?;
    let (bytes, writes) = hot.take_io();
    shard.counters.write(Tier::Hot, writes, bytes);

    // The table, same buckets, new hot offsets (entries with and without them differ in size).
    let generation = old.generation + 1;
    let entry_bytes = all
        .iter()
        .map(|e| page::entry_len(e.1.len(), &e.2) as u64)
        .sum();
    let mut table =
        flush::write_rebuilt_table(shard, &all, old.buckets, generation, old.index_file)?;
    let mut ckpt = Checkpoint {
        generation,
        index_file: table.generation,
        index_slots: table.slots,
        hot_file: hot_gen,
        hot_end: hot.end(),
        hot_dead_bytes: 0,
        entry_bytes,
        overflow_pages: table.overflow,
        page_map: std::mem::take(&mut table.page_map),
        free_slots: Vec::new(),
        bloom: snap.filter.to_bytes(),
        ..old.clone()
    };
    flush::store_checkpoint(shard, &mut ckpt)?;
    let old_hot = std::mem::replace(&mut fl.hot, hot);
    let filter = snap.filter.clone();
    drop(all);
    drop(snap);
    flush::install_rebuilt(shard, &mut fl, ckpt, filter, table)?;
    io::remove_if_exists(&old_hot.path)?;
    shard.heat.rebuilt();
    shard.counters.hot_rebuilds.fetch_add(1, Ordering::Relaxed);
    Ok(copies)
}

/// Whether a flush gives the new value of a key a hot copy: the key is hot (or was rewritten while in
/// the log) and the hot file has room.
pub(crate) fn admit_on_flush(
    shard: &Shard,
    hash: u64,
    rewritten: bool,
    hot_end: u64,
    value_len: usize,
) -> bool {
    let limit = VALUE_FILE_HEADER + shard.opts.hot_capacity_bytes;
    (rewritten || shard.heat.get(hash) >= HOT_THRESHOLD)
        && hot_end + VALUE_RECORD_HEADER + value_len as u64 <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_saturate_and_trigger_once() {
        let h = Heat::new(1 << 20);
        for _ in 0..300 {
            h.touch(7, false);
        }
        assert_eq!(h.get(7), u8::MAX);
        let mut triggers = 0;
        for i in 0..25_000u64 {
            triggers += h.touch(i, true) as u32;
        }
        assert_eq!(triggers, 1, "one request until the rebuild ran");
        h.rebuilt();
        assert_eq!(h.get(7), u8::MAX / 2);
        assert!(Heat::new(0).is_off());
    }
}
