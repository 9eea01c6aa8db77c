//! Rebalancing: the seed note's "full rebuild" of every shard into a new shard count.
//!
//! The store is flushed, then each new shard is built beside the old layout (`L<n+1>` directories):
//! its keys are selected from every old shard by the new shard bits of their hash, their values copied
//! into its new data file (sequential writes), its table written at the size its keys need, its Bloom
//! filter and checkpoint written and synced. Only then is the manifest switched to the new layout (an
//! atomic rename): until that moment the old layout is the store of record, and a crash leaves it
//! intact (recovery deletes the unfinished new layout); after it, recovery deletes the old layout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::{ValueFileKind, ValueWriter, VALUE_FILE_HEADER};
use crate::db::Progress;
use crate::error::Result;
use crate::flush::{self, buckets_for, encode_table, write_pages, BLOOM_HEADROOM};
use crate::hash::KeyHash;
use crate::io::{self, IoSetup};
use crate::layout::ShardPaths;
use crate::manifest::{Manifest, ShardSpec};
use crate::options::Options;
use crate::page::{self, Loc};
use crate::shard::Shard;

/// What [`crate::Db::rebalance`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RebalanceReport {
    /// Shards before.
    pub old_shards: u32,
    /// Shards after.
    pub new_shards: u32,
    /// Keys moved.
    pub keys: u64,
    /// Bytes written into the new layout (data, index, checkpoints).
    pub bytes_written: u64,
    /// Largest relative deviation of a shard's key count from the mean, before.
    pub max_deviation_before: f64,
    /// The same, after.
    pub max_deviation_after: f64,
    /// Seconds spent.
    pub seconds: f64,
}

/// Builds the new layout from `shards` (flushed, with no log records) and switches the manifest.
/// Returns the report (without the "after" deviation, which the caller measures on the reopened store).
pub(crate) fn rebuild(
    store: &Path,
    manifest: &Manifest,
    shards: &[Shard],
    new_count: u32,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<RebalanceReport> {
    let started = Instant::now();
    let new_bits = new_count.trailing_zeros();
    let layout = manifest.layout + 1;
    let roots = (manifest.ssd_root(store), manifest.hdd_root(store));
    remove_dir_if_exists(&layout_dir(&roots.0, layout))?;
    remove_dir_if_exists(&layout_dir(&roots.1, layout))?;
    let mut report = RebalanceReport {
        old_shards: shards.len() as u32,
        new_shards: new_count,
        ..RebalanceReport::default()
    };
    progress.start("rebalance", new_count as u64);
    for id in 0..new_count {
        let paths = ShardPaths::new(&roots.0, &roots.1, layout, id);
        let (keys, bytes) = build_shard(&paths, id, shards, |h| h.shard(new_bits) == id, opts)?;
        report.keys += keys;
        report.bytes_written += bytes;
        progress.advance(1);
    }
    // The switch: from here on the new layout is the store.
    let next = Manifest {
        layout,
        shards: new_count,
        split: Vec::new(),
        ..manifest.clone()
    };
    next.store(store)?;
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Splits the shard at `index` (routing order) in two by the next bit of the hash, without touching
/// the others: two new shards are built beside it in the current layout, then the manifest is switched.
pub(crate) fn split(
    store: &Path,
    manifest: &Manifest,
    shards: &[Shard],
    index: usize,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<RebalanceReport> {
    let started = Instant::now();
    let mut specs = manifest.shard_specs();
    let old = specs[index];
    if old.depth >= 16 {
        return Err(crate::error::Error::InvalidArgument(format!(
            "shard {index} already uses 16 hash bits and cannot be split"
        )));
    }
    let roots = (manifest.ssd_root(store), manifest.hdd_root(store));
    let next_id = specs.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    let depth = old.depth + 1;
    let halves = [
        ShardSpec {
            id: next_id,
            prefix: old.prefix << 1,
            depth,
        },
        ShardSpec {
            id: next_id + 1,
            prefix: (old.prefix << 1) | 1,
            depth,
        },
    ];
    let mut report = RebalanceReport {
        old_shards: shards.len() as u32,
        new_shards: shards.len() as u32 + 1,
        ..RebalanceReport::default()
    };
    progress.start(&format!("split shard {index}"), 2);
    for half in halves {
        let paths = ShardPaths::new(&roots.0, &roots.1, manifest.layout, half.id);
        for dir in [&paths.ssd, &paths.hdd] {
            remove_dir_if_exists(dir)?;
        }
        let source = std::slice::from_ref(&shards[index]);
        let select = |h: KeyHash| h.shard(depth as u32) == half.prefix;
        let (keys, bytes) = build_shard(&paths, half.id, source, select, opts)?;
        report.keys += keys;
        report.bytes_written += bytes;
        progress.advance(1);
    }
    specs.splice(index..=index, halves);
    let next = Manifest {
        shards: specs.len() as u32,
        split: specs,
        ..manifest.clone()
    };
    next.routing(store)?;
    // The switch; the old shard's directories are deleted when the store reopens.
    next.store(store)?;
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Builds one shard from scratch at `paths` out of the keys of `sources` that `select` picks: values
/// copied into a new data file, the table written at the size its keys need, the Bloom filter, an
/// empty hot file and the checkpoint, all synced. Returns (keys, bytes written).
fn build_shard(
    paths: &ShardPaths,
    id: u32,
    sources: &[Shard],
    select: impl Fn(KeyHash) -> bool,
    opts: &Options,
) -> Result<(u64, u64)> {
    io::create_dir_durable(&paths.ssd)?;
    io::create_dir_durable(&paths.hdd)?;
    let snaps: Vec<_> = sources
        .iter()
        .map(|s| s.state.read().snap.clone())
        .collect();
    let max_seq = snaps.iter().map(|s| s.ckpt.max_seq).max().unwrap_or(0);
    let mut data = ValueWriter::open(paths.data(0), ValueFileKind::Data, id, 0)?;
    let mut all: Vec<(u32, &[u8], Loc, u8)> = Vec::new();
    let mut hashes = Vec::new();
    let mut live_bytes = 0u64;
    let mut entry_bytes = 0u64;
    for (shard, snap) in sources.iter().zip(&snaps) {
        for b in 0..snap.ckpt.page_map.len() as u32 {
            snap.for_each_page(b, |_, p| {
                for (k, loc, fp) in page::entries(p) {
                    let hash = KeyHash::of(k);
                    if !select(hash) {
                        continue;
                    }
                    let value = snap.read(&loc, hash.0, &shard.counters)?.0;
                    let data_off = data.append(hash.0, &value)?;
                    let loc = Loc {
                        value_len: loc.value_len,
                        data_off,
                        hot_off: None,
                    };
                    live_bytes += (k.len() + value.len()) as u64;
                    entry_bytes += page::entry_len(k.len(), &loc) as u64;
                    all.push((0, k, loc, fp));
                    hashes.push(hash);
                }
                Ok(true)
            })?;
        }
    }
    data.sync()?;
    let buckets = buckets_for(entry_bytes, opts.table_max_load);
    for (e, h) in all.iter_mut().zip(&hashes) {
        e.0 = h.bucket(buckets);
    }
    all.sort_unstable_by_key(|e| e.0);
    let mut out = Vec::new();
    let (page_map, slots, overflow) = encode_table(&all, buckets, 1, &mut out);
    let index_path = paths.index(0);
    let index_file = flush::create_index(&index_path, id, 0)?;
    // A new layout's shard: no page cache of this store caches its generation.
    let io = IoSetup {
        cache: None,
        ..sources[0].io.clone()
    };
    write_pages(&index_file, &mut out, &io, 0)?;
    index_file.sync_data()?;
    let keys = all.len() as u64;
    let mut filter = Filter::new((keys as f64 * BLOOM_HEADROOM) as u64, opts.bloom_fpr);
    for h in &hashes {
        filter.insert(h.0);
    }
    ValueWriter::open(paths.hot(0), ValueFileKind::Hot, id, 0)?.sync()?;
    let ckpt = Checkpoint {
        generation: 1,
        index_slots: slots,
        buckets,
        data_end: data.end(),
        hot_end: VALUE_FILE_HEADER,
        table_keys: keys,
        table_live_bytes: live_bytes,
        entry_bytes,
        overflow_pages: overflow,
        bloom_capacity: filter.capacity,
        bloom_inserted: filter.inserted,
        max_seq,
        page_map,
        bloom: filter.to_bytes(),
        ..Checkpoint::default()
    };
    let ckpt_bytes = ckpt.store(&paths.checkpoint(), id)?;
    io::sync_dir(&paths.ssd)?;
    io::sync_dir(&paths.hdd)?;
    Ok((
        keys,
        data.end() + (out.len() as u64 + 1) * page::PAGE_SIZE as u64 + ckpt_bytes,
    ))
}

/// Deletes, in layout `layout` of both tier roots, every shard directory whose id is not in `keep`
/// (a split's unfinished halves, or the shard a finished split replaced).
pub(crate) fn remove_other_shards(
    ssd_root: &Path,
    hdd_root: &Path,
    layout: u64,
    keep: &[u32],
) -> Result<()> {
    for root in [ssd_root, hdd_root] {
        let Ok(entries) = std::fs::read_dir(layout_dir(root, layout)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_prefix("shard-"))
                .and_then(|n| n.parse::<u32>().ok());
            if id.is_some_and(|id| !keep.contains(&id)) {
                remove_dir_if_exists(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// Below this many keys per shard on average the policy never splits.
pub const MIN_MEAN_KEYS: f64 = 10_000.0;

/// When a shard should be split: the automatic rebalancing policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RebalancePolicy {
    /// Split the largest shard when its key count passes the mean by this fraction (e.g. 0.25).
    pub max_deviation: f64,
}

/// What the policy decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceChoice {
    /// Split the shard at this index in two.
    Split {
        /// Index of the shard (routing order, as in `Stats::per_shard`).
        shard: u32,
    },
}

impl RebalancePolicy {
    /// Looks at the per-shard key counts and decides.
    pub fn choose(&self, stats: &crate::Stats) -> Option<RebalanceChoice> {
        let n = stats.per_shard.len();
        if n == 0 || stats.live_keys == 0 || self.max_deviation <= 0.0 {
            return None;
        }
        let mean = stats.live_keys as f64 / n as f64;
        // Small stores deviate by chance (hashing gives ~1/√mean); splitting them would only churn.
        if mean < MIN_MEAN_KEYS {
            return None;
        }
        let (index, largest) = stats
            .per_shard
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.live_keys)?;
        (largest.live_keys as f64 > mean * (1.0 + self.max_deviation)).then_some(
            RebalanceChoice::Split {
                shard: index as u32,
            },
        )
    }
}

/// The directory of layout `layout` under a tier root.
pub(crate) fn layout_dir(root: &Path, layout: u64) -> PathBuf {
    root.join(format!("L{layout:04}"))
}

/// Deletes every layout directory under `root` other than `keep` (an unfinished or replaced layout).
pub(crate) fn remove_other_layouts(root: &Path, keep: u64) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix('L'))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if n != keep {
            remove_dir_if_exists(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    io::remove_dir_all_if_exists(dir)
}
