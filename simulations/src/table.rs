//! `simulate table`: the map parameters. Probe lengths of the DRAM log table vs its load (measured with
//! the engine's own `RobinHoodTable`), overflow of the 4 KiB global-table buckets vs entries per page
//! and load (Poisson and Monte Carlo with the engine's hash), and the index write amplification of a
//! flush vs the log-to-table size ratio.

use serde::Serialize;
use tierkv::hash::KeyHash;
use tierkv::log_table::RobinHoodTable;

use crate::error::{check_param, Result};
use crate::model::{self, PAGE_SIZE};
use crate::workload::key_for;

/// Probe lengths at one load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbePoint {
    /// Entries ÷ slots.
    pub load: f64,
    /// Measured mean distance from the home slot.
    pub mean_probe: f64,
    /// Linear-probing mean displacement `α / (2(1 − α))` (Knuth); Robin Hood keeps the mean and
    /// shrinks the variance.
    pub formula_mean: f64,
    /// Measured longest distance.
    pub max_probe: usize,
}

/// Measures the engine's Robin Hood table at each load with `slots` slots (a power of two).
pub fn probe_curve(slots: usize, loads: &[f64]) -> Vec<ProbePoint> {
    let slots = slots.next_power_of_two().max(16);
    loads
        .iter()
        .map(|&load| {
            // Sized to hold 97 % of `slots` at max load 0.98: exactly `slots` slots, never grows.
            let mut t =
                RobinHoodTable::with_capacity_and_load((slots as f64 * 0.97) as usize - 1, 0.98);
            debug_assert_eq!(t.capacity(), slots);
            let n = (load * slots as f64) as u64;
            for id in 0..n {
                t.insert(KeyHash::of(&key_for(id, 16)).0, id, |v| v == id);
            }
            let ps = t.probe_stats();
            ProbePoint {
                load: ps.load_factor,
                mean_probe: ps.mean_probe,
                formula_mean: ps.load_factor / (2.0 * (1.0 - ps.load_factor)),
                max_probe: ps.max_probe,
            }
        })
        .collect()
}

/// Overflow figures of a bucket holding Poisson(λ) entries with room for `c` per page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overflow {
    /// `P(X > c)`: a bucket needs an overflow page.
    pub p_overflow: f64,
    /// `E[⌈(X − c)/c⌉⁺]`: overflow pages per bucket.
    pub overflow_pages_per_bucket: f64,
    /// `E[(X − c)⁺] / λ`: fraction of entries on overflow pages (a present-key get reads a second
    /// page for these).
    pub entries_in_overflow: f64,
}

/// The Poisson model of bucket overflow: `n` keys over `B` buckets gives `X ~ Poisson(λ = n/B)`.
pub fn poisson_overflow(lambda: f64, c: u64) -> Overflow {
    let c = c.max(1);
    let top = (lambda + 12.0 * lambda.sqrt() + 3.0 * c as f64 + 20.0) as u64;
    // pmf by the recurrence p(i) = p(i−1) λ / i, in log space for large λ.
    let mut log_p = -lambda;
    let (mut p_le_c, mut pages, mut excess) = (0.0, 0.0, 0.0);
    for i in 0..=top {
        if i > 0 {
            log_p += lambda.ln() - (i as f64).ln();
        }
        let p = log_p.exp();
        if i <= c {
            p_le_c += p;
        } else {
            let over = (i - c) as f64;
            pages += p * (over / c as f64).ceil();
            excess += p * over;
        }
    }
    Overflow {
        p_overflow: (1.0 - p_le_c).max(0.0),
        overflow_pages_per_bucket: pages,
        entries_in_overflow: if lambda > 0.0 { excess / lambda } else { 0.0 },
    }
}

/// One point of the overflow sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverflowPoint {
    /// Entries a page holds.
    pub entries_per_page: u64,
    /// Table load (mean entries per bucket ÷ entries per page).
    pub load: f64,
    /// Poisson model.
    pub poisson: Overflow,
    /// Monte Carlo with the engine's hash and bucket selector.
    pub monte_carlo: Overflow,
}

/// Monte Carlo: `load · c · buckets` synthetic keys into `buckets` buckets by the engine's
/// `KeyHash::bucket`; hashes computed once and shared by all points.
pub fn overflow_sweep(per_page: &[u64], loads: &[f64], buckets: u32) -> Vec<OverflowPoint> {
    let buckets = buckets.max(1) as usize;
    let max_c = per_page.iter().copied().max().unwrap_or(1);
    let max_load = loads.iter().copied().fold(0.0, f64::max);
    let n_max = (max_load * max_c as f64 * buckets as f64).ceil() as u64;
    let bucket_of: Vec<u32> = (0..n_max)
        .map(|id| KeyHash::of(&key_for(id, 16)).bucket(buckets as u32))
        .collect();
    let mut out = Vec::new();
    let mut counts = vec![0u64; buckets];
    for &c in per_page {
        for &load in loads {
            let n = (load * c as f64 * buckets as f64) as usize;
            counts.iter_mut().for_each(|x| *x = 0);
            for &b in &bucket_of[..n] {
                counts[b as usize] += 1;
            }
            let (mut over, mut pages, mut excess) = (0u64, 0u64, 0u64);
            for &x in &counts {
                if x > c {
                    over += 1;
                    pages += (x - c).div_ceil(c);
                    excess += x - c;
                }
            }
            out.push(OverflowPoint {
                entries_per_page: c,
                load,
                poisson: poisson_overflow(n as f64 / buckets as f64, c),
                monte_carlo: Overflow {
                    p_overflow: over as f64 / buckets as f64,
                    overflow_pages_per_bucket: pages as f64 / buckets as f64,
                    entries_in_overflow: excess as f64 / n.max(1) as f64,
                },
            });
        }
    }
    out
}

/// Index write amplification at one log-to-table size ratio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WaPoint {
    /// Log bytes ÷ global-table bytes (per shard).
    pub log_to_table: f64,
    /// Index bytes written per user byte, model: `B (1 − e^{−D/B}) · 4096 / (D · (k + v))`.
    pub index_wa: f64,
    /// Same, touched buckets counted by hashing `D` keys with the engine's hash (small tables only).
    pub monte_carlo: Option<f64>,
}

/// Index WA of a flush of `D` distinct new keys (each log record a new key: the worst case for
/// the index) into a table of `B` buckets, swept over log/table ratios.
pub fn wa_sweep(
    key_bytes: f64,
    value_bytes: f64,
    buckets: u32,
    ratios: &[f64],
    mc: bool,
) -> Vec<WaPoint> {
    let b = buckets.max(1) as f64;
    let table_bytes = b * PAGE_SIZE;
    let rec = model::log_record_bytes(key_bytes, value_bytes);
    ratios
        .iter()
        .map(|&r| {
            let d = (r * table_bytes / rec).max(1.0);
            let touched = b * (1.0 - (-d / b).exp());
            let monte_carlo = (mc && d <= 5e6).then(|| {
                let mut seen = vec![false; b as usize];
                let mut t = 0u64;
                for id in 0..d as u64 {
                    let k = KeyHash::of(&key_for(id + (1 << 32), 16)).bucket(buckets) as usize;
                    if !seen[k] {
                        seen[k] = true;
                        t += 1;
                    }
                }
                t as f64 * PAGE_SIZE / (d.floor() * (key_bytes + value_bytes))
            });
            WaPoint {
                log_to_table: r,
                index_wa: touched * PAGE_SIZE / (d * (key_bytes + value_bytes)),
                monte_carlo,
            }
        })
        .collect()
}

/// Inputs of `simulate table`.
#[derive(Clone, Debug)]
pub struct TableParams {
    /// Slots of the Robin Hood table measured.
    pub rh_slots: usize,
    /// Buckets (log2) for the overflow Monte Carlo.
    pub mc_bucket_bits: u32,
    /// Mean key and value size (entries per page and index WA).
    pub key_bytes: f64,
    /// Mean value size.
    pub value_bytes: f64,
    /// The table's rebuild threshold (`table_max_load`).
    pub table_max_load: f64,
}

/// Everything `simulate table` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableReport {
    /// Robin Hood probe lengths.
    pub probes: Vec<ProbePoint>,
    /// Entries per page for this workload's keys.
    pub entries_per_page: u64,
    /// Overflow sweep (several page capacities including this workload's).
    pub overflow: Vec<OverflowPoint>,
    /// Overflow at the load the table averages between rebuilds: keys grow at a steady rate from
    /// 2/3 of the threshold (just after a rebuild) to the threshold, so the time-averaged load is 5/6
    /// of it.
    pub at_mean_load: Overflow,
    /// Overflow at the rebuild threshold (worst case).
    pub at_max_load: Overflow,
    /// Page reads of a present-key get, at the threshold: `1 + entries_in_overflow`.
    pub page_reads_per_get: f64,
    /// Index WA vs log/table ratio.
    pub index_wa: Vec<WaPoint>,
}

/// Runs the model.
pub fn simulate(p: &TableParams) -> Result<TableReport> {
    check_param(p.rh_slots >= 64, "rh_slots", || {
        "must be at least 64".into()
    })?;
    check_param(
        (4..=24).contains(&p.mc_bucket_bits),
        "mc_bucket_bits",
        || "must be in 4..=24".into(),
    )?;
    check_param(
        p.table_max_load > 0.1 && p.table_max_load <= 1.0,
        "table_max_load",
        || format!("must be in (0.1, 1], got {}", p.table_max_load),
    )?;
    let loads: Vec<f64> = (10..=19).map(|i| i as f64 * 0.05).chain([0.97]).collect();
    let probes = probe_curve(p.rh_slots, &loads);
    let c = model::entries_per_page(model::entry_bytes(p.key_bytes, false)) as u64;
    let mut caps = vec![8, 16, 32, 64, 128];
    if !caps.contains(&c) {
        caps.push(c);
        caps.sort_unstable();
    }
    let oloads: Vec<f64> = (6..=20).map(|i| i as f64 * 0.05).collect();
    let overflow = overflow_sweep(&caps, &oloads, 1 << p.mc_bucket_bits);
    let mean_load = model::mean_load(p.table_max_load);
    let at_mean_load = poisson_overflow(mean_load * c as f64, c);
    let at_max_load = poisson_overflow(p.table_max_load * c as f64, c);
    let ratios: Vec<f64> = (0..=16)
        .map(|i| 10f64.powf(-3.0 + i as f64 * 0.25))
        .collect();
    let index_wa = wa_sweep(p.key_bytes, p.value_bytes, 1 << 14, &ratios, true);
    Ok(TableReport {
        probes,
        entries_per_page: c,
        overflow,
        page_reads_per_get: 1.0 + at_max_load.entries_in_overflow,
        at_mean_load,
        at_max_load,
        index_wa,
    })
}

impl TableReport {
    /// Human-readable tables.
    pub fn table(&self) -> String {
        let mut s = String::from("Log table (Robin Hood, engine's own) probe length vs load\n  load   mean   formula  max\n");
        for p in &self.probes {
            s += &format!(
                "  {:.2}  {:6.2}  {:6.2}  {:4}\n",
                p.load, p.mean_probe, p.formula_mean, p.max_probe
            );
        }
        s += &format!(
            "\nGlobal table: {} entries per 4 KiB page for this key size\n  at mean load: P(overflow) {:.2e}, overflow pages/bucket {:.2e}\n  at max load:  P(overflow) {:.2e}, entries on overflow pages {:.2e}, page reads per present get {:.4}\n",
            self.entries_per_page,
            self.at_mean_load.p_overflow,
            self.at_mean_load.overflow_pages_per_bucket,
            self.at_max_load.p_overflow,
            self.at_max_load.entries_in_overflow,
            self.page_reads_per_get
        );
        s += "\n  per-page  load   P(ovf) Poisson  P(ovf) MC\n";
        for o in self
            .overflow
            .iter()
            .filter(|o| (o.load * 20.0).round() as u32 % 2 == 0)
        {
            s += &format!(
                "  {:8}  {:.2}  {:14.3e}  {:9.3e}\n",
                o.entries_per_page, o.load, o.poisson.p_overflow, o.monte_carlo.p_overflow
            );
        }
        s += "\nIndex write amplification vs log/table size ratio (new keys)\n  ratio     WA model   WA MC\n";
        for w in &self.index_wa {
            s += &format!(
                "  {:8.4}  {:9.4}  {}\n",
                w.log_to_table,
                w.index_wa,
                w.monte_carlo.map_or("-".into(), |m| format!("{m:.4}"))
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tails_known_answers() {
        // Poisson(10): P(X ≤ 15) = 0.95126, P(X ≤ 10) = 0.58304 (standard tables).
        assert!((poisson_overflow(10.0, 15).p_overflow - (1.0 - 0.95126)).abs() < 1e-4);
        assert!((poisson_overflow(10.0, 10).p_overflow - (1.0 - 0.58304)).abs() < 1e-4);
        // Poisson(1): P(X > 1) = 1 − 2/e.
        assert!(
            (poisson_overflow(1.0, 1).p_overflow - (1.0 - 2.0 / std::f64::consts::E)).abs() < 1e-12
        );
        // Large λ stays finite and sane.
        let o = poisson_overflow(85.0, 113);
        assert!(o.p_overflow > 0.0 && o.p_overflow < 0.01, "{o:?}");
    }

    #[test]
    fn monte_carlo_agrees_with_poisson() {
        let pts = overflow_sweep(&[16], &[0.6, 0.9], 4096);
        for p in pts {
            let (a, b) = (p.poisson.p_overflow, p.monte_carlo.p_overflow);
            // 4096 buckets: binomial noise ≈ sqrt(a/4096).
            assert!((a - b).abs() < 4.0 * (a / 4096.0).sqrt() + 1e-3, "{p:?}");
        }
    }

    #[test]
    fn robin_hood_mean_matches_linear_probing() {
        let pts = probe_curve(1 << 14, &[0.5, 0.9]);
        for p in &pts {
            assert!(
                (p.mean_probe - p.formula_mean).abs() / p.formula_mean < 0.15,
                "{p:?}"
            );
        }
        assert!(pts[1].max_probe > pts[0].max_probe);
    }

    #[test]
    fn index_wa_model_matches_hashing() {
        let pts = wa_sweep(24.0, 1000.0, 1024, &[0.01, 0.1, 1.0], true);
        for p in &pts {
            let mc = p.monte_carlo.unwrap();
            assert!((p.index_wa - mc).abs() / mc < 0.1, "{p:?}");
        }
        // Small logs rewrite a whole page per key: WA ≈ 4096 / (k + v).
        assert!((pts[0].index_wa - 4096.0 / 1024.0).abs() < 0.2);
        assert!(pts[2].index_wa < pts[0].index_wa);
    }
}
