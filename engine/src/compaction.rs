//! Compaction: rewrites one shard's data file with only its live values, and rebuilds the shard's
//! global table at the size its keys need (shrinking it after mass deletion) with a fresh Bloom
//! filter. Reads continue on the published snapshot throughout; writes continue into the log (they
//! wait only if the log fills, since flushes of this shard wait for the compaction).
//!
//! Crash safety: the new data and index files get the next generation numbers and become the store
//! of record only when the checkpoint naming them is atomically in place; until then a crash leaves
//! the old checkpoint, and recovery deletes the unreferenced new files (and, after the switch, the
//! old ones).

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::{read_value, ValueFileKind, ValueWriter, VALUE_FILE_HEADER};
use crate::db::Progress;
use crate::error::Result;
use crate::flush::{self, buckets_for};
use crate::hash::KeyHash;
use crate::io;
use crate::page::{self, Loc};
use crate::shard::Shard;
use crate::stats::Tier;

/// What compaction did to one shard.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShardCompaction {
    /// Shard number.
    pub shard: u32,
    /// Whether the shard was rewritten.
    pub compacted: bool,
    /// Why (or why not).
    pub reason: String,
    /// Data-file bytes before.
    pub data_bytes_before: u64,
    /// Data-file bytes after.
    pub data_bytes_after: u64,
    /// Dead data-file bytes before.
    pub dead_bytes_before: u64,
    /// Index-file pages before.
    pub index_pages_before: u64,
    /// Index-file pages after.
    pub index_pages_after: u64,
    /// Buckets before.
    pub buckets_before: u64,
    /// Buckets after.
    pub buckets_after: u64,
    /// Seconds spent.
    pub seconds: f64,
}

/// What [`crate::Db::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompactReport {
    /// Per shard.
    pub shards: Vec<ShardCompaction>,
    /// Shards rewritten.
    pub compacted_shards: u32,
    /// Bytes on disk across tiers ÷ live key and value bytes, before.
    pub space_amplification_before: f64,
    /// The same, after.
    pub space_amplification_after: f64,
    /// Seconds spent.
    pub seconds: f64,
}

/// Whether a shard needs compaction, and why.
pub(crate) fn decide(
    ckpt: &Checkpoint,
    dead_fraction_threshold: f64,
    max_load: f64,
) -> (bool, String) {
    let data = ckpt.data_end.saturating_sub(VALUE_FILE_HEADER);
    let dead = if data == 0 {
        0.0
    } else {
        ckpt.data_dead_bytes as f64 / data as f64
    };
    if dead >= dead_fraction_threshold {
        return (
            true,
            format!(
                "{:.0}% of the data file is dead (threshold {:.0}%)",
                dead * 100.0,
                dead_fraction_threshold * 100.0
            ),
        );
    }
    let wanted = buckets_for(ckpt.entry_bytes, max_load);
    if ckpt.buckets > wanted.saturating_mul(2) {
        return (
            true,
            format!(
                "the table has {} buckets, its keys need {wanted}",
                ckpt.buckets
            ),
        );
    }
    (
        false,
        format!(
            "{:.0}% dead (threshold {:.0}%), table size fits",
            dead * 100.0,
            dead_fraction_threshold * 100.0
        ),
    )
}

/// Compacts one shard when `force` or when [`decide`] says so.
pub(crate) fn compact_shard(
    shard: &Shard,
    progress: &dyn Progress,
    force: bool,
) -> Result<ShardCompaction> {
    let started = Instant::now();
    let opts = &shard.opts;
    let mut fl = shard.flusher.lock();
    let snap = shard.state.read().snap.clone();
    let old = &snap.ckpt;
    let (needed, reason) = decide(old, opts.compact_dead_fraction, opts.table_max_load);
    let mut report = ShardCompaction {
        shard: shard.id,
        compacted: false,
        reason,
        data_bytes_before: old.data_end,
        data_bytes_after: old.data_end,
        dead_bytes_before: old.data_dead_bytes,
        index_pages_before: old.index_slots as u64,
        index_pages_after: old.index_slots as u64,
        buckets_before: old.page_map.len() as u64,
        buckets_after: old.page_map.len() as u64,
        seconds: 0.0,
    };
    if !needed && !force {
        return Ok(report);
    }
    if !needed {
        report.reason = format!("forced ({})", report.reason);
    }
    let buckets = buckets_for(old.entry_bytes, opts.table_max_load);
    let generation = old.generation + 1;
    let data_gen = old.data_file + 1;
    let data_path = shard.paths.data(data_gen);
    io::remove_if_exists(&data_path)?;
    let mut data = ValueWriter::open(data_path.clone(), ValueFileKind::Data, shard.id, 0)?;

    progress.start(
        &format!("compact shard {}", shard.id),
        old.page_map.len() as u64,
    );
    let data_map = snap.data_map.as_deref().unwrap_or(&[]);
    let mut all: Vec<(u32, &[u8], Loc, u8)> = Vec::with_capacity(old.table_keys as usize);
    let mut hashes: Vec<u64> = Vec::with_capacity(old.table_keys as usize);
    for b in 0..old.page_map.len() as u32 {
        snap.for_each_page(b, |_, p| {
            for (k, loc, fp) in page::entries(p) {
                let hash = KeyHash::of(k).0;
                let value =
                    read_value(data_map, &snap.data_path, loc.data_off, loc.value_len, hash)?;
                let data_off = data.append(hash, &value)?;
                all.push((
                    KeyHash(hash).bucket(buckets),
                    k,
                    Loc { data_off, ..loc },
                    fp,
                ));
                hashes.push(hash);
            }
            Ok(true)
        })?;
        progress.advance(1);
    }
    data.sync()?;
    let (bytes, writes) = data.take_io();
    shard.counters.write(Tier::Data, writes, bytes);
    shard.counters.read(Tier::Data, old.data_end as usize);

    all.sort_unstable_by_key(|e| e.0);
    let mut table = flush::write_rebuilt_table(shard, &all, buckets, generation, old.index_file)?;

    let mut filter = Filter::new(
        (old.table_keys as f64 * flush::BLOOM_HEADROOM) as u64,
        opts.bloom_fpr,
    );
    for h in &hashes {
        filter.insert(*h);
    }
    shard
        .counters
        .bloom_rebuilds
        .fetch_add(1, Ordering::Relaxed);
    let mut ckpt = Checkpoint {
        generation,
        index_file: table.generation,
        index_slots: table.slots,
        buckets,
        data_end: data.end(),
        data_file: data_gen,
        overflow_pages: table.overflow,
        data_dead_bytes: 0,
        bloom_capacity: filter.capacity,
        bloom_inserted: filter.inserted,
        bloom_removed: 0,
        page_map: std::mem::take(&mut table.page_map),
        free_slots: Vec::new(),
        data_free: Vec::new(),
        bloom: filter.to_bytes(),
        ..old.clone()
    };
    flush::store_checkpoint(shard, &mut ckpt)?;

    // The new files are the store of record: switch the writer side, publish, drop the old files.
    report.data_bytes_after = ckpt.data_end;
    report.index_pages_after = ckpt.index_slots as u64;
    report.buckets_after = ckpt.page_map.len() as u64;
    let old_data = std::mem::replace(&mut fl.data, data);
    drop(snap);
    flush::install_rebuilt(shard, &mut fl, ckpt, filter, table)?;
    io::remove_if_exists(&old_data.path)?;
    progress.finish();
    report.compacted = true;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
