//! The engine's cost model: how many bytes each tier stores and writes, and how many device reads a
//! get costs, derived from the on-disk format (`docs/format/`) and the flush procedure. Every other
//! model builds on these functions, and `validate` compares them with the engine's counters. Owns no
//! I/O and no device knowledge.
//!
//! Format facts used (engine defaults): 4 KiB pages with a 32-byte header; a global-table entry is a
//! 3-byte directory slot (fingerprint, offset), a 12-byte header (key_len u16, value_len u32, data
//! offset 6 bytes), an optional 6-byte hot offset and the key; a log record is a 19-byte header (crc32, kind, key_len u16, value_len u32, sequence u64)
//! plus key and value; a data-file value record is a 4-byte CRC plus the value; the bucket count of a shard is the
//! smallest power of two keeping entry bytes ÷ primary-page payload ≤ `table_max_load`.

use serde::Serialize;

use crate::skew::AccessCurve;

/// Global-table page size.
pub const PAGE_SIZE: f64 = tierkv::PAGE_SIZE as f64;
/// Page header bytes.
pub const PAGE_HEADER: f64 = 32.0;
/// Usable bytes of a page.
pub const PAGE_PAYLOAD: f64 = PAGE_SIZE - PAGE_HEADER;
/// Entry header bytes (key_len u16, value_len u32, data offset 6 bytes).
pub const ENTRY_HEADER: f64 = 12.0;
/// Page-directory bytes per entry (one-byte fingerprint, two-byte offset: `engine/src/page.rs`).
pub const DIR_BYTES: f64 = 3.0;
/// Extra bytes of an entry with a hot-file offset.
pub const HOT_OFFSET: f64 = 6.0;
/// Log record header bytes (crc32, kind, key_len u16, value_len u32, sequence number u64:
/// `engine/src/log.rs` `RECORD_HEADER`).
pub const LOG_HEADER: f64 = 19.0;
/// Data-file record overhead (CRC).
pub const DATA_HEADER: f64 = 4.0;
/// `Filter::new(table_keys × 1.5, fpr)` in the engine's flush (`engine/src/flush.rs`).
pub const BLOOM_HEADROOM: f64 = 1.5;
/// The engine rebuilds a filter whose estimated rate passes the target by this factor
/// (`FPR_SLACK` in `engine/src/flush.rs`).
pub const BLOOM_FPR_SLACK: f64 = 1.2;
/// Page-map bytes per bucket in a checkpoint.
pub const PAGE_MAP_BYTES: f64 = 4.0;

/// The engine settings the models depend on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineConfig {
    /// Shard count (a power of two).
    pub shards: u32,
    /// Per-shard log capacity, bytes.
    pub log_capacity_bytes: f64,
    /// Load past which a table doubles its buckets.
    pub table_max_load: f64,
    /// Bloom false-positive target.
    pub bloom_fpr: f64,
    /// Per-shard hot-file capacity, bytes.
    pub hot_capacity_bytes: f64,
    /// The engine sizes a rebuilt Bloom filter for this many times the table's keys (it rebuilds
    /// when the table outgrows it), so the filter holds between 1/headroom and all of its capacity.
    pub bloom_headroom: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let o = tierkv::Options::default();
        EngineConfig {
            shards: o.shards,
            log_capacity_bytes: o.log_capacity_bytes as f64,
            table_max_load: o.table_max_load,
            bloom_fpr: o.bloom_fpr,
            hot_capacity_bytes: o.hot_capacity_bytes as f64,
            bloom_headroom: BLOOM_HEADROOM,
        }
    }
}

/// Page bytes of one global-table entry, its directory slot included.
pub fn entry_bytes(key_bytes: f64, hot: bool) -> f64 {
    DIR_BYTES + ENTRY_HEADER + key_bytes + if hot { HOT_OFFSET } else { 0.0 }
}

/// What the engine's growth check charges per put in a flushed log part (as if it were a new entry
/// with a hot copy: `engine/src/flush.rs` step 2).
pub fn growth_entry_bytes(key_bytes: f64) -> f64 {
    entry_bytes(key_bytes, true)
}

/// Entries of mean size `entry` that fit a page.
pub fn entries_per_page(entry: f64) -> f64 {
    (PAGE_PAYLOAD / entry).floor().max(1.0)
}

/// Bytes of one log record.
pub fn log_record_bytes(key_bytes: f64, value_bytes: f64) -> f64 {
    LOG_HEADER + key_bytes + value_bytes
}

/// A table past `table_max_load` is rebuilt for this fraction of it (`engine/src/flush.rs`: load
/// 2/3 of the maximum after the rebuild, so rebuilds are amortized).
pub const REBUILD_LOAD_FRACTION: f64 = 2.0 / 3.0;

/// The engine's bucket count for `entry_bytes` of entries at `load`: `⌈bytes / (4064 · load)⌉ ≥ 1`
/// (any count: the bucket selector is a multiply-shift, not a mask).
pub fn buckets_at_load(entry_bytes: f64, load: f64) -> f64 {
    (entry_bytes / (PAGE_PAYLOAD * load)).ceil().max(1.0)
}

/// The load a growing table averages over its rebuild cycle: it runs from
/// `REBUILD_LOAD_FRACTION × max_load` just after a rebuild up to `max_load`, linearly in the keys,
/// so with keys growing steadily the time average is the midpoint.
pub fn mean_load(max_load: f64) -> f64 {
    max_load * (1.0 + REBUILD_LOAD_FRACTION) / 2.0
}

/// Buckets of a shard holding `keys` entries of `entry` bytes, for planning (no history): the count
/// that puts the table at its cycle-average load [`mean_load`].
pub fn buckets_for(keys: f64, entry: f64, max_load: f64) -> f64 {
    buckets_at_load(keys * entry, mean_load(max_load))
}

/// Table load (entry bytes ÷ primary-page payload) with `buckets` buckets.
pub fn table_load(keys: f64, entry: f64, buckets: f64) -> f64 {
    keys * entry / (buckets * PAGE_PAYLOAD)
}

/// `Σ_i f(p_i) · weight` over the keys of `curve` (`n` keys), where `p_i` is key i's access
/// probability: the ranks are cut into ~2 000 geometric bins within which `p_i` is taken equal, and
/// `f(p, mass, count)` returns the bin's contribution (`mass` = its total probability, `count` = its
/// keys). O(bins) for any `n`, so it serves 10^9 keys.
pub fn binned(curve: &AccessCurve, n: f64, f: impl Fn(f64, f64, f64) -> f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    if let AccessCurve::Uniform = curve {
        return f(1.0 / n, 1.0, n);
    }
    let bins = 2000usize;
    let ratio = n.powf(1.0 / bins as f64);
    let (mut lo, mut edge, mut total) = (0.0f64, 1.0f64, 0.0);
    while lo < n {
        let hi = edge.max(lo + 1.0).min(n).round().max(lo + 1.0).min(n);
        let count = hi - lo;
        let mass = (curve.hit_fraction(hi / n) - curve.hit_fraction(lo / n)).max(0.0);
        total += f(mass / count, mass, count);
        lo = hi;
        edge *= ratio;
    }
    total
}

/// `P(X ≥ 1)` for `X ~ Binomial(m, p)`, computed stably.
pub fn p_any(p: f64, m: f64) -> f64 {
    -(m * (-p.min(1.0 - 1e-15)).ln_1p()).exp_m1()
}

/// `P(X ≥ 2)` for `X ~ Binomial(m, p)`.
pub fn p_two(p: f64, m: f64) -> f64 {
    if m < 2.0 {
        return 0.0;
    }
    let q = (-p.min(1.0 - 1e-15)).ln_1p();
    let none = (m * q).exp();
    let one = m * p * ((m - 1.0) * q).exp();
    (1.0 - none - one).max(0.0)
}

/// Expected number of distinct keys among `m` independent draws from `curve` over `n` keys:
/// `Σ_i 1 − (1 − p_i)^m` (exactly `n (1 − (1 − 1/n)^m)` for uniform).
pub fn expected_distinct(curve: &AccessCurve, n: f64, m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    binned(curve, n, |p, _, count| count * p_any(p, m))
}

/// Probability that a lookup drawn from `curve` finds its key among the distinct keys of `m` writes
/// drawn from the same curve: `Σ_i p_i (1 − (1 − p_i)^m)`.
pub fn hit_in_recent(curve: &AccessCurve, n: f64, m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    binned(curve, n, |p, mass, _| mass * p_any(p, m))
}

/// Expected number of keys written at least twice among `m` draws.
pub fn expected_repeated(curve: &AccessCurve, n: f64, m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    binned(curve, n, |p, _, count| count * p_two(p, m))
}

/// What one flush of one shard writes, and what produced it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlushCost {
    /// Write records (puts, updates, deletes) in the flushed log.
    pub records: f64,
    /// User bytes (key + value; key for a delete) of those records.
    pub user_bytes: f64,
    /// Log bytes of those records.
    pub log_bytes: f64,
    /// Distinct live keys whose value the flush appends to the data file.
    pub live_values: f64,
    /// Data-file bytes appended.
    pub data_bytes: f64,
    /// Distinct keys merged into the global table (puts, updates and deletes).
    pub distinct_keys: f64,
    /// Buckets whose pages the flush rewrites.
    pub touched_buckets: f64,
    /// Index bytes written (touched buckets × pages per bucket × page size).
    pub index_bytes: f64,
    /// Checkpoint bytes (page map + Bloom filter).
    pub meta_bytes: f64,
}

/// The per-shard flush of a log full of the workload's writes, for a shard holding `keys_per_shard`
/// keys in `buckets` buckets with `pages_per_bucket` pages on average (1 + overflow).
///
/// Writes are a mix of new-key puts (always distinct), overwrites drawn from the access curve and
/// deletes drawn uniformly; an overwrite of a key already in the same log replaces it there, so only
/// distinct keys reach the data file and the table.
pub fn flush_cost(
    w: &crate::workload::Workload,
    cfg: &EngineConfig,
    keys_per_shard: f64,
    buckets: f64,
    pages_per_bucket: f64,
    bloom_bytes: f64,
) -> FlushCost {
    let writes = w.puts_per_op + w.updates_per_op + w.deletes_per_op;
    if writes <= 0.0 {
        return FlushCost::default();
    }
    let (fp, fu, fd) = (
        w.puts_per_op / writes,
        w.updates_per_op / writes,
        w.deletes_per_op / writes,
    );
    let (k, v) = (w.key_bytes, w.value_bytes);
    let mean_log = (fp + fu) * log_record_bytes(k, v) + fd * log_record_bytes(k, 0.0);
    let records = (cfg.log_capacity_bytes / mean_log).floor().max(1.0);
    let user_bytes = records * ((fp + fu) * (k + v) + fd * k);
    let n = keys_per_shard.max(1.0);
    let puts = records * fp;
    let updates_distinct = expected_distinct(&w.curve.with_keys(n as u64), n, records * fu);
    let deletes_distinct = n * (1.0 - (-(records * fd) / n).exp());
    let live_values = puts + updates_distinct;
    let distinct_keys = puts + updates_distinct + deletes_distinct;
    let touched_buckets = buckets * (1.0 - (-distinct_keys / buckets).exp());
    FlushCost {
        records,
        user_bytes,
        log_bytes: records * mean_log,
        live_values,
        data_bytes: live_values * (DATA_HEADER + v),
        distinct_keys,
        touched_buckets,
        index_bytes: touched_buckets * pages_per_bucket * PAGE_SIZE,
        meta_bytes: buckets * PAGE_MAP_BYTES + bloom_bytes,
    }
}

/// Write amplification per tier: bytes written to the tier ÷ user bytes written.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TierWa {
    /// SSD log.
    pub log: f64,
    /// SSD global-table pages.
    pub index: f64,
    /// SSD hot file.
    pub hot: f64,
    /// HDD data file.
    pub data: f64,
    /// SSD checkpoints.
    pub meta: f64,
}

impl TierWa {
    /// From one flush's costs (the hot tier is not modelled here: see `hot_write_fraction`).
    pub fn from_flush(f: &FlushCost) -> TierWa {
        if f.user_bytes <= 0.0 {
            return TierWa::default();
        }
        TierWa {
            log: f.log_bytes / f.user_bytes,
            index: f.index_bytes / f.user_bytes,
            hot: 0.0,
            data: f.data_bytes / f.user_bytes,
            meta: f.meta_bytes / f.user_bytes,
        }
    }

    /// Total engine WA on the SSD tiers.
    pub fn ssd(&self) -> f64 {
        self.log + self.index + self.hot + self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's format constants are crate-private, so this test measures them through a real
    /// store's counters: a change in the engine's format fails here, not silently in `validate`.
    #[test]
    fn format_constants_match_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let opts = tierkv::Options {
            shards: 1,
            background_flush: false,
            ..tierkv::Options::default()
        };
        let db = tierkv::Db::open(dir.path().join("s"), opts).unwrap();
        let keys = 10_000u64;
        for i in 0..keys {
            db.put(&crate::workload::key_for(i, 16), &[7u8; 100])
                .unwrap();
        }
        db.flush().unwrap();
        let st = db.stats();
        assert_eq!(
            st.tiers.log.write_bytes as f64,
            keys as f64 * log_record_bytes(16.0, 100.0)
        );
        assert_eq!(
            st.tiers.data.write_bytes as f64,
            keys as f64 * (DATA_HEADER + 100.0)
        );
        // One flush into an empty table writes every bucket's chain once.
        let entry = entry_bytes(16.0, false);
        let grown = growth_entry_bytes(16.0);
        // One flush from the single initial bucket: rebuilt for 2/3 of the threshold load.
        let buckets = buckets_at_load(keys as f64 * grown, 0.75 * REBUILD_LOAD_FRACTION);
        assert_eq!(st.per_shard[0].buckets as f64, buckets);
        assert!(st.tiers.index.write_bytes as f64 >= buckets * PAGE_SIZE);
        assert!(
            (st.per_shard[0].table_load - table_load(keys as f64, entry, buckets)).abs() < 1e-9
        );
        // The filter is re-sized with the engine's headroom on growth.
        let (bytes, _) = crate::bloom::crate_sizing((keys as f64 * BLOOM_HEADROOM) as u64, 0.01);
        assert_eq!(st.bloom_dram_bytes, bytes);
    }

    #[test]
    fn planning_buckets_sit_at_the_cycle_average_load() {
        let e = entry_bytes(24.0, false); // 39 bytes
        assert!((mean_load(0.75) - 0.625).abs() < 1e-12);
        let keys = 1e8;
        let b = buckets_for(keys, e, 0.75);
        assert!((table_load(keys, e, b) - 0.625).abs() < 1e-6);
        assert_eq!(buckets_at_load(1.0, 0.75), 1.0);
        assert_eq!(buckets_at_load(0.0, 0.75), 1.0);
    }

    #[test]
    fn distinct_matches_uniform_formula_and_simulation() {
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        let z = AccessCurve::Zipf {
            theta: 0.99,
            n: 20_000,
        };
        let (n, m) = (20_000.0, 30_000.0);
        let predicted = expected_distinct(&z, n, m);
        let sampler = crate::skew::RankSampler::new(&z, 20_000);
        let mut rng = SmallRng::seed_from_u64(5);
        let mut seen = vec![false; 20_000];
        for _ in 0..30_000 {
            seen[sampler.sample(&mut rng) as usize] = true;
        }
        let measured = seen.iter().filter(|&&s| s).count() as f64;
        assert!(
            (predicted - measured).abs() / measured < 0.02,
            "{predicted} vs {measured}"
        );
        // The binned sum with a uniform-shaped hot set equals the closed form.
        let flat = AccessCurve::HotSet {
            hot_fraction: 0.5,
            hot_access: 0.5,
        };
        let u = n * (1.0 - (-m / n).exp());
        assert!((expected_distinct(&flat, n, m) - u).abs() / u < 1e-3);
        let _ = rng.gen::<u8>();
    }

    #[test]
    fn recent_hits_grow_with_skew() {
        let n = 1e6;
        let u = hit_in_recent(&AccessCurve::Uniform, n, 1e4);
        let z = hit_in_recent(
            &AccessCurve::Zipf {
                theta: 0.99,
                n: 1_000_000,
            },
            n,
            1e4,
        );
        assert!((u - (1.0 - (1.0 - 1.0 / n).powf(1e4))).abs() < 1e-12);
        assert!(z > 10.0 * u, "zipf {z} uniform {u}");
    }
}
