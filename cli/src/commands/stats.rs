//! `kvtool stats`: the engine's counters (`Db::stats`) with the figures an operator decides on —
//! per-shard keys and bytes with the largest deviation from the mean, table loads and overflow pages,
//! Bloom false-positive estimates, bytes on disk per tier, dead bytes, space amplification, bytes
//! written per tier since creation (SSD wear) — and verdicts: whether to compact or rebalance, and why.
//! The thresholds live in [`Thresholds`] so the verdict logic is a policy that returns decisions.

use std::io::Write as _;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Global;
use crate::engine::{DirectIo, Stats};
use crate::output::{bytes, print_json, stdout};

/// Arguments of `kvtool stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {}

/// When a verdict fires.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Dead fraction of the data files past which compaction is recommended (the store's
    /// `compact_dead_fraction`, the same threshold `compact` applies).
    pub dead_fraction: f64,
    /// Relative deviation of a shard's keys from the mean past which rebalancing is recommended.
    pub shard_deviation: f64,
    /// Overflow pages per bucket past which rebalancing (more shards) is recommended.
    pub overflow_per_bucket: f64,
    /// Keys below which imbalance is noise.
    pub min_keys: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            dead_fraction: 0.25,
            shard_deviation: 0.25,
            overflow_per_bucket: 0.1,
            min_keys: 10_000,
        }
    }
}

/// The figures derived from the raw counters.
#[derive(Debug, Serialize, Default)]
pub struct Derived {
    /// Bytes of live keys and values (tables and logs).
    pub live_bytes: u64,
    /// Data-file bytes no longer referenced.
    pub dead_bytes: u64,
    /// Dead bytes ÷ data-file bytes.
    pub dead_fraction: f64,
    /// Bytes on disk ÷ live bytes (null when nothing is live).
    pub space_amplification: Option<f64>,
    /// Largest table load of any shard.
    pub max_table_load: f64,
    /// Overflow pages over all shards.
    pub overflow_pages: u64,
    /// Largest Bloom false-positive estimate of any shard.
    pub max_bloom_estimated_fpr: f64,
    /// Bytes written to SSD tiers since creation (log, index, hot, meta).
    pub ssd_bytes_written_total: u64,
    /// Bytes written to the HDD tier since creation.
    pub hdd_bytes_written_total: u64,
}

/// A recommendation and its reason.
#[derive(Debug, Serialize, PartialEq)]
pub struct Verdict {
    /// `compact` or `rebalance`.
    pub action: &'static str,
    /// Why.
    pub reason: String,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    stats: &'a Stats,
    derived: &'a Derived,
    verdicts: &'a [Verdict],
}

/// Computes the derived figures.
pub fn derive(s: &Stats) -> Derived {
    let dead: u64 = s.per_shard.iter().map(|p| p.data_dead_bytes).sum();
    let data = s.disk_bytes.data;
    let t = &s.tiers;
    Derived {
        live_bytes: s.live_bytes,
        dead_bytes: dead,
        dead_fraction: if data > 0 {
            dead as f64 / data as f64
        } else {
            0.0
        },
        space_amplification: (s.live_bytes > 0).then_some(s.space_amplification),
        max_table_load: s.per_shard.iter().map(|p| p.table_load).fold(0.0, f64::max),
        overflow_pages: s.per_shard.iter().map(|p| p.overflow_pages).sum(),
        max_bloom_estimated_fpr: s
            .per_shard
            .iter()
            .map(|p| p.bloom_estimated_fpr)
            .fold(0.0, f64::max),
        ssd_bytes_written_total: t.log.written_bytes_total
            + t.index.written_bytes_total
            + t.hot.written_bytes_total
            + t.meta.written_bytes_total,
        hdd_bytes_written_total: t.data.written_bytes_total,
    }
}

/// The recommendations `stats` prints.
pub fn verdicts(s: &Stats, d: &Derived, th: &Thresholds) -> Vec<Verdict> {
    let mut v = Vec::new();
    if d.dead_fraction >= th.dead_fraction && d.dead_bytes > 0 {
        let worst = s
            .per_shard
            .iter()
            .max_by_key(|p| p.data_dead_bytes)
            .map(|p| p.shard)
            .unwrap_or(0);
        v.push(Verdict {
            action: "compact",
            reason: format!(
                "compaction recommended because {:.0}% of the data files ({}) is dead (threshold {:.0}%; most in shard {worst})",
                d.dead_fraction * 100.0,
                bytes(d.dead_bytes),
                th.dead_fraction * 100.0
            ),
        });
    }
    if s.live_keys >= th.min_keys && s.shard_key_max_deviation > th.shard_deviation {
        v.push(Verdict {
            action: "rebalance",
            reason: format!(
                "rebalance recommended because a shard's key count deviates {:.0}% from the mean (threshold {:.0}%)",
                s.shard_key_max_deviation * 100.0,
                th.shard_deviation * 100.0
            ),
        });
    }
    let buckets: u64 = s.per_shard.iter().map(|p| p.buckets).sum();
    if buckets > 0 && d.overflow_pages as f64 / buckets as f64 > th.overflow_per_bucket {
        v.push(Verdict {
            action: "rebalance",
            reason: format!(
                "rebalance recommended because {} overflow pages serve {} buckets ({:.0}% > {:.0}%): lookups cost extra page reads; more shards spread the keys",
                d.overflow_pages,
                buckets,
                100.0 * d.overflow_pages as f64 / buckets as f64,
                th.overflow_per_bucket * 100.0
            ),
        });
    }
    v
}

/// The tiers read with direct I/O, as `--direct-io` spells them.
fn direct_tiers(d: &DirectIo) -> String {
    let tiers: Vec<&str> = [(d.index, "index"), (d.hot, "hot"), (d.data, "data")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    if tiers.is_empty() {
        "none".to_string()
    } else {
        tiers.join(",")
    }
}

/// Runs `kvtool stats`.
pub fn run(_a: &StatsArgs, g: &Global) -> anyhow::Result<u8> {
    let db = g.open_for_reading()?;
    let s = db.stats();
    let th = Thresholds {
        dead_fraction: db.options().compact_dead_fraction,
        ..Thresholds::default()
    };
    db.close().context("cannot close the store")?;
    let d = derive(&s);
    let v = verdicts(&s, &d, &th);
    if g.json {
        print_json(&Report {
            stats: &s,
            derived: &d,
            verdicts: &v,
        })?;
        return Ok(crate::EXIT_OK);
    }
    let mut o = stdout();
    writeln!(o, "keys               {}", s.live_keys)?;
    if let Some(ro) = &s.read_only {
        writeln!(
            o,
            "  read-only view   flushed state beside a writer ({} reloads, {} retried reads, {} gets copied their pages)",
            ro.reloads, ro.retries, ro.copied_gets
        )?;
    }
    writeln!(o, "  flushed          {}", s.table_keys)?;
    writeln!(o, "live bytes         {}", bytes(d.live_bytes))?;
    writeln!(
        o,
        "shards             {} (max key deviation from the mean {:.1}%)",
        s.shards,
        s.shard_key_max_deviation * 100.0
    )?;
    writeln!(
        o,
        "disk               {} total: log {}, index {}, hot {}, data {}",
        bytes(s.disk_bytes.total),
        bytes(s.disk_bytes.log),
        bytes(s.disk_bytes.index),
        bytes(s.disk_bytes.hot),
        bytes(s.disk_bytes.data)
    )?;
    writeln!(
        o,
        "dead bytes         {} ({:.1}% of data files)",
        bytes(d.dead_bytes),
        d.dead_fraction * 100.0
    )?;
    match d.space_amplification {
        Some(a) => writeln!(o, "space amplif.      {a:.2}x")?,
        None => writeln!(o, "space amplif.      -")?,
    }
    writeln!(
        o,
        "written (total)    SSD {} (log {}, index {}, hot {}), HDD {}",
        bytes(d.ssd_bytes_written_total),
        bytes(s.tiers.log.written_bytes_total),
        bytes(s.tiers.index.written_bytes_total),
        bytes(s.tiers.hot.written_bytes_total),
        bytes(d.hdd_bytes_written_total)
    )?;
    writeln!(
        o,
        "I/O                {}; direct I/O: {}; index page cache {} pages",
        s.io_engine,
        direct_tiers(&s.direct_io),
        s.page_cache_pages
    )?;
    writeln!(
        o,
        "DRAM               bloom {}, tables {} ({:.1} B per flushed key)",
        bytes(s.bloom_dram_bytes),
        bytes(s.table_dram_bytes),
        s.dram_bytes_per_flushed_key
    )?;
    writeln!(
        o,
        "\n{:>5} {:>12} {:>10} {:>10} {:>7} {:>8} {:>9} {:>10} {:>10}",
        "shard", "keys", "live", "data", "load", "overflow", "bloom fpr", "dead", "log"
    )?;
    for p in &s.per_shard {
        writeln!(
            o,
            "{:>5} {:>12} {:>10} {:>10} {:>7.3} {:>8} {:>9.5} {:>10} {:>10}",
            p.shard,
            p.live_keys,
            bytes(p.table_live_bytes),
            bytes(p.data_bytes),
            p.table_load,
            p.overflow_pages,
            p.bloom_estimated_fpr,
            bytes(p.data_dead_bytes),
            bytes(p.log_bytes)
        )?;
    }
    writeln!(o)?;
    if v.is_empty() {
        writeln!(o, "verdict: no maintenance needed")?;
    }
    for verdict in &v {
        writeln!(o, "verdict: {}", verdict.reason)?;
    }
    o.flush()?;
    Ok(crate::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ShardStats;

    fn store(keys: &[u64], dead: u64, data: u64) -> Stats {
        let mut s = Stats {
            shards: keys.len() as u32,
            live_keys: keys.iter().sum(),
            ..Stats::default()
        };
        let mean = s.live_keys as f64 / keys.len() as f64;
        s.shard_key_max_deviation = keys
            .iter()
            .map(|&k| (k as f64 - mean).abs() / mean)
            .fold(0.0, f64::max);
        s.disk_bytes.data = data;
        s.per_shard = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| ShardStats {
                shard: i as u32,
                live_keys: k,
                data_dead_bytes: dead / keys.len() as u64,
                buckets: 100,
                ..ShardStats::default()
            })
            .collect();
        s
    }

    #[test]
    fn healthy_store_has_no_verdict() {
        let s = store(&[50_000, 51_000], 0, 1_000_000);
        assert!(verdicts(&s, &derive(&s), &Thresholds::default()).is_empty());
    }

    #[test]
    fn dead_bytes_recommend_compaction() {
        let s = store(&[50_000, 50_000], 600_000, 1_000_000);
        let v = verdicts(&s, &derive(&s), &Thresholds::default());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].action, "compact");
        assert!(v[0].reason.contains("60%"), "{}", v[0].reason);
    }

    #[test]
    fn skew_recommends_rebalance() {
        let s = store(&[10_000, 90_000], 0, 1);
        let v = verdicts(&s, &derive(&s), &Thresholds::default());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].action, "rebalance");
    }
}
