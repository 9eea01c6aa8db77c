//! `simulate lifetime`: how fast the SSDs wear and how hard the HDDs work. SSD bytes written per day =
//! user bytes × the engine's write amplification on each SSD tier (log, index, hot, checkpoints) × the
//! drive's internal write amplification at its fill level (random page writes only; the log is
//! written sequentially and trimmed) → DWPD used → years until the rated endurance; plus failure
//! rates for the fleet and the HDDs' sequential and random load.

use serde::Serialize;

use crate::device::DeviceProfile;
use crate::error::Result;
use crate::model::{EngineConfig, TierWa};
use crate::ratio::{self, Sizing, Targets};
use crate::workload::Workload;

/// SSD wear of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SsdWear {
    /// User bytes written per day (whole store).
    pub user_bytes_per_day: f64,
    /// Engine WA per tier.
    pub engine_wa: TierWa,
    /// Index bytes per day from table rebuilds as the key count grows, whole store.
    pub growth_bytes_per_day: f64,
    /// Fill of each SSD (used ÷ capacity).
    pub fill: f64,
    /// Internal WA of the drive at that fill (applied to index and hot pages).
    pub internal_wa: f64,
    /// Flash bytes written per day per SSD.
    pub bytes_per_day_per_ssd: f64,
    /// Drive writes per day used.
    pub dwpd_used: f64,
    /// The drive's rated DWPD.
    pub dwpd_rated: f64,
    /// Years until the rated endurance is used up.
    pub years_to_wear_out: f64,
    /// SSDs in the fleet.
    pub ssds: u32,
    /// Expected SSD replacements per year in the fleet: random failures (AFR) plus wear-out.
    pub replacements_per_year: f64,
}

/// The wear model: `bytes/day/SSD = (user × (log + meta) + (user × (index + hot) + growth) × internal
/// WA) / ssds`; `years = rated bytes / (bytes/day × 365)`.
pub fn ssd_wear(
    ssd: &DeviceProfile,
    ssds: u32,
    user_bytes_per_day: f64,
    wa: &TierWa,
    growth_bytes_per_day: f64,
    used_bytes: f64,
) -> SsdWear {
    let ssds = ssds.max(1);
    let fill = used_bytes / (ssds as f64 * ssd.capacity_bytes());
    let internal = ssd.internal_wa(fill);
    let sequential = user_bytes_per_day * (wa.log + wa.meta);
    let random = (user_bytes_per_day * (wa.index + wa.hot) + growth_bytes_per_day) * internal;
    let per_ssd = (sequential + random) / ssds as f64;
    let years = if per_ssd > 0.0 {
        ssd.rated_bytes_written() / (per_ssd * 365.0)
    } else {
        f64::INFINITY
    };
    let wear_rate = if years.is_finite() { 1.0 / years } else { 0.0 };
    SsdWear {
        user_bytes_per_day,
        engine_wa: wa.clone(),
        growth_bytes_per_day,
        fill,
        internal_wa: internal,
        bytes_per_day_per_ssd: per_ssd,
        dwpd_used: per_ssd / ssd.capacity_bytes(),
        dwpd_rated: ssd.rated_dwpd(),
        years_to_wear_out: years,
        ssds,
        replacements_per_year: ssds as f64 * (ssd.annual_failure_rate + wear_rate),
    }
}

/// HDD load of one configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HddLoad {
    /// HDDs in the fleet.
    pub hdds: u32,
    /// Sequential data-file writes per HDD, bytes/s.
    pub seq_write_bytes_per_sec: f64,
    /// Random value reads per HDD per second.
    pub random_reads_per_sec: f64,
    /// Busy fraction: reads × QD1 service time + writes ÷ bandwidth.
    pub utilisation: f64,
    /// Mean random-read response time, M/M/c on the drive's time left by streaming, seconds;
    /// infinite when saturated.
    pub read_response_s: f64,
    /// TB read and written per HDD per year.
    pub workload_tb_per_year: f64,
    /// The rated workload, TB/year (if the profile gives one).
    pub rated_workload_tb_per_year: Option<f64>,
    /// Fill of each HDD.
    pub fill: f64,
    /// Expected HDD failures per year in the fleet.
    pub failures_per_year: f64,
}

/// The HDD load model.
pub fn hdd_load(
    hdd: &DeviceProfile,
    hdds: u32,
    data_write_bytes_per_sec: f64,
    random_reads_per_sec: f64,
    read_bytes: f64,
    used_bytes: f64,
) -> HddLoad {
    let n = hdds.max(1) as f64;
    let w = data_write_bytes_per_sec / n;
    let r = random_reads_per_sec / n;
    // Utilisation from the datasheet's random IOPS (queued) plus streaming time; reads see a drive
    // slowed by the streaming share of its time.
    let write_share = w / (hdd.seq_write_mb_s * 1e6);
    let rho = r / hdd.random_read_iops + write_share;
    HddLoad {
        hdds: hdds.max(1),
        seq_write_bytes_per_sec: w,
        random_reads_per_sec: r,
        utilisation: rho,
        read_response_s: if write_share < 1.0 {
            hdd.read_response_s(r / (1.0 - write_share))
        } else {
            f64::INFINITY
        },
        workload_tb_per_year: (w + r * read_bytes) * 86400.0 * 365.0 / 1e12,
        rated_workload_tb_per_year: hdd.endurance.workload_tb_per_year,
        fill: used_bytes / (n * hdd.capacity_bytes()),
        failures_per_year: n * hdd.annual_failure_rate,
    }
}

impl SsdWear {
    /// Human-readable table.
    pub fn table(&self) -> String {
        use crate::plan::human_bytes as hb;
        let w = &self.engine_wa;
        format!(
            "SSD wear ({} SSDs, fill {:.0} %)\n  user writes/day        {}\n  engine WA  log {:.3}  index {:.3}  hot {:.3}  checkpoints {:.3}  (total {:.3})\n  table growth/day       {}\n  internal WA at fill    {:.2}\n  flash writes/day/SSD   {}\n  DWPD used / rated      {:.3} / {:.3}\n  years to wear-out      {:.1}\n  replacements/year      {:.2} (AFR + wear-out)\n",
            self.ssds,
            self.fill * 100.0,
            hb(self.user_bytes_per_day),
            w.log,
            w.index,
            w.hot,
            w.meta,
            w.ssd(),
            hb(self.growth_bytes_per_day),
            self.internal_wa,
            hb(self.bytes_per_day_per_ssd),
            self.dwpd_used,
            self.dwpd_rated,
            self.years_to_wear_out,
            self.replacements_per_year
        )
    }
}

impl HddLoad {
    /// Human-readable table.
    pub fn table(&self) -> String {
        format!(
            "HDD load ({} HDDs, fill {:.0} %)\n  sequential writes/HDD  {:.1} MB/s\n  random reads/HDD       {:.1}/s\n  utilisation            {:.0} %\n  mean read response     {:.1} ms\n  workload/HDD/year      {:.0} TB (rated {})\n  failures/year          {:.2}\n",
            self.hdds,
            self.fill * 100.0,
            self.seq_write_bytes_per_sec / 1e6,
            self.random_reads_per_sec,
            self.utilisation * 100.0,
            self.read_response_s * 1e3,
            self.workload_tb_per_year,
            self.rated_workload_tb_per_year.map_or("-".into(), |r| format!("{r:.0} TB")),
            self.failures_per_year
        )
    }
}

/// Everything `simulate lifetime` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifetimeReport {
    /// The configuration evaluated (hot set and drive counts).
    pub sizing: Sizing,
    /// SSD wear with the chosen counts.
    pub ssd: SsdWear,
    /// HDD load with the chosen counts.
    pub hdd: HddLoad,
    /// `(SSD fill, years to wear-out)` for the chosen SSD count as the fill varies (the main curve:
    /// internal WA grows with fill).
    pub curve: Vec<(f64, f64)>,
}

/// What the operator fixes instead of letting `simulate ratio` choose.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Fraction of keys in the hot file.
    pub hot_fraction: Option<f64>,
    /// SSD count.
    pub ssds: Option<u32>,
    /// HDD count.
    pub hdds: Option<u32>,
}

/// Evaluates the configuration with the overridden hot fraction (default: the cheapest, from
/// `simulate ratio`), then applies the overridden drive counts.
pub fn simulate(
    w: &Workload,
    ssd: &DeviceProfile,
    hdd: &DeviceProfile,
    cfg: &EngineConfig,
    t: &Targets,
    o: &Overrides,
) -> Result<LifetimeReport> {
    let (ssds, hdds) = (o.ssds, o.hdds);
    let sizing = match o.hot_fraction {
        Some(h) => ratio::evaluate(w, ssd, hdd, cfg, t, h),
        None => ratio::simulate(w, ssd, hdd, cfg, t)?.best,
    };
    let n_ssd = ssds.unwrap_or(sizing.ssds).max(1);
    let n_hdd = hdds.unwrap_or(sizing.hdds).max(1);
    let user = w.user_write_bytes_per_sec() * 86400.0;
    let growth = sizing.wear.growth_bytes_per_day;
    let wear = ssd_wear(ssd, n_ssd, user, &sizing.wa, growth, sizing.ssd_bytes.total);
    let hdd_l = hdd_load(
        hdd,
        n_hdd,
        w.user_write_bytes_per_sec() * sizing.wa.data,
        sizing.gets.hdd_reads_per_sec,
        w.value_bytes + crate::model::DATA_HEADER,
        sizing.hdd_bytes,
    );
    let cap = n_ssd as f64 * ssd.capacity_bytes();
    let curve = (1..=19)
        .map(|i| {
            let fill = i as f64 * 0.05;
            (
                fill,
                ssd_wear(ssd, n_ssd, user, &sizing.wa, growth, fill * cap).years_to_wear_out,
            )
        })
        .collect();
    Ok(LifetimeReport {
        sizing,
        ssd: wear,
        hdd: hdd_l,
        curve,
    })
}

impl LifetimeReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = self.ssd.table();
        s += "
";
        s += &self.hdd.table();
        s += "
  SSD fill  years to wear-out
";
        for (f, y) in &self.curve {
            s += &format!("  {:7.2}  {:8.2}\n", f, y);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tests::{toy_hdd, toy_ssd};

    #[test]
    fn lifetime_computed_by_hand() {
        // 1 TB drive rated 600 TBW. 100 GB/day of user writes; log WA 1.0, index WA 0.5, nothing
        // else. Fill 0.9 with no over-provisioning: internal WA = 1 / (2 × 0.1) = 5 on the index.
        // Flash writes/day = 100 GB × 1.0 + 100 GB × 0.5 × 5 = 350 GB; DWPD 0.35;
        // years = 600 TB / (350 GB × 365) = 4.697.
        let wa = TierWa {
            log: 1.0,
            index: 0.5,
            hot: 0.0,
            data: 1.0,
            meta: 0.0,
        };
        let w = ssd_wear(&toy_ssd(), 1, 100e9, &wa, 0.0, 900e9);
        assert!((w.internal_wa - 5.0).abs() < 1e-9);
        assert!((w.bytes_per_day_per_ssd - 350e9).abs() < 1.0);
        assert!((w.dwpd_used - 0.35).abs() < 1e-12);
        assert!((w.years_to_wear_out - 600e12 / (350e9 * 365.0)).abs() < 1e-9);
        assert!((w.years_to_wear_out - 4.697).abs() < 0.001);
        // Two drives halve the per-drive load and the fill.
        let w2 = ssd_wear(&toy_ssd(), 2, 100e9, &wa, 0.0, 900e9);
        assert!(w2.years_to_wear_out > 2.0 * w.years_to_wear_out);
    }

    #[test]
    fn hdd_load_by_hand() {
        // 2 HDDs, 100 reads/s and 20 MB/s of appends in total: each does 50 reads/s (0.25 of 200
        // IOPS) and 10 MB/s (0.05 of 200 MB/s): ρ = 0.3. Reads see 50 / 0.95 reads/s on 2 servers.
        let h = hdd_load(&toy_hdd(), 2, 20e6, 100.0, 1000.0, 1e12);
        assert!((h.utilisation - 0.3).abs() < 1e-12);
        assert!((h.read_response_s - toy_hdd().read_response_s(50.0 / 0.95)).abs() < 1e-15);
        assert!((h.failures_per_year - 0.02).abs() < 1e-12);
    }
}
