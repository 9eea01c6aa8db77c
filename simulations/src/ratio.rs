//! `simulate ratio`: the SSD/HDD split that costs least while the HDDs' random reads stay under their
//! IOPS and latency targets. For each hot-set size (the fraction of keys with a copy in the SSD hot
//! file) it derives the hot-file hit ratio from the workload's skew, the SSD capacity (index + logs +
//! hot file + checkpoints), the reads each tier serves, and the drives needed for capacity,
//! throughput and endurance; then picks the cheapest, and repeats over SSD/HDD price ratios.
//! [`evaluate`] is the one-configuration model the plan and the lifetime report reuse.

use serde::Serialize;

use crate::bloom;
use crate::device::DeviceProfile;
use crate::error::{check_param, Result};
use crate::lifetime::{self, HddLoad, SsdWear};
use crate::model::{self, EngineConfig, TierWa};
use crate::table::poisson_overflow;
use crate::workload::Workload;

/// Pages a growing table rewrites per added key, times `entries per page × max load`: a rebuild at
/// load `L` onto 1.5× the buckets (load back to 2L/3) writes `1.5 B` pages after `B c L / 3` new keys,
/// so `4.5 / (c L)` pages per key.
const TABLE_GROWTH_PAGES_PER_KEY: f64 = 4.5;

/// Service targets and provisioning limits.
#[derive(Clone, Debug, Serialize)]
pub struct Targets {
    /// Mean HDD random-read response target, seconds (M/M/c, see `DeviceProfile::read_response_s`).
    pub hdd_read_latency_s: f64,
    /// Mean SSD random-read response target, seconds.
    pub ssd_read_latency_s: f64,
    /// Utilisation never planned above this (burst headroom).
    pub max_utilisation: f64,
    /// Largest planned SSD fill (internal WA grows steeply above ~0.85).
    pub ssd_fill_limit: f64,
    /// Largest planned HDD fill.
    pub hdd_fill_limit: f64,
    /// Fraction of data-file bytes that may be dead before compaction rewrites the file (the
    /// engine's `compact_dead_fraction`; space amplification up to `1 / (1 − dead)`).
    pub data_dead_fraction: f64,
    /// Years the SSDs must last before wearing out.
    pub ssd_years: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            hdd_read_latency_s: 0.050,
            ssd_read_latency_s: 0.001,
            max_utilisation: 0.7,
            ssd_fill_limit: 0.85,
            hdd_fill_limit: 0.9,
            data_dead_fraction: tierkv::Options::default().compact_dead_fraction,
            ssd_years: 5.0,
        }
    }
}

/// SSD bytes by use.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SsdBytes {
    /// Global-table pages (primary + overflow).
    pub index: f64,
    /// Two logs per shard (active + flushing).
    pub log: f64,
    /// Hot file.
    pub hot: f64,
    /// Two checkpoints per shard.
    pub meta: f64,
    /// Sum.
    pub total: f64,
}

/// Reads per get, by tier, and the rates they add up to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GetCost {
    /// Fraction of present-key gets answered by the log.
    pub log_hit: f64,
    /// Fraction of present-key gets not in the log that the hot file answers.
    pub hot_hit: f64,
    /// Global pages read per present-key get that reaches the table.
    pub pages_per_lookup: f64,
    /// Device reads per get, all gets (present and absent): the figure `validate` checks.
    pub device_reads_per_get: f64,
    /// SSD reads per second.
    pub ssd_reads_per_sec: f64,
    /// HDD reads per second.
    pub hdd_reads_per_sec: f64,
}

/// One evaluated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sizing {
    /// Fraction of keys held in the hot file.
    pub hot_fraction: f64,
    /// SSD bytes.
    pub ssd_bytes: SsdBytes,
    /// HDD bytes (data files with dead space).
    pub hdd_bytes: f64,
    /// Reads.
    pub gets: GetCost,
    /// Engine write amplification.
    pub wa: TierWa,
    /// SSDs for capacity, throughput, endurance; the count is their maximum.
    pub ssds_for: [u32; 3],
    /// HDDs for capacity, throughput.
    pub hdds_for: [u32; 2],
    /// SSDs.
    pub ssds: u32,
    /// HDDs.
    pub hdds: u32,
    /// Installed SSD capacity ÷ installed HDD capacity.
    pub ssd_hdd_capacity_ratio: f64,
    /// Dollars.
    pub cost: f64,
    /// SSD wear at this size.
    pub wear: SsdWear,
    /// HDD load at this size.
    pub hdd: HddLoad,
    /// False when a target cannot be met at any count (latency target below the service time).
    pub feasible: bool,
}

/// Average of `f` over a log that fills linearly from empty to `m` writes (Simpson's rule).
fn over_log_cycle(m: f64, f: impl Fn(f64) -> f64) -> f64 {
    (f(0.0) + 4.0 * f(m / 2.0) + f(m)) / 6.0
}

/// Evaluates one configuration: `hot_fraction` of the keys (the most popular) in the hot file.
pub fn evaluate(
    w: &Workload,
    ssd: &DeviceProfile,
    hdd: &DeviceProfile,
    cfg: &EngineConfig,
    t: &Targets,
    hot_fraction: f64,
) -> Sizing {
    let n = w.keys.max(1) as f64;
    let s = cfg.shards.max(1) as f64;
    let (k, v) = (w.key_bytes, w.value_bytes);
    let h = hot_fraction.clamp(0.0, 1.0);
    // Index: hot entries carry a 6-byte hot offset.
    let entry = model::entry_bytes(k, false) + h * model::HOT_OFFSET;
    let kps = n / s;
    let buckets = model::buckets_for(kps, entry, cfg.table_max_load);
    let c = model::entries_per_page(entry) as u64;
    let load = model::table_load(kps, entry, buckets);
    let ovf = poisson_overflow(load * c as f64, c);
    let pages_per_bucket = 1.0 + ovf.overflow_pages_per_bucket;
    let bloom_bytes = kps * cfg.bloom_headroom * bloom::bits_per_key(cfg.bloom_fpr) / 8.0;
    let rec = model::log_record_bytes(k, v);
    let mut ssd_bytes = SsdBytes {
        index: s * buckets * pages_per_bucket * model::PAGE_SIZE,
        log: s * 2.0 * cfg.log_capacity_bytes,
        hot: h * n * rec,
        meta: s * 2.0 * (buckets * model::PAGE_MAP_BYTES + bloom_bytes),
        total: 0.0,
    };
    ssd_bytes.total = ssd_bytes.index + ssd_bytes.log + ssd_bytes.hot + ssd_bytes.meta;
    let hdd_bytes = n * (model::DATA_HEADER + v) / (1.0 - t.data_dead_fraction);

    // Writes.
    let flush = model::flush_cost(w, cfg, kps, buckets, pages_per_bucket, bloom_bytes);
    let mut wa = TierWa::from_flush(&flush);
    let writes = w.puts_per_op + w.updates_per_op + w.deletes_per_op;
    if writes > 0.0 {
        // Overwrites of hot keys rewrite their hot copy (the hottest keys get most overwrites).
        let upd_share = w.updates_per_op / writes;
        wa.hot = w.curve.hit_fraction(h) * upd_share * rec / (k + v);
    }
    let user_per_day = w.user_write_bytes_per_sec() * 86400.0;
    let growth_keys_per_day = n * w.growth_per_day;
    let growth_bytes_per_day = growth_keys_per_day * TABLE_GROWTH_PAGES_PER_KEY * model::PAGE_SIZE
        / (c as f64 * cfg.table_max_load);

    // Reads.
    let gets = w.gets_per_sec();
    let present = gets * (1.0 - w.missing_fraction);
    let absent = gets * w.missing_fraction;
    let log_writes = flush.records * s * (w.updates_per_op / writes.max(1e-12));
    let log_hit = if writes > 0.0 {
        over_log_cycle(log_writes, |m| model::hit_in_recent(&w.curve, n, m))
    } else {
        0.0
    };
    let hot_hit = if h > 0.0 {
        w.curve.hit_fraction(h)
    } else {
        0.0
    };
    let pages_per_lookup = 1.0 + ovf.entries_in_overflow;
    let table_gets = present * (1.0 - log_hit);
    let index_reads =
        table_gets * pages_per_lookup + absent * cfg.bloom_fpr * (1.0 + ovf.p_overflow);
    let hot_reads = table_gets * hot_hit;
    let hdd_reads = table_gets * (1.0 - hot_hit);
    let log_reads = present * log_hit;
    let ssd_reads = index_reads + hot_reads + log_reads;
    let device_reads_per_get = if gets > 0.0 {
        (ssd_reads + hdd_reads) / gets
    } else {
        0.0
    };

    // Drives.
    let ceil = |x: f64| x.ceil().max(1.0) as u32;
    // Reads each drive may take under its latency target and utilisation cap (M/M/c).
    let ssd_rate = ssd.max_read_rate(t.ssd_read_latency_s, t.max_utilisation);
    let hdd_rate = hdd.max_read_rate(t.hdd_read_latency_s, t.max_utilisation);
    let feasible = ssd_rate > 0.0 && hdd_rate > 0.0;
    let ssd_cap = ceil(ssd_bytes.total / (ssd.capacity_bytes() * t.ssd_fill_limit));
    let ssd_perf = ceil(ssd_reads / ssd_rate.max(1e-9));
    // Endurance: drives whose rated bytes cover the years asked (internal WA at the fill limit).
    let probe = lifetime::ssd_wear(ssd, 1, user_per_day, &wa, growth_bytes_per_day, 0.0);
    let per_day_at_limit = (user_per_day * (wa.log + wa.meta)
        + (user_per_day * (wa.index + wa.hot) + growth_bytes_per_day)
            * ssd.internal_wa(t.ssd_fill_limit))
    .max(probe.bytes_per_day_per_ssd);
    let ssd_wear = ceil(per_day_at_limit * 365.0 * t.ssd_years / ssd.rated_bytes_written());
    let ssds = ssd_cap.max(ssd_perf).max(ssd_wear);
    let hdd_cap = ceil(hdd_bytes / (hdd.capacity_bytes() * t.hdd_fill_limit));
    let data_write_bps = w.user_write_bytes_per_sec() * wa.data;
    // Appending takes `write time` HDD-seconds per second; the rest of each drive's time serves reads:
    // n (1 − write/n) rate ≥ reads ⇒ n ≥ reads / rate + write time / cap.
    let write_time = data_write_bps / (hdd.seq_write_mb_s * 1e6);
    let hdd_perf = ceil(hdd_reads / hdd_rate.max(1e-9) + write_time / t.max_utilisation);
    let hdds = hdd_cap.max(hdd_perf);
    let cost = ssds as f64 * ssd.capacity_gb * ssd.price_per_gb
        + hdds as f64 * hdd.capacity_gb * hdd.price_per_gb;
    let wear = lifetime::ssd_wear(
        ssd,
        ssds,
        user_per_day,
        &wa,
        growth_bytes_per_day,
        ssd_bytes.total,
    );
    let hdd_load = lifetime::hdd_load(
        hdd,
        hdds,
        data_write_bps,
        hdd_reads,
        v + model::DATA_HEADER,
        hdd_bytes,
    );
    Sizing {
        hot_fraction: h,
        ssd_bytes,
        hdd_bytes,
        gets: GetCost {
            log_hit,
            hot_hit,
            pages_per_lookup,
            device_reads_per_get,
            ssd_reads_per_sec: ssd_reads,
            hdd_reads_per_sec: hdd_reads,
        },
        wa,
        ssds_for: [ssd_cap, ssd_perf, ssd_wear],
        hdds_for: [hdd_cap, hdd_perf],
        ssds,
        hdds,
        ssd_hdd_capacity_ratio: ssds as f64 * ssd.capacity_gb / (hdds as f64 * hdd.capacity_gb),
        cost,
        wear,
        hdd: hdd_load,
        feasible,
    }
}

/// The price-ratio sweep's best point at one ratio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PricePoint {
    /// SSD price per GB ÷ HDD price per GB.
    pub price_ratio: f64,
    /// Best hot fraction.
    pub hot_fraction: f64,
    /// Installed SSD ÷ HDD capacity at the best point.
    pub ssd_hdd_capacity_ratio: f64,
    /// SSDs and HDDs.
    pub ssds: u32,
    /// HDDs.
    pub hdds: u32,
    /// Cost, dollars.
    pub cost: f64,
}

/// Everything `simulate ratio` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RatioReport {
    /// The cheapest configuration at the profiles' prices.
    pub best: Sizing,
    /// `(hot fraction, cost)` over the sweep (the main curve).
    pub curve: Vec<(f64, f64)>,
    /// The cheapest configuration per SSD/HDD price ratio.
    pub price_sweep: Vec<PricePoint>,
}

/// Hot fractions swept: 0 and 48 geometric steps from 1e−5 to 1.
pub fn hot_grid() -> Vec<f64> {
    std::iter::once(0.0)
        .chain((0..=48).map(|i| 10f64.powf(-5.0 + 5.0 * i as f64 / 48.0)))
        .collect()
}

fn cheapest(sizings: Vec<Sizing>) -> Option<Sizing> {
    // Ties (whole drives make cost a step function) go to the larger hot set: more headroom.
    sizings
        .into_iter()
        .filter(|s| s.feasible)
        .fold(None, |best, s| match best {
            Some(b) if b.cost < s.cost - 1e-6 => Some(b),
            _ => Some(s),
        })
}

/// Runs the model.
pub fn simulate(
    w: &Workload,
    ssd: &DeviceProfile,
    hdd: &DeviceProfile,
    cfg: &EngineConfig,
    t: &Targets,
) -> Result<RatioReport> {
    check_param(
        t.max_utilisation > 0.0 && t.max_utilisation <= 1.0,
        "max_utilisation",
        || "must be in (0, 1]".into(),
    )?;
    check_param(
        (0.0..1.0).contains(&t.data_dead_fraction),
        "data_dead_fraction",
        || "must be in [0, 1)".into(),
    )?;
    let grid = hot_grid();
    let all: Vec<Sizing> = grid
        .iter()
        .map(|&h| evaluate(w, ssd, hdd, cfg, t, h))
        .collect();
    let curve = all.iter().map(|s| (s.hot_fraction, s.cost)).collect();
    let best = cheapest(all).ok_or_else(|| crate::Error::Param {
        name: "targets",
        reason: format!(
            "no configuration meets the latency targets (HDD QD1 {:.1} ms vs target {:.1} ms, SSD {:.0} µs vs {:.0} µs)",
            hdd.random_read_latency_us / 1e3,
            t.hdd_read_latency_s * 1e3,
            ssd.random_read_latency_us,
            t.ssd_read_latency_s * 1e6
        ),
    })?;
    let mut price_sweep = Vec::new();
    for ratio in [1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 50.0] {
        let mut s2 = ssd.clone();
        s2.price_per_gb = hdd.price_per_gb * ratio;
        let pick = cheapest(
            grid.iter()
                .map(|&h| evaluate(w, &s2, hdd, cfg, t, h))
                .collect(),
        );
        if let Some(b) = pick {
            price_sweep.push(PricePoint {
                price_ratio: ratio,
                hot_fraction: b.hot_fraction,
                ssd_hdd_capacity_ratio: b.ssd_hdd_capacity_ratio,
                ssds: b.ssds,
                hdds: b.hdds,
                cost: b.cost,
            });
        }
    }
    Ok(RatioReport {
        best,
        curve,
        price_sweep,
    })
}

impl Sizing {
    /// Human-readable summary.
    pub fn table(&self) -> String {
        use crate::plan::human_bytes as hb;
        format!(
            "  hot set              {:.4} % of keys → hot-file hit ratio {:.3}\n  log hit ratio        {:.4}\n  SSD bytes            {} (index {}, logs {}, hot {}, checkpoints {})\n  HDD bytes            {}\n  SSD reads/s          {:.0}   HDD reads/s {:.0}   device reads/get {:.3}\n  SSDs                 {} (capacity {}, throughput {}, endurance {})\n  HDDs                 {} (capacity {}, throughput {})\n  SSD/HDD capacity     {:.4}\n  cost                 ${:.0}\n",
            self.hot_fraction * 100.0,
            self.gets.hot_hit,
            self.gets.log_hit,
            hb(self.ssd_bytes.total),
            hb(self.ssd_bytes.index),
            hb(self.ssd_bytes.log),
            hb(self.ssd_bytes.hot),
            hb(self.ssd_bytes.meta),
            hb(self.hdd_bytes),
            self.gets.ssd_reads_per_sec,
            self.gets.hdd_reads_per_sec,
            self.gets.device_reads_per_get,
            self.ssds,
            self.ssds_for[0],
            self.ssds_for[1],
            self.ssds_for[2],
            self.hdds,
            self.hdds_for[0],
            self.hdds_for[1],
            self.ssd_hdd_capacity_ratio,
            self.cost
        )
    }
}

impl RatioReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::from("Cheapest SSD/HDD configuration\n");
        s += &self.best.table();
        s += "\n  SSD/HDD price  hot %      SSD/HDD capacity  SSDs  HDDs  cost\n";
        for p in &self.price_sweep {
            s += &format!(
                "  {:13.1}  {:9.4}  {:16.4}  {:4}  {:4}  ${:.0}\n",
                p.price_ratio,
                p.hot_fraction * 100.0,
                p.ssd_hdd_capacity_ratio,
                p.ssds,
                p.hdds,
                p.cost
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tests::{toy_hdd, toy_ssd};
    use crate::workload::{tests::shipped_dir, WorkloadSpec};

    fn zipf_reads() -> Workload {
        WorkloadSpec::load(shipped_dir().join("get-zipf.json"))
            .unwrap()
            .model()
            .unwrap()
            .with_keys(1_000_000_000)
    }

    #[test]
    fn hot_set_cuts_hdd_reads() {
        let w = zipf_reads();
        let cfg = EngineConfig {
            shards: 256,
            ..EngineConfig::default()
        };
        let t = Targets::default();
        let cold = evaluate(&w, &toy_ssd(), &toy_hdd(), &cfg, &t, 0.0);
        let warm = evaluate(&w, &toy_ssd(), &toy_hdd(), &cfg, &t, 0.01);
        assert_eq!(cold.gets.hot_hit, 0.0);
        assert!(warm.gets.hdd_reads_per_sec < 0.5 * cold.gets.hdd_reads_per_sec);
        assert!(warm.ssd_bytes.hot > 0.0 && cold.ssd_bytes.hot == 0.0);
        // Read-only: one index page plus one value read per get, a little more with overflow.
        assert!(
            (cold.gets.device_reads_per_get - 2.0).abs() < 0.01,
            "{}",
            cold.gets.device_reads_per_get
        );
    }

    #[test]
    fn cheaper_ssds_buy_bigger_hot_sets() {
        let w = zipf_reads();
        let cfg = EngineConfig {
            shards: 256,
            ..EngineConfig::default()
        };
        let r = simulate(&w, &toy_ssd(), &toy_hdd(), &cfg, &Targets::default()).unwrap();
        let first = r.price_sweep.first().unwrap();
        let last = r.price_sweep.last().unwrap();
        assert!(
            first.hot_fraction >= last.hot_fraction,
            "{:?}",
            r.price_sweep
        );
        assert!(r.best.cost <= r.curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min) + 1e-6);
        assert!(r.best.hdd.read_response_s <= Targets::default().hdd_read_latency_s);
    }

    #[test]
    fn impossible_latency_target_is_an_error() {
        let w = zipf_reads();
        let t = Targets {
            hdd_read_latency_s: 0.001,
            ..Targets::default()
        };
        let e = simulate(&w, &toy_ssd(), &toy_hdd(), &EngineConfig::default(), &t).unwrap_err();
        assert!(e.to_string().contains("latency"), "{e}");
    }
}
