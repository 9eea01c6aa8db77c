//! `simulate bloom`: sizing the per-shard Bloom filter, how its false-positive rate grows as keys are
//! inserted and deleted between rebuilds, and the rebuild interval that minimises total device time.
//! Measures with the engine's filter (the `bloomfilter` crate over the key's 64-bit XXH3 hash) rather
//! than trusting the formula alone.

use bloomfilter::Bloom;
use serde::Serialize;
use tierkv::hash::KeyHash;

use crate::error::{check_param, Result};
use crate::workload::key_for;

/// The seed the engine builds its filters with (`engine/src/bloom.rs`). The simulations measure with
/// it, so their predictions follow the engine's filter.
pub const ENGINE_SEED: [u8; 32] = *b"tierkv-bloom-seed-v1-0123456789a";

/// An all-zero seed: a pitfall worth measuring. `bloomfilter` derives its two SipHash keys from the
/// two halves of the seed, so equal halves make them equal and the k probe positions correlated; the
/// rate is then several times the target (`docs/simulations.md`).
pub const ZERO_SEED: [u8; 32] = [0u8; 32];

/// Bits per key of an optimal filter for false-positive rate `p`: `−ln p / (ln 2)²`.
pub fn bits_per_key(p: f64) -> f64 {
    -p.ln() / std::f64::consts::LN_2.powi(2)
}

/// The sizing the `bloomfilter` crate picks for `n` keys at rate `p`: bitmap bytes
/// `⌈n · bits_per_key(p) / 8⌉` and hash count `max(1, round(m/n · ln 2))`.
pub fn crate_sizing(n: u64, p: f64) -> (u64, u32) {
    let n = n.max(1);
    let bytes = (n as f64 * bits_per_key(p) / 8.0).ceil() as u64;
    let k = ((bytes as f64 * 8.0 / n as f64) * std::f64::consts::LN_2).round() as u32;
    (bytes, k.max(1))
}

/// False-positive rate of an `m`-bit filter with `k` hashes holding `n` keys: `(1 − e^{−kn/m})^k`.
pub fn fpr_formula(n: f64, m_bits: f64, k: u32) -> f64 {
    (1.0 - (-(k as f64) * n / m_bits).exp()).powi(k as i32)
}

/// One point of the growth curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrowthPoint {
    /// New keys inserted since the build, as a fraction of the keys it was sized for (an equal
    /// number deleted: the live count stays put, the filter keeps their bits).
    pub churn: f64,
    /// `(1 − e^{−k n/m})^k` with `n` = keys ever inserted.
    pub formula: f64,
    /// Measured on never-written keys with the real filter.
    pub measured: f64,
}

/// Rebuild-interval choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rebuild {
    /// Churned keys per second (inserts of new keys; each adds bits the filter keeps).
    pub churn_keys_per_sec: f64,
    /// Gets of absent keys per second (each false positive costs one SSD page read).
    pub absent_gets_per_sec: f64,
    /// Device-seconds one rebuild of the whole store costs (reading every index page sequentially).
    pub rebuild_cost_s: f64,
    /// Device-seconds one wasted page read costs.
    pub page_read_cost_s: f64,
    /// Best interval, seconds (`None`: no churn, never rebuild).
    pub best_interval_s: Option<f64>,
    /// The filter's false-positive rate when it is rebuilt at the best interval: a rebuild trigger
    /// for the engine ("rebuild when the estimated rate passes this").
    pub fpr_at_rebuild: Option<f64>,
    /// Device-seconds per second at the best interval.
    pub best_cost: Option<f64>,
    /// The engine's own trigger (`BLOOM_FPR_SLACK` × target): the interval it gives, seconds.
    pub engine_interval_s: Option<f64>,
    /// Device-seconds per second at the engine's interval.
    pub engine_cost: Option<f64>,
    /// `(interval s, device-seconds per second)` over a geometric sweep.
    pub curve: Vec<(f64, f64)>,
}

/// Everything `simulate bloom` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BloomReport {
    /// Target false-positive rate.
    pub target_fpr: f64,
    /// Keys the filter is sized for (whole store).
    pub keys: u64,
    /// Optimal bits per key.
    pub bits_per_key: f64,
    /// Hash functions.
    pub hashes: u32,
    /// DRAM for all filters, bytes.
    pub dram_bytes: f64,
    /// Keys used for the measurements (the rate depends on bits per key only, not on `keys`).
    pub sample_keys: u64,
    /// Rate measured right after the build, on never-written keys, with the engine's seed.
    pub measured_fpr: f64,
    /// Same with an all-zero seed ([`ZERO_SEED`]).
    pub measured_fpr_zero_seed: f64,
    /// The engine sizes a rebuilt filter for [`crate::model::BLOOM_HEADROOM`] × the table's keys: its
    /// rate right after a rebuild (formula, `n` keys in a filter for `headroom · n`).
    pub engine_fpr_after_rebuild: f64,
    /// Rate measured after overwriting every key once (updates add no bits).
    pub measured_fpr_after_updates: f64,
    /// Growth with inserts and deletes.
    pub growth: Vec<GrowthPoint>,
    /// Rebuild interval, when a workload and device were given.
    pub rebuild: Option<Rebuild>,
}

/// Inputs of `simulate bloom`.
#[derive(Clone, Debug)]
pub struct BloomParams {
    /// Target rate.
    pub fpr: f64,
    /// Keys (whole store).
    pub keys: u64,
    /// Keys for the measurements with the real filter.
    pub sample_keys: u64,
    /// Probes of never-written keys per measured point.
    pub probes: u64,
    /// Largest churn on the growth curve (fraction of `keys`).
    pub max_churn: f64,
    /// For the rebuild interval: churned keys per second, absent gets per second, and the device's
    /// sequential read bandwidth (bytes/s), random read service time (s), and index bytes per key.
    pub rebuild: Option<RebuildInputs>,
}

/// What the rebuild-interval model needs.
#[derive(Clone, Debug)]
pub struct RebuildInputs {
    /// New keys per second.
    pub churn_keys_per_sec: f64,
    /// Gets of absent keys per second.
    pub absent_gets_per_sec: f64,
    /// SSD sequential read bandwidth, bytes per second.
    pub seq_read_bytes_per_sec: f64,
    /// SSD random page read cost, seconds of device time (1 / IOPS).
    pub page_read_cost_s: f64,
    /// Index bytes per key (pages ÷ keys), read by a rebuild.
    pub index_bytes_per_key: f64,
}

/// A filter holding the hashes of synthetic keys `from..to` (the engine sets the key's XXH3 hash).
fn fill(bloom: &mut Bloom<u64>, from: u64, to: u64) {
    for id in from..to {
        bloom.set(&KeyHash::of(&key_for(id, 16)).0);
    }
}

/// Fraction of `probes` never-written keys the filter calls present.
fn probe(bloom: &Bloom<u64>, probes: u64) -> f64 {
    // Probe ids sit far above every id the fills use.
    let base = 1u64 << 40;
    let hits = (base..base + probes)
        .filter(|&id| bloom.check(&KeyHash::of(&key_for(id, 16)).0))
        .count();
    hits as f64 / probes.max(1) as f64
}

/// Runs the model.
pub fn simulate(p: &BloomParams) -> Result<BloomReport> {
    check_param(p.fpr > 0.0 && p.fpr < 0.5, "fpr", || {
        format!("must be in (0, 0.5), got {}", p.fpr)
    })?;
    check_param(p.keys > 0, "keys", || "must be at least 1".into())?;
    check_param(p.sample_keys >= 100, "sample_keys", || {
        "must be at least 100".into()
    })?;
    let n = p.sample_keys;
    let (bytes, k) = crate_sizing(n, p.fpr);
    let m_bits = bytes as f64 * 8.0;
    let new = |seed: &[u8; 32]| {
        Bloom::<u64>::new_for_fp_rate_with_seed(n as usize, p.fpr, seed).map_err(|e| {
            crate::Error::Param {
                name: "fpr",
                reason: e.to_string(),
            }
        })
    };
    let mut zero = new(&ZERO_SEED)?;
    fill(&mut zero, 0, n);
    let measured_fpr_zero_seed = probe(&zero, p.probes);
    drop(zero);
    let mut bloom = new(&ENGINE_SEED)?;
    debug_assert_eq!(bloom.number_of_hash_functions(), k);
    fill(&mut bloom, 0, n);
    let measured_fpr = probe(&bloom, p.probes);
    // Overwrites set the same bits again.
    fill(&mut bloom, 0, n);
    let measured_fpr_after_updates = probe(&bloom, p.probes);

    let steps = 10u64;
    let mut growth = vec![GrowthPoint {
        churn: 0.0,
        formula: fpr_formula(n as f64, m_bits, k),
        measured: measured_fpr,
    }];
    let mut inserted = n;
    for i in 1..=steps {
        let churn = p.max_churn * i as f64 / steps as f64;
        let upto = n + (churn * n as f64) as u64;
        fill(&mut bloom, inserted, upto);
        inserted = upto;
        growth.push(GrowthPoint {
            churn,
            formula: fpr_formula(inserted as f64, m_bits, k),
            measured: probe(&bloom, p.probes),
        });
    }
    let rebuild = p
        .rebuild
        .as_ref()
        .map(|r| rebuild_interval(r, p.keys, p.fpr));
    Ok(BloomReport {
        target_fpr: p.fpr,
        keys: p.keys,
        bits_per_key: bits_per_key(p.fpr),
        hashes: k,
        dram_bytes: p.keys as f64 * bits_per_key(p.fpr) / 8.0,
        sample_keys: n,
        measured_fpr,
        measured_fpr_zero_seed,
        engine_fpr_after_rebuild: {
            let (b2, k2) = crate_sizing((n as f64 * crate::model::BLOOM_HEADROOM) as u64, p.fpr);
            fpr_formula(n as f64, b2 as f64 * 8.0, k2)
        },
        measured_fpr_after_updates,
        growth,
        rebuild,
    })
}

/// The rebuild interval minimising `rebuild_cost / T + (1/T) ∫₀ᵀ absent_rate · fpr(t) · page_cost dt`
/// where `fpr(t)` is the formula with `keys + churn · t` keys in a filter sized, as the engine does,
/// for `headroom × keys` (the growth curve shows the formula tracks the real filter). Also the
/// interval the engine's own trigger gives, and its cost. Swept over 200 geometric steps from one minute
/// to ten years; the integral by Simpson's rule.
pub fn rebuild_interval(r: &RebuildInputs, keys: u64, fpr: f64) -> Rebuild {
    let n = keys.max(1) as f64;
    // A rebuilt filter is sized with the engine's headroom over the keys it holds.
    let (bytes, k) = crate_sizing((n * crate::model::BLOOM_HEADROOM) as u64, fpr);
    let m_bits = bytes as f64 * 8.0;
    let rebuild_cost_s = n * r.index_bytes_per_key / r.seq_read_bytes_per_sec;
    let rate_at = |t: f64| fpr_formula(n + r.churn_keys_per_sec * t, m_bits, k);
    let cost = |t: f64| {
        let steps = 32;
        let h = t / steps as f64;
        let mut s = rate_at(0.0) + rate_at(t);
        for i in 1..steps {
            s += rate_at(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        let mean_fpr = s * h / 3.0 / t;
        rebuild_cost_s / t + r.absent_gets_per_sec * mean_fpr * r.page_read_cost_s
    };
    let (t0, t1) = (60.0f64, 10.0 * 365.0 * 86400.0);
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let t = t0 * (t1 / t0).powf(i as f64 / 200.0);
            (t, cost(t))
        })
        .collect();
    let best = if r.churn_keys_per_sec <= 0.0 {
        None
    } else {
        curve
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|&(t, _)| t < t1)
    };
    // The engine rebuilds when the estimate passes slack × target: bisect the time that takes.
    let trigger = fpr * crate::model::BLOOM_FPR_SLACK;
    let engine_interval_s = (r.churn_keys_per_sec > 0.0 && rate_at(t1) > trigger).then(|| {
        let (mut lo, mut hi) = (0.0, t1);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if rate_at(mid) < trigger {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi.max(1.0)
    });
    Rebuild {
        churn_keys_per_sec: r.churn_keys_per_sec,
        absent_gets_per_sec: r.absent_gets_per_sec,
        rebuild_cost_s,
        page_read_cost_s: r.page_read_cost_s,
        best_interval_s: best.map(|b| b.0),
        fpr_at_rebuild: best.map(|b| rate_at(b.0)),
        best_cost: best.map(|b| b.1),
        engine_interval_s,
        engine_cost: engine_interval_s.map(cost),
        curve,
    }
}

impl BloomReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "Bloom filter for {} keys at target FPR {}\n  bits/key {:.2}, hashes {}, DRAM {}\n  measured FPR (sample {} keys): {:.5} with the engine's seed ({:.5} with an all-zero seed), {:.5} after overwriting every key\n  engine filter (sized with the engine's headroom) right after a rebuild: {:.6}\n\n  churn  formula   measured\n",
            self.keys,
            self.target_fpr,
            self.bits_per_key,
            self.hashes,
            crate::plan::human_bytes(self.dram_bytes),
            self.sample_keys,
            self.measured_fpr,
            self.measured_fpr_zero_seed,
            self.measured_fpr_after_updates,
            self.engine_fpr_after_rebuild
        );
        for g in &self.growth {
            s += &format!("  {:5.2}  {:.5}   {:.5}\n", g.churn, g.formula, g.measured);
        }
        if let Some(r) = &self.rebuild {
            s += &format!(
                "\n  rebuild: {:.0} new keys/s, {:.0} absent gets/s, one rebuild = {:.1} device-s\n",
                r.churn_keys_per_sec, r.absent_gets_per_sec, r.rebuild_cost_s
            );
            match (r.best_interval_s, r.fpr_at_rebuild) {
                (Some(t), Some(f)) => {
                    s += &format!(
                        "  best interval {} (rebuild when the estimated FPR passes {:.4})\n",
                        crate::plan::human_duration(t),
                        f
                    )
                }
                _ => s += "  no churn or no absent reads: rebuilding never pays\n",
            }
            if let (Some(t), Some(c)) = (r.engine_interval_s, r.engine_cost) {
                s += &format!(
                    "  the engine's trigger ({} × target) rebuilds every {}: {:.3e} device-s/s{}\n",
                    crate::model::BLOOM_FPR_SLACK,
                    crate::plan::human_duration(t),
                    c,
                    r.best_cost.map_or(String::new(), |b| format!(
                        " vs {b:.3e} at the best interval ({:+.1} %)",
                        (c / b - 1.0) * 100.0
                    ))
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_one_percent() {
        assert!((bits_per_key(0.01) - 9.585).abs() < 0.001);
        assert_eq!(format!("{:.2}", bits_per_key(0.01)), "9.59");
        assert_eq!(crate_sizing(1_000_000, 0.01).1, 7);
        let b = Bloom::<u64>::new_for_fp_rate_with_seed(1_000_000, 0.01, &[0u8; 32]).unwrap();
        assert_eq!(b.number_of_hash_functions(), 7);
        assert_eq!(b.len(), crate_sizing(1_000_000, 0.01).0 * 8);
    }

    #[test]
    fn measured_rate_tracks_formula_and_grows_with_churn() {
        let r = simulate(&BloomParams {
            fpr: 0.01,
            keys: 1_000_000,
            sample_keys: 20_000,
            probes: 50_000,
            max_churn: 1.0,
            rebuild: None,
        })
        .unwrap();
        assert!((r.measured_fpr - 0.01).abs() < 0.003, "{}", r.measured_fpr);
        assert_eq!(r.measured_fpr, r.measured_fpr_after_updates);
        // Equal seed halves: correlated probes, measured ≈ 3.6× the target.
        assert!(
            r.measured_fpr_zero_seed > 2.0 * r.measured_fpr,
            "{}",
            r.measured_fpr_zero_seed
        );
        // The engine's headroom: more bits per key right after a rebuild (1.5×: 14.4 bits, ~0.13 %).
        assert!(
            r.engine_fpr_after_rebuild > 0.0 && r.engine_fpr_after_rebuild < 0.5 * r.measured_fpr,
            "{}",
            r.engine_fpr_after_rebuild
        );
        let last = r.growth.last().unwrap();
        // Twice the keys in a filter sized for one: (1 − e^{−14/9.59})^7 ≈ 0.16.
        assert!(last.formula > 0.1 && last.formula < 0.2, "{}", last.formula);
        assert!((last.measured - last.formula).abs() / last.formula < 0.1);
        for g in &r.growth {
            assert!(
                (g.measured - g.formula).abs() < 0.003 + 0.1 * g.formula,
                "{g:?}"
            );
        }
    }

    #[test]
    fn rebuild_interval_balances_costs() {
        let inputs = RebuildInputs {
            churn_keys_per_sec: 100.0,
            absent_gets_per_sec: 10_000.0,
            seq_read_bytes_per_sec: 1e9,
            page_read_cost_s: 1e-5,
            index_bytes_per_key: 60.0,
        };
        let r = rebuild_interval(&inputs, 10_000_000, 0.01);
        let t = r.best_interval_s.unwrap();
        // More churn ⇒ rebuild sooner; costlier rebuilds ⇒ later.
        let faster = rebuild_interval(
            &RebuildInputs {
                churn_keys_per_sec: 1000.0,
                ..inputs.clone()
            },
            10_000_000,
            0.01,
        );
        assert!(faster.best_interval_s.unwrap() < t);
        let none = rebuild_interval(
            &RebuildInputs {
                churn_keys_per_sec: 0.0,
                ..inputs
            },
            10_000_000,
            0.01,
        );
        assert!(none.best_interval_s.is_none());
        assert!(none.engine_interval_s.is_none());
        // The best trigger lies above the rate of a fresh filter (sized with headroom).
        let (b0, k0) = crate_sizing(15_000_000, 0.01);
        assert!(r.fpr_at_rebuild.unwrap() > fpr_formula(1e7, b0 as f64 * 8.0, k0));
        // The best interval costs no more than the engine's fixed trigger (it is one of the options
        // the sweep could have picked, up to the sweep's grid).
        let (e, b) = (r.engine_cost.unwrap(), r.best_cost.unwrap());
        assert!(b <= e * 1.001, "best {b} engine {e}");
        // The engine's trigger is reached when the formula passes 1.2 × target.
        let t_e = r.engine_interval_s.unwrap();
        let (bytes, k) = crate_sizing(15_000_000, 0.01);
        let at = fpr_formula(10_000_000.0 + 100.0 * t_e, bytes as f64 * 8.0, k);
        assert!((at - 0.012).abs() < 1e-6, "{at}");
    }

    #[test]
    fn bad_params_are_refused() {
        let p = BloomParams {
            fpr: 0.7,
            keys: 10,
            sample_keys: 1000,
            probes: 10,
            max_churn: 1.0,
            rebuild: None,
        };
        assert!(simulate(&p).unwrap_err().to_string().contains("fpr"));
    }
}
