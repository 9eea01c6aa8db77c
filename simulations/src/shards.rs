//! `simulate shards`: the shard count. Per-shard keys, bytes and DRAM; the expected largest deviation
//! of a shard from the mean (normal approximation of the multinomial, extreme-value expectation) and
//! the same measured by Monte Carlo with the engine's own hash and shard selector; flush size and
//! parallelism; a recommended count and when rebalancing would trigger.

use serde::Serialize;
use tierkv::hash::{KeyHash, MAX_SHARDS};

use crate::bloom;
use crate::error::{check_param, Result};
use crate::model::{self, EngineConfig};
use crate::workload::{key_for, Workload};

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Expected maximum of `m` independent standard normals (Gumbel limit with its second-order
/// location term: `b_m + γ a_m`, `b_m = √(2 ln m) − (ln ln m + ln 4π) / (2 √(2 ln m))`, `a_m = 1/√(2 ln m)`).
pub fn expected_max_normal(m: f64) -> f64 {
    if m < 2.0 {
        return 0.0;
    }
    let l = (2.0 * m.ln()).sqrt();
    let b = l - (m.ln().ln() + (4.0 * std::f64::consts::PI).ln()) / (2.0 * l);
    b + EULER_GAMMA / l
}

/// Expected largest `|count − mean| / mean` over `s` shards holding `n` keys placed by a uniform hash:
/// counts are Binomial(n, 1/s) ≈ Normal(n/s, n/s (1 − 1/s)); the largest absolute deviation of `s`
/// of them is taken as the largest of `2s` normal tails (one per side). Exactly 0 for one shard;
/// for two shards the deviations are equal and opposite, so it is `E|Z|·σ/μ`.
pub fn expected_max_deviation(n: f64, s: f64) -> f64 {
    if s <= 1.0 || n <= 0.0 {
        return 0.0;
    }
    let p = 1.0 / s;
    let rel_sigma = ((1.0 - p) / (n * p)).sqrt();
    let z = if s <= 2.0 {
        (2.0 / std::f64::consts::PI).sqrt()
    } else {
        expected_max_normal(2.0 * s)
    };
    rel_sigma * z
}

/// One shard count of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardPoint {
    /// Shard count.
    pub shards: u32,
    /// Keys per shard (mean).
    pub keys_per_shard: f64,
    /// Key and value bytes per shard (mean).
    pub bytes_per_shard: f64,
    /// Expected largest relative deviation of a shard's key count, at the workload's key count.
    pub expected_max_deviation: f64,
    /// Expected largest relative deviation of a shard's bytes (value sizes vary).
    pub expected_max_bytes_deviation: f64,
    /// Monte Carlo mean of the largest deviation with `mc_keys` keys (engine hash).
    pub mc_max_deviation: f64,
    /// The formula at `mc_keys` keys, to compare with `mc_max_deviation`.
    pub formula_at_mc_keys: f64,
    /// Global-table bytes per shard (primary pages).
    pub index_bytes_per_shard: f64,
    /// Buckets per shard.
    pub buckets_per_shard: f64,
    /// DRAM per shard: Bloom filter (sized with the engine's headroom) + page map + two log tables
    /// (active and flushing).
    pub dram_per_shard: f64,
    /// DRAM for the whole store.
    pub dram_total: f64,
    /// Log bytes per flush (the per-shard log capacity).
    pub flush_log_bytes: f64,
    /// Global pages a flush rewrites.
    pub flush_pages: f64,
    /// Flushes that can run at once (shards share nothing; bounded by `threads`).
    pub flush_parallelism: u32,
    /// Why this count is not acceptable (empty: acceptable).
    pub rejected_because: Vec<String>,
}

/// Inputs of `simulate shards`.
#[derive(Clone, Debug)]
pub struct ShardParams {
    /// Engine settings (log capacity, Bloom target, table load).
    pub config: EngineConfig,
    /// Threads (cores) that should be able to work on distinct shards.
    pub threads: u32,
    /// Largest acceptable expected max deviation of shard key counts (the rebalance trigger).
    pub max_deviation: f64,
    /// Largest acceptable global table per shard, bytes (a rebuild rewrites one shard's table).
    pub max_shard_index_bytes: f64,
    /// Keys hashed per Monte Carlo trial.
    pub mc_keys: u64,
    /// Monte Carlo trials.
    pub mc_trials: u32,
    /// Largest shard count swept (power of two ≤ 65536).
    pub max_shards: u32,
}

impl Default for ShardParams {
    fn default() -> Self {
        ShardParams {
            config: EngineConfig::default(),
            threads: 8,
            max_deviation: 0.05,
            max_shard_index_bytes: 4.0 * (1u64 << 30) as f64,
            mc_keys: 1_000_000,
            mc_trials: 4,
            max_shards: 4096,
        }
    }
}

/// Everything `simulate shards` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardReport {
    /// Keys.
    pub keys: u64,
    /// Keys hashed per Monte Carlo trial (the `mc_*` and `formula_at_mc_keys` columns).
    pub mc_keys: u64,
    /// The sweep.
    pub points: Vec<ShardPoint>,
    /// The recommended count: the smallest acceptable one.
    pub recommended: u32,
    /// Why (or why nothing was acceptable and which count was chosen instead).
    pub reason: String,
    /// Below this many keys the expected max deviation at the recommended count passes the
    /// rebalance threshold (a hash spreads keys better as they grow, so deviation alone triggers a
    /// rebalance only in a small store).
    pub deviation_trigger_below_keys: f64,
    /// With the workload's growth, days until a shard's table passes `max_shard_index_bytes` and
    /// the shard count should double (`None`: no growth).
    pub days_until_split: Option<f64>,
}

/// Monte Carlo: per trial, hash `keys` fresh keys and count them per shard at 16 bits, then fold the
/// counts for every smaller power of two. Returns the mean largest relative deviation per shard bit.
fn monte_carlo(keys: u64, trials: u32) -> Vec<f64> {
    let mut mean_max = vec![0.0; 17];
    for t in 0..trials {
        let mut counts = vec![0u64; MAX_SHARDS as usize];
        let base = (t as u64 + 1) << 40;
        for id in base..base + keys {
            counts[KeyHash::of(&key_for(id, 16)).shard(16) as usize] += 1;
        }
        for bits in (0..=16).rev() {
            let s = 1usize << bits;
            let mean = keys as f64 / s as f64;
            let max = counts[..s]
                .iter()
                .map(|&c| (c as f64 - mean).abs() / mean)
                .fold(0.0, f64::max);
            mean_max[bits] += max / trials as f64;
            // Fold pairs: shard i at `bits − 1` bits = shards 2i and 2i+1 at `bits`.
            if bits > 0 {
                for i in 0..s / 2 {
                    counts[i] = counts[2 * i] + counts[2 * i + 1];
                }
            }
        }
    }
    mean_max
}

/// Runs the model.
pub fn simulate(w: &Workload, p: &ShardParams) -> Result<ShardReport> {
    check_param(
        p.max_shards.is_power_of_two() && p.max_shards <= MAX_SHARDS,
        "max_shards",
        || format!("must be a power of two ≤ {MAX_SHARDS}"),
    )?;
    check_param(p.max_deviation > 0.0, "max_deviation", || {
        "must be positive".into()
    })?;
    check_param(p.mc_keys >= 1000 && p.mc_trials >= 1, "mc_keys", || {
        "need at least 1000 keys and 1 trial".into()
    })?;
    let n = w.keys as f64;
    let mc = monte_carlo(p.mc_keys, p.mc_trials);
    let entry = model::entry_bytes(w.key_bytes, false);
    let rec = model::log_record_bytes(w.key_bytes, w.value_bytes);
    let s_bytes = w.key_bytes + w.value_bytes;
    let s_m2 = w.key_bytes.powi(2) + 2.0 * w.key_bytes * w.value_bytes + w.value_bytes_m2;
    let bpk = bloom::bits_per_key(p.config.bloom_fpr);
    let log_records = (p.config.log_capacity_bytes / rec).max(1.0);
    let rh_slots = ((log_records / tierkv::log_table::RobinHoodTable::DEFAULT_MAX_LOAD).ceil()
        + 1.0)
        .log2()
        .ceil()
        .exp2()
        .max(16.0);
    let log_table_dram = 2.0 * rh_slots * 16.0;
    let mut points = Vec::new();
    let max_bits = p.max_shards.trailing_zeros();
    for bits in 0..=max_bits {
        let s = (1u64 << bits) as f64;
        let kps = n / s;
        let buckets = model::buckets_for(kps, entry, p.config.table_max_load);
        let index = buckets * model::PAGE_SIZE;
        let dev = expected_max_deviation(n, s);
        // Bytes: a sum of Binomial(n, 1/s) sizes: var = n p E[s²] − n p² E[s]².
        let pr = 1.0 / s;
        let var_b = n * pr * s_m2 - n * pr * pr * s_bytes * s_bytes;
        let dev_b = if s <= 1.0 {
            0.0
        } else {
            var_b.max(0.0).sqrt() / (n * pr * s_bytes)
                * expected_max_normal(2.0 * s).max((2.0 / std::f64::consts::PI).sqrt())
        };
        let dram = kps * p.config.bloom_headroom * bpk / 8.0
            + buckets * model::PAGE_MAP_BYTES
            + log_table_dram;
        let flush = model::flush_cost(w, &p.config, kps, buckets, 1.0, kps * bpk / 8.0);
        let mut why = Vec::new();
        if (s as u32) < p.threads {
            why.push(format!("fewer shards than {} threads", p.threads));
        }
        if index > p.max_shard_index_bytes {
            why.push(format!(
                "table {} per shard above {}",
                crate::plan::human_bytes(index),
                crate::plan::human_bytes(p.max_shard_index_bytes)
            ));
        }
        if buckets > 2f64.powi(32) {
            why.push("more than 2^32 buckets per shard".into());
        }
        if dev > p.max_deviation {
            why.push(format!(
                "expected max deviation {:.1} % above {:.1} %",
                dev * 100.0,
                p.max_deviation * 100.0
            ));
        }
        points.push(ShardPoint {
            shards: s as u32,
            keys_per_shard: kps,
            bytes_per_shard: kps * s_bytes,
            expected_max_deviation: dev,
            expected_max_bytes_deviation: dev_b,
            mc_max_deviation: mc[bits as usize],
            formula_at_mc_keys: expected_max_deviation(p.mc_keys as f64, s),
            index_bytes_per_shard: index,
            buckets_per_shard: buckets,
            dram_per_shard: dram,
            dram_total: dram * s,
            flush_log_bytes: p.config.log_capacity_bytes,
            flush_pages: flush.touched_buckets,
            flush_parallelism: (s as u32).min(p.threads),
            rejected_because: why,
        });
    }
    let (recommended, reason) = match points.iter().find(|pt| pt.rejected_because.is_empty()) {
        Some(pt) => (
            pt.shards,
            format!(
                "smallest count with ≥ {} shards for {} threads, a table ≤ {} per shard and an expected max deviation ≤ {:.1} %",
                p.threads,
                p.threads,
                crate::plan::human_bytes(p.max_shard_index_bytes),
                p.max_deviation * 100.0
            ),
        ),
        None => {
            // Size and parallelism matter more than balance: take the smallest count meeting them.
            let pt = points
                .iter()
                .find(|pt| pt.rejected_because.iter().all(|r| r.starts_with("expected")))
                .unwrap_or(points.last().expect("at least one point"));
            (
                pt.shards,
                format!("no count meets every limit; {} shards meets the size and thread limits: {}", pt.shards, pt.rejected_because.join("; ")),
            )
        }
    };
    let s = recommended as f64;
    let z = if s <= 2.0 {
        (2.0 / std::f64::consts::PI).sqrt()
    } else {
        expected_max_normal(2.0 * s)
    };
    let deviation_trigger_below_keys = if s <= 1.0 {
        0.0
    } else {
        s * (1.0 - 1.0 / s) * (z / p.max_deviation).powi(2)
    };
    let rec_point = &points[recommended.trailing_zeros() as usize];
    let days_until_split = (w.growth_per_day > 0.0).then(|| {
        let headroom = p.max_shard_index_bytes / rec_point.index_bytes_per_shard.max(1.0);
        // Tables double in steps: the shard passes the cap when its keys pass cap/index × keys.
        let keys_at_cap = rec_point.keys_per_shard * headroom;
        (keys_at_cap / rec_point.keys_per_shard).ln().max(0.0) / (1.0 + w.growth_per_day).ln()
    });
    Ok(ShardReport {
        keys: w.keys,
        mc_keys: p.mc_keys,
        points,
        recommended,
        reason,
        deviation_trigger_below_keys,
        days_until_split,
    })
}

impl ShardReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        use crate::plan::human_bytes as hb;
        let mut s = format!(
            "Shards for {} keys (E[max dev] at that count; MC = Monte Carlo with the engine's hash over {} keys per trial, next to the formula at {} keys)\n shards  keys/shard    bytes/shard  E[max dev]  MC dev (formula)     index/shard  DRAM/shard  DRAM total  flush pages  ok\n",
            self.keys, self.mc_keys, self.mc_keys
        );
        for p in &self.points {
            s += &format!(
                " {:6}  {:10.3e}  {:>12}  {:9.4}%  {:7.3}% ({:7.3}%)  {:>11}  {:>10}  {:>10}  {:11.0}  {}\n",
                p.shards,
                p.keys_per_shard,
                hb(p.bytes_per_shard),
                p.expected_max_deviation * 100.0,
                p.mc_max_deviation * 100.0,
                p.formula_at_mc_keys * 100.0,
                hb(p.index_bytes_per_shard),
                hb(p.dram_per_shard),
                hb(p.dram_total),
                p.flush_pages,
                if p.rejected_because.is_empty() { "yes".to_string() } else { p.rejected_because.join("; ") }
            );
        }
        s += &format!(
            "\nrecommended: {} shards ({})\n",
            self.recommended, self.reason
        );
        s += &format!(
            "rebalance (max deviation) triggers only below {:.0} keys at this count\n",
            self.deviation_trigger_below_keys
        );
        if let Some(d) = self.days_until_split {
            s += &format!("with the workload's growth, double the shard count in {d:.0} days\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        let spec = crate::workload::WorkloadSpec::load(
            crate::workload::tests::shipped_dir().join("hotset-mixed.json"),
        )
        .unwrap();
        spec.model().unwrap()
    }

    #[test]
    fn expected_max_normal_known_values() {
        // E[max of 1000 standard normals] = 3.241 (tables); the asymptotic form is within 2 %.
        assert!(
            (expected_max_normal(1000.0) - 3.241).abs() < 0.07,
            "{}",
            expected_max_normal(1000.0)
        );
        assert_eq!(expected_max_deviation(1e6, 1.0), 0.0);
    }

    #[test]
    fn monte_carlo_with_engine_hash_matches_formula() {
        let w = workload();
        let r = simulate(
            &w,
            &ShardParams {
                mc_keys: 100_000,
                mc_trials: 3,
                max_shards: 256,
                ..ShardParams::default()
            },
        )
        .unwrap();
        for p in r.points.iter().filter(|p| p.shards >= 8) {
            let rel = (p.mc_max_deviation - p.formula_at_mc_keys).abs() / p.formula_at_mc_keys;
            assert!(
                rel < 0.35,
                "{} shards: mc {} formula {}",
                p.shards,
                p.mc_max_deviation,
                p.formula_at_mc_keys
            );
        }
        assert!(r.recommended >= 8);
        assert!(r.points[0].mc_max_deviation == 0.0);
    }

    #[test]
    fn small_stores_reject_many_shards() {
        let w = workload().with_keys(10_000);
        let r = simulate(
            &w,
            &ShardParams {
                mc_keys: 10_000,
                mc_trials: 1,
                max_shards: 1024,
                ..ShardParams::default()
            },
        )
        .unwrap();
        let p = r.points.iter().find(|p| p.shards == 1024).unwrap();
        assert!(!p.rejected_because.is_empty());
    }
}
