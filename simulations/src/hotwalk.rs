//! The hot tier's policy, walked key by key over a workload's operation stream.
//!
//! The engine's hot set depends on *which* keys are read and rewritten, in which order, and on a
//! count-min sketch whose collisions follow the engine's hash: expected values of a popularity curve
//! do not predict it well. This module replays the operations through the engine's hot-tier rules
//! (`engine/src/hot.rs`, `flush.rs`, `shard.rs`), per shard, without a store:
//!
//! - Log parts of `log_capacity_bytes` (records of `RECORD_HEADER + key + value` bytes after the
//!   `LOG_HEADER`); without the background flusher the writer that fills a part flushes it at once.
//!   A get of a key with a record in the log is answered there and counts nothing.
//! - Every get answered from the global table (hot or data file) bumps the key's two counters in the
//!   shard's sketch (u8, saturating, conservative update, `hot_capacity / 16` counters per row clamped
//!   to 4096..2^24 and rounded up to a power of two, cells picked with [`KeyHash`] as the engine does).
//! - At a flush, a put gets a hot copy when it was rewritten within the part or its estimate is ≥ 2,
//!   and the hot file has room (`hot_end + 4 + len ≤ 32 + capacity`). Overwriting or deleting a key
//!   that had a hot copy adds its record to the dead hot bytes.
//! - The hot set is rebuilt after a flush when dead hot bytes reach a quarter of the capacity, and
//!   (with the background thread only) when the gets served from the data file since the last
//!   rebuild reach the threshold (10 000, doubling after each rebuild). A rebuild copies the entries
//!   with estimate ≥ 2, hottest first, that fit in 90 % of the capacity, drops every other hot copy,
//!   rewrites the whole table (every non-empty bucket's page chain) and halves the counters.

use std::collections::HashMap;

use tierkv::format::{
    DIR_BYTES, ENTRY_HEADER, HOT_OFFSET_BYTES, LOG_HEADER, PAGE_PAYLOAD, PAGE_SIZE, RECORD_HEADER,
    VALUE_FILE_HEADER, VALUE_RECORD_HEADER,
};
use tierkv::hash::KeyHash;

use crate::workload::Op;

/// The engine's hot threshold (`hot::HOT_THRESHOLD`).
pub const HOT_THRESHOLD: u8 = 2;
/// Data-file reads that trigger the first background rebuild.
pub const FIRST_REBUILD_READS: u64 = 10_000;

/// Store settings the walk follows.
#[derive(Clone, Debug)]
pub struct HotWalkParams {
    /// Store shards (a power of two).
    pub shards: u32,
    /// Per-shard log capacity.
    pub log_capacity_bytes: u64,
    /// Per-shard hot-file capacity (0: no hot tier).
    pub hot_capacity_bytes: u64,
    /// The background thread runs (it alone acts on the data-read rebuild trigger).
    pub background: bool,
    /// The table's maximum load (`Options::table_max_load`).
    pub table_max_load: f64,
}

/// What the walk counted in one phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HotCounts {
    /// Hot-file bytes written (flush copies and rebuilds).
    pub hot_bytes: u64,
    /// Gets served from the hot file.
    pub hot_reads: u64,
    /// Gets served from the data file.
    pub data_reads: u64,
    /// Index bytes written by hot-set rebuilds (full table rewrites).
    pub rebuild_index_bytes: u64,
    /// Hot-set rebuilds.
    pub rebuilds: u64,
    /// Value reads of hot-set rebuilds (one per copy, from the data or the old hot file).
    pub rebuild_reads: u64,
    /// Fraction of the table's entries holding a hot offset after each shard's `j`-th flush
    /// (averaged over the shards that made `j` flushes): the offsets lengthen entries, which moves
    /// the table's growth rebuilds.
    pub hot_entry_fraction: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: u64,
    value_len: u32,
    hot: bool,
}

fn entry_len(key_len: usize, hot: bool) -> u64 {
    (DIR_BYTES + ENTRY_HEADER + if hot { HOT_OFFSET_BYTES } else { 0 } + key_len) as u64
}

fn value_rec(len: u32) -> u64 {
    VALUE_RECORD_HEADER + len as u64
}

#[derive(Debug)]
struct Shard {
    /// Newest record per key in the active log part: (put value length or `None`, rewritten).
    log: HashMap<Vec<u8>, (Option<u32>, bool)>,
    log_len: u64,
    table: HashMap<Vec<u8>, Entry>,
    entry_bytes: u64,
    buckets: u32,
    counters: Vec<u8>,
    mask: u64,
    data_reads: u64,
    threshold: u64,
    requested: bool,
    hot_end: u64,
    hot_dead: u64,
    hot_entries: u64,
    /// Hot-entry fraction after each flush since the last `take`.
    fractions: Vec<f64>,
}

/// The walk's state: every shard of the store.
#[derive(Debug)]
pub struct HotWalk {
    p: HotWalkParams,
    shards: Vec<Shard>,
    shard_bits: u32,
    /// Counts since the last [`HotWalk::take`].
    pub counts: HotCounts,
}

impl HotWalk {
    /// An empty store.
    pub fn new(p: HotWalkParams) -> HotWalk {
        let n = if p.hot_capacity_bytes == 0 {
            0
        } else {
            (p.hot_capacity_bytes / 16)
                .clamp(4096, 1 << 24)
                .next_power_of_two()
        };
        let shards = (0..p.shards.max(1))
            .map(|_| Shard {
                log: HashMap::new(),
                log_len: LOG_HEADER as u64,
                table: HashMap::new(),
                entry_bytes: 0,
                buckets: 1,
                counters: vec![0; 2 * n as usize],
                mask: n.saturating_sub(1),
                data_reads: 0,
                threshold: FIRST_REBUILD_READS,
                requested: false,
                hot_end: VALUE_FILE_HEADER,
                hot_dead: 0,
                hot_entries: 0,
                fractions: Vec::new(),
            })
            .collect();
        HotWalk {
            shard_bits: p.shards.max(1).trailing_zeros(),
            p,
            shards,
            counts: HotCounts::default(),
        }
    }

    /// The counts so far; resets them.
    pub fn take(&mut self) -> HotCounts {
        let flushes = self
            .shards
            .iter()
            .map(|s| s.fractions.len())
            .max()
            .unwrap_or(0);
        self.counts.hot_entry_fraction = (0..flushes)
            .map(|j| {
                let v: Vec<f64> = self
                    .shards
                    .iter()
                    .filter_map(|s| s.fractions.get(j).copied())
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            })
            .collect();
        for s in self.shards.iter_mut() {
            s.fractions.clear();
        }
        std::mem::take(&mut self.counts)
    }

    fn shard_of(&self, h: KeyHash) -> usize {
        h.shard(self.shard_bits) as usize
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Get(k) | Op::GetMissing(k) => self.get(k),
            Op::Put(k, v) => self.write(k, Some(*v as u32)),
            Op::Delete(k) => self.write(k, None),
        }
    }

    fn get(&mut self, key: &[u8]) {
        let h = KeyHash::of(key);
        let i = self.shard_of(h);
        let sh = &mut self.shards[i];
        if sh.log.contains_key(key) {
            return;
        }
        let Some(&e) = sh.table.get(key) else {
            return;
        };
        if e.hot {
            self.counts.hot_reads += 1;
        } else {
            self.counts.data_reads += 1;
        }
        if sh.counters.is_empty() {
            return;
        }
        let (a, b) = cells(sh.mask, h.0);
        let (va, vb) = (sh.counters[a], sh.counters[b]);
        let min = va.min(vb);
        if min < u8::MAX {
            if va == min {
                sh.counters[a] = min + 1;
            }
            if vb == min {
                sh.counters[b] = min + 1;
            }
        }
        if !e.hot {
            sh.data_reads += 1;
            if sh.data_reads >= sh.threshold && !sh.requested {
                sh.requested = true;
                if self.p.background {
                    self.rebuild(i);
                }
            }
        }
    }

    fn write(&mut self, key: &[u8], value: Option<u32>) {
        let h = KeyHash::of(key);
        let i = self.shard_of(h);
        let rec = (RECORD_HEADER + key.len()) as u64 + value.unwrap_or(0) as u64;
        {
            let sh = &self.shards[i];
            if sh.log_len + rec > self.p.log_capacity_bytes && !sh.log.is_empty() {
                self.flush_shard(i);
            }
        }
        let sh = &mut self.shards[i];
        sh.log_len += rec;
        let replaced = sh.log.contains_key(key);
        sh.log
            .insert(key.to_vec(), (value, replaced && value.is_some()));
    }

    /// Flushes every shard's log (`Db::flush`).
    pub fn flush_all(&mut self) {
        for i in 0..self.shards.len() {
            if !self.shards[i].log.is_empty() {
                self.flush_shard(i);
            }
        }
    }

    fn flush_shard(&mut self, i: usize) {
        let cap = self.p.hot_capacity_bytes;
        let max_load = self.p.table_max_load;
        let sh = &mut self.shards[i];
        let mut part: Vec<(Vec<u8>, u64, Option<u32>, bool)> = sh
            .log
            .drain()
            .map(|(k, (v, rw))| {
                let h = KeyHash::of(&k).0;
                (k, h, v, rw)
            })
            .collect();
        sh.log_len = LOG_HEADER as u64;
        // Growth, as the engine sizes it.
        let put_bytes: u64 = part
            .iter()
            .filter(|p| p.2.is_some())
            .map(|p| (DIR_BYTES + ENTRY_HEADER + 6 + p.0.len()) as u64)
            .sum();
        let needed = sh.entry_bytes + put_bytes;
        if needed > 0 && needed as f64 > PAGE_PAYLOAD as f64 * sh.buckets as f64 * max_load {
            let b = (needed as f64 / (PAGE_PAYLOAD as f64 * max_load * 2.0 / 3.0)).ceil() as u32;
            sh.buckets = sh.buckets.max(b.max(1));
        }
        let buckets = sh.buckets;
        part.sort_unstable_by(|a, b| {
            KeyHash(a.1)
                .bucket(buckets)
                .cmp(&KeyHash(b.1).bucket(buckets))
                .then_with(|| a.0.cmp(&b.0))
        });
        for (key, hash, value, rewritten) in part {
            let old = sh.table.remove(&key);
            if let Some(o) = old {
                sh.entry_bytes -= entry_len(key.len(), o.hot);
                if o.hot {
                    sh.hot_dead += value_rec(o.value_len);
                    sh.hot_entries -= 1;
                }
            }
            let Some(len) = value else { continue };
            let est = if sh.counters.is_empty() {
                0
            } else {
                let (a, b) = cells(sh.mask, hash);
                sh.counters[a].min(sh.counters[b])
            };
            let hot = (rewritten || est >= HOT_THRESHOLD)
                && sh.hot_end + value_rec(len) <= VALUE_FILE_HEADER + cap;
            if hot {
                sh.hot_entries += 1;
                sh.hot_end += value_rec(len);
                self.counts.hot_bytes += value_rec(len);
            }
            sh.entry_bytes += entry_len(key.len(), hot);
            sh.table.insert(
                key,
                Entry {
                    hash,
                    value_len: len,
                    hot,
                },
            );
        }
        if cap > 0 && self.shards[i].hot_dead >= cap / 4 {
            self.rebuild(i);
        }
        let sh = &mut self.shards[i];
        let f = sh.hot_entries as f64 / sh.table.len().max(1) as f64;
        sh.fractions.push(f);
    }

    /// `hot::rebuild_hot_set` for shard `i`.
    fn rebuild(&mut self, i: usize) {
        let cap = self.p.hot_capacity_bytes;
        let sh = &mut self.shards[i];
        if sh.counters.is_empty() {
            return;
        }
        let mut candidates: Vec<(u8, &Vec<u8>)> = sh
            .table
            .iter()
            .filter_map(|(k, e)| {
                let (a, b) = cells(sh.mask, e.hash);
                let est = sh.counters[a].min(sh.counters[b]);
                (est >= HOT_THRESHOLD).then_some((est, k))
            })
            .collect();
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let budget = cap / 10 * 9;
        let mut used = 0u64;
        let chosen: std::collections::HashSet<Vec<u8>> = candidates
            .into_iter()
            .filter_map(|(_, k)| {
                let rec = value_rec(sh.table[k].value_len);
                (used + rec <= budget).then(|| {
                    used += rec;
                    k.clone()
                })
            })
            .collect();
        self.counts.hot_bytes += used;
        self.counts.rebuild_reads += chosen.len() as u64;
        // The table with the new offsets, every non-empty bucket's chain.
        let mut per_bucket: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut entry_bytes = 0;
        for (k, e) in sh.table.iter_mut() {
            e.hot = chosen.contains(k);
            let len = entry_len(k.len(), e.hot);
            entry_bytes += len;
            per_bucket
                .entry(KeyHash(e.hash).bucket(sh.buckets))
                .or_default()
                .push(len);
        }
        let pages: u64 = per_bucket.values().map(|v| chain_pages(v)).sum();
        self.counts.rebuild_index_bytes += pages * PAGE_SIZE as u64;
        self.counts.rebuilds += 1;
        sh.entry_bytes = entry_bytes;
        sh.hot_end = VALUE_FILE_HEADER + used;
        sh.hot_dead = 0;
        sh.hot_entries = chosen.len() as u64;
        for c in sh.counters.iter_mut() {
            *c /= 2;
        }
        sh.data_reads = 0;
        sh.threshold = sh.threshold.saturating_mul(2);
        sh.requested = false;
    }
}

/// The sketch cells of `hash`, as `hot::Heat::cells` picks them.
fn cells(mask: u64, hash: u64) -> (usize, usize) {
    let row = mask as usize + 1;
    (
        (hash & mask) as usize,
        row + (hash.rotate_right(29) & mask) as usize,
    )
}

/// Pages of one bucket's chain holding entries of these sizes (directory slot included).
fn chain_pages(entries: &[u64]) -> u64 {
    let mut pages = 1;
    let mut used = 0;
    for &e in entries {
        if used + e > PAGE_PAYLOAD as u64 && used > 0 {
            pages += 1;
            used = 0;
        }
        used += e;
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(cap: u64) -> HotWalkParams {
        HotWalkParams {
            shards: 1,
            log_capacity_bytes: 4096,
            hot_capacity_bytes: cap,
            background: false,
            table_max_load: 0.8,
        }
    }

    #[test]
    fn rewritten_key_gets_a_copy_and_read_keys_become_hot() {
        let mut w = HotWalk::new(params(1 << 20));
        w.apply(&Op::Put(b"a".to_vec(), 10));
        w.apply(&Op::Put(b"a".to_vec(), 10));
        w.apply(&Op::Put(b"b".to_vec(), 10));
        w.flush_all();
        assert_eq!(w.counts.hot_bytes, value_rec(10));
        for _ in 0..2 {
            w.apply(&Op::Get(b"b".to_vec()));
        }
        assert_eq!((w.counts.hot_reads, w.counts.data_reads), (0, 2));
        w.apply(&Op::Put(b"b".to_vec(), 10));
        w.flush_all();
        w.apply(&Op::Get(b"b".to_vec()));
        w.apply(&Op::Get(b"a".to_vec()));
        assert_eq!(w.counts.hot_reads, 2);
    }

    #[test]
    fn dead_copies_trigger_a_rebuild() {
        let mut w = HotWalk::new(params(64));
        for _ in 0..3 {
            w.apply(&Op::Put(b"k".to_vec(), 10));
            w.apply(&Op::Put(b"k".to_vec(), 10));
            w.flush_all();
        }
        assert!(w.counts.rebuilds >= 1);
    }
}
