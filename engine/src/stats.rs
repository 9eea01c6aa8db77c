//! Counters: what every shard does, per tier, and the serializable [`Stats`] snapshot `Db::stats()`
//! returns. Counting is relaxed-atomic and per shard, and the counters a read bumps are striped per
//! thread, so readers never share a counter cache line with readers of other shards and rarely with
//! readers of the same shard. Cumulative bytes written per tier are persisted in each shard's checkpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// The storage tiers an operation can touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The SSD log files.
    Log = 0,
    /// The SSD global-table (index) pages.
    Index = 1,
    /// The SSD hot file.
    Hot = 2,
    /// The HDD data file.
    Data = 3,
    /// Small metadata files (checkpoints, manifest).
    Meta = 4,
}

/// Number of [`Tier`]s.
pub const TIERS: usize = 5;

/// Operations and bytes written to one tier (reads are counted in [`ReadStripe`]s).
#[derive(Debug, Default)]
pub(crate) struct TierCounters {
    pub write_ops: AtomicU64,
    pub write_bytes: AtomicU64,
}

/// Where a `get` was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Served {
    Log,
    Hot,
    Data,
    AbsentByLog,
    AbsentByBloom,
    AbsentAfterPage,
}

/// Stripes of the read counters per shard. Each thread counts in one stripe (chosen round robin at
/// its first count), so threads reading the same shard do not bounce one cache line between cores
/// on every get; a snapshot sums the stripes.
const STRIPES: usize = 4;

/// The counters every read bumps, one stripe's worth (aligned so stripes share no cache line).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ReadStripe {
    read_ops: [AtomicU64; TIERS],
    read_bytes: [AtomicU64; TIERS],
    cache_hits: [AtomicU64; TIERS],
    gets: AtomicU64,
    served: [AtomicU64; 6],
    bloom_negatives: AtomicU64,
    bloom_false_positives: AtomicU64,
}

/// This thread's stripe.
#[inline]
fn my_stripe() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// A shard's live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub tiers: [TierCounters; TIERS],
    reads: [ReadStripe; STRIPES],
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    pub flushes: AtomicU64,
    pub pages_written: AtomicU64,
    pub table_growths: AtomicU64,
    pub bloom_rebuilds: AtomicU64,
    pub hot_rebuilds: AtomicU64,
    /// Bytes written per tier before this session (from the checkpoint).
    pub written_before: [AtomicU64; TIERS],
}

impl Counters {
    #[inline]
    fn stripe(&self) -> &ReadStripe {
        &self.reads[my_stripe()]
    }

    fn sum(&self, f: impl Fn(&ReadStripe) -> &AtomicU64) -> u64 {
        self.reads.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    #[inline]
    pub fn read(&self, tier: Tier, bytes: usize) {
        let s = self.stripe();
        s.read_ops[tier as usize].fetch_add(1, Relaxed);
        s.read_bytes[tier as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// A read answered by the engine's page cache (it never reached the file).
    #[inline]
    pub fn cache_hit(&self, tier: Tier) {
        self.stripe().cache_hits[tier as usize].fetch_add(1, Relaxed);
    }

    #[inline]
    pub fn write(&self, tier: Tier, ops: u64, bytes: u64) {
        let t = &self.tiers[tier as usize];
        t.write_ops.fetch_add(ops, Relaxed);
        t.write_bytes.fetch_add(bytes, Relaxed);
    }

    #[inline]
    pub fn served(&self, s: Served) {
        let stripe = self.stripe();
        stripe.gets.fetch_add(1, Relaxed);
        stripe.served[s as usize].fetch_add(1, Relaxed);
    }

    /// A get the Bloom filter answered "absent".
    #[inline]
    pub fn bloom_negative(&self) {
        self.stripe().bloom_negatives.fetch_add(1, Relaxed);
    }

    /// A get the Bloom filter let through for a key the table does not hold.
    #[inline]
    pub fn bloom_false_positive(&self) {
        self.stripe().bloom_false_positives.fetch_add(1, Relaxed);
    }

    pub fn bloom_negatives(&self) -> u64 {
        self.sum(|s| &s.bloom_negatives)
    }

    pub fn bloom_false_positives(&self) -> u64 {
        self.sum(|s| &s.bloom_false_positives)
    }

    /// Bytes written to `tier` since the store was created (persisted part + this session).
    pub fn written_total(&self, tier: Tier) -> u64 {
        self.written_before[tier as usize].load(Relaxed)
            + self.tiers[tier as usize].write_bytes.load(Relaxed)
    }

    pub fn tier_snapshot(&self, tier: Tier) -> TierStats {
        let t = &self.tiers[tier as usize];
        let i = tier as usize;
        TierStats {
            cache_hits: self.sum(|s| &s.cache_hits[i]),
            read_ops: self.sum(|s| &s.read_ops[i]),
            read_bytes: self.sum(|s| &s.read_bytes[i]),
            write_ops: t.write_ops.load(Relaxed),
            write_bytes: t.write_bytes.load(Relaxed),
            written_bytes_total: self.written_total(tier),
        }
    }

    pub fn gets_snapshot(&self) -> GetStats {
        let s = |x: Served| self.sum(|st| &st.served[x as usize]);
        GetStats {
            total: self.sum(|st| &st.gets),
            from_log: s(Served::Log),
            from_hot: s(Served::Hot),
            from_data: s(Served::Data),
            absent_in_log: s(Served::AbsentByLog),
            absent_by_bloom: s(Served::AbsentByBloom),
            absent_after_page_read: s(Served::AbsentAfterPage),
        }
    }
}

/// Operations and bytes on one tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TierStats {
    /// Reads of this tier answered by the engine's page cache, never reaching the file.
    pub cache_hits: u64,
    /// Reads that reached this tier's files in this session: with direct I/O each is one device
    /// read (`pread` or io_uring); through a memory map each is one access of a mapped page or
    /// record (served by the kernel's page cache or the device).
    pub read_ops: u64,
    /// Bytes read from this tier's files in this session (direct reads count their aligned length).
    pub read_bytes: u64,
    /// Writes issued to this tier in this session.
    pub write_ops: u64,
    /// Bytes written to this tier in this session.
    pub write_bytes: u64,
    /// Bytes written to this tier since the store was created (persisted; SSD wear).
    pub written_bytes_total: u64,
}

impl TierStats {
    fn add(&mut self, o: &TierStats) {
        self.cache_hits += o.cache_hits;
        self.read_ops += o.read_ops;
        self.read_bytes += o.read_bytes;
        self.write_ops += o.write_ops;
        self.write_bytes += o.write_bytes;
        self.written_bytes_total += o.written_bytes_total;
    }
}

/// Where gets were answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct GetStats {
    /// All gets (each key of a `multi_get` counts once).
    pub total: u64,
    /// Answered from the log (DRAM table + SSD log record).
    pub from_log: u64,
    /// Answered from the SSD hot file.
    pub from_hot: u64,
    /// Answered from the HDD data file.
    pub from_data: u64,
    /// Absent: a tombstone in the log.
    pub absent_in_log: u64,
    /// Absent: the Bloom filter said no (no SSD read).
    pub absent_by_bloom: u64,
    /// Absent after reading the global page (a Bloom false positive).
    pub absent_after_page_read: u64,
}

impl GetStats {
    fn add(&mut self, o: &GetStats) {
        self.total += o.total;
        self.from_log += o.from_log;
        self.from_hot += o.from_hot;
        self.from_data += o.from_data;
        self.absent_in_log += o.absent_in_log;
        self.absent_by_bloom += o.absent_by_bloom;
        self.absent_after_page_read += o.absent_after_page_read;
    }
}

/// Per-tier figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TiersStats {
    /// SSD log files.
    pub log: TierStats,
    /// SSD global-table pages.
    pub index: TierStats,
    /// SSD hot file.
    pub hot: TierStats,
    /// HDD data file.
    pub data: TierStats,
    /// Checkpoints and manifest.
    pub meta: TierStats,
}

impl TiersStats {
    pub(crate) fn from_counters(c: &Counters) -> Self {
        TiersStats {
            log: c.tier_snapshot(Tier::Log),
            index: c.tier_snapshot(Tier::Index),
            hot: c.tier_snapshot(Tier::Hot),
            data: c.tier_snapshot(Tier::Data),
            meta: c.tier_snapshot(Tier::Meta),
        }
    }

    fn add(&mut self, o: &TiersStats) {
        self.log.add(&o.log);
        self.index.add(&o.index);
        self.hot.add(&o.hot);
        self.data.add(&o.data);
        self.meta.add(&o.meta);
    }
}

/// One shard's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShardStats {
    /// Shard number.
    pub shard: u32,
    /// Live keys (global table plus log, counting a key once).
    pub live_keys: u64,
    /// Keys in the global table.
    pub table_keys: u64,
    /// Records in the log tables (puts and tombstones not yet flushed).
    pub log_records: u64,
    /// Bytes of live keys and values in the global table.
    pub table_live_bytes: u64,
    /// Buckets (primary pages) of the global table.
    pub buckets: u64,
    /// Overflow pages in use.
    pub overflow_pages: u64,
    /// Entry bytes ÷ primary-page payload bytes.
    pub table_load: f64,
    /// Pages in the index file (used and free).
    pub index_file_pages: u64,
    /// Bytes used in the log files.
    pub log_bytes: u64,
    /// Key and value bytes of the newest log record of each key (puts only).
    pub log_live_bytes: u64,
    /// Data-file bytes (header included).
    pub data_bytes: u64,
    /// Data-file bytes no longer referenced.
    pub data_dead_bytes: u64,
    /// Hot-file bytes.
    pub hot_bytes: u64,
    /// Keys in the Bloom filter.
    pub bloom_keys: u64,
    /// The Bloom filter's estimated false-positive rate.
    pub bloom_estimated_fpr: f64,
    /// DRAM held by the Bloom filter.
    pub bloom_dram_bytes: u64,
    /// DRAM held by the log tables, page map and other per-shard indexes (not the log records).
    pub table_dram_bytes: u64,
    /// DRAM held by the hot tier's access counters (included in `table_dram_bytes`).
    pub heat_dram_bytes: u64,
    /// Flush generation of the last checkpoint.
    pub generation: u64,
    /// Per-tier I/O.
    pub tiers: TiersStats,
    /// Where gets were answered.
    pub gets: GetStats,
    /// Puts (each key of a batch counts once).
    pub puts: u64,
    /// Deletes.
    pub deletes: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Global pages written.
    pub pages_written: u64,
    /// Bloom filter said "absent".
    pub bloom_negatives: u64,
    /// Bloom filter said "maybe" and the page did not hold the key.
    pub bloom_false_positives: u64,
    /// Global-table rebuilds into more buckets.
    pub table_growths: u64,
    /// Bloom filter rebuilds (outgrown, or too many stale bits after deletes).
    pub bloom_rebuilds: u64,
    /// Hot-set rebuilds (admission and eviction by access frequency).
    pub hot_rebuilds: u64,
    /// Probe-length statistics of the active log table.
    pub log_probe_mean: f64,
    /// Longest probe of the active log table.
    pub log_probe_max: u64,
}

/// The I/O setup a [`Stats`] reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoReport {
    pub engine: &'static str,
    pub direct: crate::options::DirectIo,
    pub page_cache_pages: u64,
}

/// A snapshot of the whole store's counters ([`crate::Db::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Store format version.
    pub format_version: u32,
    /// Present when the figures come from a read-only handle ([`crate::ReadOnlyDb`]): they are then
    /// the flushed state it sees and its own reads; the writer's logs and counters are not included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<ReadOnlyStats>,
    /// Shard count.
    pub shards: u32,
    /// How batched I/O (`multi_get`, flush page writes) runs: `"io_uring"` or `"pread"`.
    pub io_engine: String,
    /// Tiers that `get` and `multi_get` read with direct I/O (the others through memory maps).
    pub direct_io: crate::options::DirectIo,
    /// Pages of the engine's own index page cache, all shards (0 when the index is mapped).
    pub page_cache_pages: u64,
    /// Live keys.
    pub live_keys: u64,
    /// Flushed keys (in global tables).
    pub table_keys: u64,
    /// Bytes of live keys and values in the global tables.
    pub table_live_bytes: u64,
    /// DRAM held by Bloom filters.
    pub bloom_dram_bytes: u64,
    /// DRAM held by log tables, page maps and other indexes.
    pub table_dram_bytes: u64,
    /// `(bloom + page maps + hot counters) / table_keys`: DRAM per flushed key, log tables excluded.
    pub dram_bytes_per_flushed_key: f64,
    /// Bytes on disk per tier: log, index, hot, data, meta.
    pub disk_bytes: DiskBytes,
    /// Bytes of live keys and values (global tables plus log records).
    pub live_bytes: u64,
    /// `disk_bytes.total / live_bytes` (0 for an empty store).
    pub space_amplification: f64,
    /// Sum over shards.
    pub tiers: TiersStats,
    /// Sum over shards.
    pub gets: GetStats,
    /// Sum over shards.
    pub puts: u64,
    /// Sum over shards.
    pub deletes: u64,
    /// Sum over shards.
    pub flushes: u64,
    /// Sum over shards.
    pub pages_written: u64,
    /// Sum over shards.
    pub bloom_negatives: u64,
    /// Sum over shards.
    pub bloom_false_positives: u64,
    /// Largest relative deviation of a shard's live keys from the mean (0 = perfectly even).
    pub shard_key_max_deviation: f64,
    /// Per-shard figures.
    pub per_shard: Vec<ShardStats>,
}

/// What a read-only handle did to follow the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReadOnlyStats {
    /// Shard snapshots reloaded since open (a flush was announced, or a read met a newer state).
    pub reloads: u64,
    /// Reads that failed validation on a state the writer had moved past, and were retried.
    pub retries: u64,
    /// Gets that copied the pages they read out of the maps (the writer announced a flush during
    /// the read, no board, or `set_follow(false)`); every other get read its pages in place.
    pub copied_gets: u64,
}

/// Bytes on disk per tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DiskBytes {
    /// Log files.
    pub log: u64,
    /// Index files.
    pub index: u64,
    /// Hot files.
    pub hot: u64,
    /// Data files.
    pub data: u64,
    /// Sum.
    pub total: u64,
}

impl Stats {
    /// Builds the store-wide totals from per-shard figures.
    pub(crate) fn aggregate(
        format_version: u32,
        io: IoReport,
        per_shard: Vec<ShardStats>,
    ) -> Stats {
        let mut s = Stats {
            format_version,
            shards: per_shard.len() as u32,
            io_engine: io.engine.to_string(),
            direct_io: io.direct,
            page_cache_pages: io.page_cache_pages,
            ..Stats::default()
        };
        for p in &per_shard {
            s.live_keys += p.live_keys;
            s.table_keys += p.table_keys;
            s.table_live_bytes += p.table_live_bytes;
            s.bloom_dram_bytes += p.bloom_dram_bytes;
            s.table_dram_bytes += p.table_dram_bytes;
            s.tiers.add(&p.tiers);
            s.gets.add(&p.gets);
            s.puts += p.puts;
            s.deletes += p.deletes;
            s.flushes += p.flushes;
            s.pages_written += p.pages_written;
            s.bloom_negatives += p.bloom_negatives;
            s.bloom_false_positives += p.bloom_false_positives;
            s.disk_bytes.log += p.log_bytes;
            s.disk_bytes.index += p.index_file_pages * crate::page::PAGE_SIZE as u64;
            s.disk_bytes.hot += p.hot_bytes;
            s.disk_bytes.data += p.data_bytes;
        }
        s.disk_bytes.total =
            s.disk_bytes.log + s.disk_bytes.index + s.disk_bytes.hot + s.disk_bytes.data;
        s.live_bytes = per_shard
            .iter()
            .map(|p| p.table_live_bytes + p.log_live_bytes)
            .sum();
        s.space_amplification = if s.live_bytes == 0 {
            0.0
        } else {
            s.disk_bytes.total as f64 / s.live_bytes as f64
        };
        let flushed_dram: u64 = per_shard
            .iter()
            .map(|p| p.bloom_dram_bytes + p.buckets * 4 + p.heat_dram_bytes)
            .sum();
        s.dram_bytes_per_flushed_key = if s.table_keys == 0 {
            0.0
        } else {
            flushed_dram as f64 / s.table_keys as f64
        };
        let mean = s.live_keys as f64 / per_shard.len().max(1) as f64;
        if mean > 0.0 {
            s.shard_key_max_deviation = per_shard
                .iter()
                .map(|p| (p.live_keys as f64 - mean).abs() / mean)
                .fold(0.0, f64::max);
        }
        s.per_shard = per_shard;
        s
    }
}
