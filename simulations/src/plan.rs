//! `simulate plan`: every model for one workload and one SSD/HDD pair, a recommended engine and
//! hardware configuration, and a report (Markdown + SVG plots) written to a folder. Also the small
//! formatting helpers the reports share.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::bloom::{self, BloomParams, BloomReport, RebuildInputs};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::model::EngineConfig;
use crate::ratio::{self, RatioReport, Targets};
use crate::shards::{self, ShardParams, ShardReport};
use crate::svg::{Chart, Series};
use crate::table::{self, TableParams, TableReport};
use crate::workload::Workload;

/// `1.5 GiB`-style sizes.
pub fn human_bytes(b: f64) -> String {
    if !b.is_finite() {
        return format!("{b}");
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `3.2 h`-style durations.
pub fn human_duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 2.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 730.0 * 86400.0 {
        format!("{:.1} days", s / 86400.0)
    } else {
        format!("{:.1} years", s / (365.0 * 86400.0))
    }
}

/// Inputs of `simulate plan`.
#[derive(Clone, Debug)]
pub struct PlanParams {
    /// Threads that should work on distinct shards.
    pub threads: u32,
    /// Service targets.
    pub targets: Targets,
    /// Engine settings other than the shard count (log capacity, table load, Bloom target).
    pub base: EngineConfig,
    /// Keys per Monte Carlo trial (shards) and per Bloom measurement.
    pub mc_keys: u64,
}

impl Default for PlanParams {
    fn default() -> Self {
        PlanParams {
            threads: 8,
            targets: Targets::default(),
            base: EngineConfig::default(),
            mc_keys: 200_000,
        }
    }
}

/// The recommended configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommended {
    /// `Options::shards`.
    pub shards: u32,
    /// `Options::log_capacity_bytes`.
    pub log_capacity_bytes: u64,
    /// `Options::table_max_load`.
    pub table_max_load: f64,
    /// `Options::bloom_fpr`.
    pub bloom_fpr: f64,
    /// Bloom bits per key and hashes.
    pub bloom_bits_per_key: f64,
    /// Hash functions.
    pub bloom_hashes: u32,
    /// Rebuild the filter when its estimated rate passes this (`None`: never needed).
    pub bloom_rebuild_fpr: Option<f64>,
    /// Equivalent interval at the workload's rate, seconds.
    pub bloom_rebuild_interval_s: Option<f64>,
    /// `Options::hot_capacity_bytes` (per shard).
    pub hot_capacity_bytes: u64,
    /// Fraction of keys the hot file holds.
    pub hot_fraction: f64,
    /// SSD model and count.
    pub ssd_model: String,
    /// SSDs.
    pub ssds: u32,
    /// HDD model.
    pub hdd_model: String,
    /// HDDs.
    pub hdds: u32,
    /// Installed SSD ÷ HDD capacity.
    pub ssd_hdd_capacity_ratio: f64,
    /// Hardware cost, dollars.
    pub cost: f64,
    /// Years until the SSDs wear out.
    pub ssd_years_to_wear_out: f64,
    /// DRAM for filters, page maps and log tables.
    pub dram_bytes: f64,
    /// The same store if the hot file serves nothing — where the engine's current append-only,
    /// never-evicting hot file ends up once it is full (`docs/simulations.md`, gaps): HDDs and cost.
    pub without_hot_hdds: u32,
    /// Cost of that configuration, dollars.
    pub without_hot_cost: f64,
}

/// Everything `simulate plan` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The workload as modelled.
    pub workload: Workload,
    /// The recommendation.
    pub recommended: Recommended,
    /// Shard sweep.
    pub shards: ShardReport,
    /// SSD/HDD sizing (the best configuration includes wear and HDD load).
    pub ratio: RatioReport,
    /// Bloom filter.
    pub bloom: BloomReport,
    /// Map parameters.
    pub table: TableReport,
    /// Wall time of the plan, seconds.
    pub elapsed_s: f64,
}

/// Runs every model.
pub fn plan(
    w: &Workload,
    ssd: &DeviceProfile,
    hdd: &DeviceProfile,
    p: &PlanParams,
) -> Result<Plan> {
    let start = std::time::Instant::now();
    let shard_report = shards::simulate(
        w,
        &ShardParams {
            config: p.base.clone(),
            threads: p.threads,
            mc_keys: p.mc_keys.max(1000),
            mc_trials: 2,
            max_shards: 1 << 14,
            ..ShardParams::default()
        },
    )?;
    let cfg = EngineConfig {
        shards: shard_report.recommended,
        ..p.base.clone()
    };
    let ratio_report = ratio::simulate(w, ssd, hdd, &cfg, &p.targets)?;
    let best = &ratio_report.best;
    let n = w.keys.max(1) as f64;
    let bloom_report = bloom::simulate(&BloomParams {
        fpr: cfg.bloom_fpr,
        keys: w.keys.max(1),
        sample_keys: p.mc_keys.clamp(1000, 200_000),
        probes: p.mc_keys.clamp(1000, 200_000),
        max_churn: 1.0,
        rebuild: Some(RebuildInputs {
            churn_keys_per_sec: w.new_keys_per_sec(),
            absent_gets_per_sec: w.gets_per_sec() * w.missing_fraction,
            seq_read_bytes_per_sec: ssd.seq_read_mb_s * 1e6,
            page_read_cost_s: 1.0 / ssd.random_read_iops,
            index_bytes_per_key: best.ssd_bytes.index / n,
        }),
    })?;
    let table_report = table::simulate(&TableParams {
        rh_slots: 1 << 16,
        mc_bucket_bits: 12,
        key_bytes: w.key_bytes,
        value_bytes: w.value_bytes,
        table_max_load: cfg.table_max_load,
    })?;
    let rec_shard = &shard_report.points[shard_report.recommended.trailing_zeros() as usize];
    let cold = ratio::evaluate(w, ssd, hdd, &cfg, &p.targets, 0.0);
    let rebuild = bloom_report.rebuild.as_ref();
    let recommended = Recommended {
        shards: cfg.shards,
        log_capacity_bytes: cfg.log_capacity_bytes as u64,
        table_max_load: cfg.table_max_load,
        bloom_fpr: cfg.bloom_fpr,
        bloom_bits_per_key: bloom_report.bits_per_key,
        bloom_hashes: bloom_report.hashes,
        bloom_rebuild_fpr: rebuild.and_then(|r| r.fpr_at_rebuild),
        bloom_rebuild_interval_s: rebuild.and_then(|r| r.best_interval_s),
        hot_capacity_bytes: (best.ssd_bytes.hot / cfg.shards as f64).ceil() as u64,
        hot_fraction: best.hot_fraction,
        ssd_model: ssd.model.clone(),
        ssds: best.ssds,
        hdd_model: hdd.model.clone(),
        hdds: best.hdds,
        ssd_hdd_capacity_ratio: best.ssd_hdd_capacity_ratio,
        cost: best.cost,
        ssd_years_to_wear_out: best.wear.years_to_wear_out,
        dram_bytes: rec_shard.dram_total,
        without_hot_hdds: cold.hdds,
        without_hot_cost: cold.cost,
    };
    Ok(Plan {
        workload: w.clone(),
        recommended,
        shards: shard_report,
        ratio: ratio_report,
        bloom: bloom_report,
        table: table_report,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// The main curve of each model, as charts.
pub fn shard_chart(r: &ShardReport) -> Chart {
    Chart {
        title: format!("Largest shard deviation, {} keys", r.keys),
        x_label: "shards".into(),
        y_label: "max |keys − mean| / mean".into(),
        x_log: true,
        y_log: true,
        series: vec![
            Series {
                name: "expected".into(),
                points: r
                    .points
                    .iter()
                    .map(|p| (p.shards as f64, p.expected_max_deviation))
                    .collect(),
            },
            Series {
                name: "MC (sample)".into(),
                points: r
                    .points
                    .iter()
                    .map(|p| (p.shards as f64, p.mc_max_deviation))
                    .collect(),
            },
            Series {
                name: "formula (sample)".into(),
                points: r
                    .points
                    .iter()
                    .map(|p| (p.shards as f64, p.formula_at_mc_keys))
                    .collect(),
            },
        ],
    }
}

/// Cost vs hot-set size.
pub fn ratio_chart(r: &RatioReport) -> Chart {
    Chart {
        title: "Hardware cost vs hot-set size".into(),
        x_label: "fraction of keys in the SSD hot file".into(),
        y_label: "cost ($)".into(),
        x_log: true,
        y_log: false,
        series: vec![Series {
            name: "cost".into(),
            points: r.curve.clone(),
        }],
    }
}

/// Bloom FPR vs churn.
pub fn bloom_chart(r: &BloomReport) -> Chart {
    Chart {
        title: format!(
            "Bloom false-positive rate vs churn (target {})",
            r.target_fpr
        ),
        x_label: "new keys since build / keys".into(),
        y_label: "false-positive rate".into(),
        x_log: false,
        y_log: true,
        series: vec![
            Series {
                name: "formula".into(),
                points: r.growth.iter().map(|g| (g.churn, g.formula)).collect(),
            },
            Series {
                name: "measured".into(),
                points: r.growth.iter().map(|g| (g.churn, g.measured)).collect(),
            },
        ],
    }
}

/// Bloom rebuild cost vs interval.
pub fn rebuild_chart(r: &BloomReport) -> Option<Chart> {
    let rb = r.rebuild.as_ref()?;
    Some(Chart {
        title: "Bloom rebuild: device time vs interval".into(),
        x_label: "rebuild interval (s)".into(),
        y_label: "device-seconds per second".into(),
        x_log: true,
        y_log: true,
        series: vec![Series {
            name: "rebuild + wasted reads".into(),
            points: rb.curve.clone(),
        }],
    })
}

/// Robin Hood probes vs load.
pub fn probe_chart(r: &TableReport) -> Chart {
    Chart {
        title: "Log table (Robin Hood) probe length vs load".into(),
        x_label: "load factor".into(),
        y_label: "distance from home slot".into(),
        y_log: true,
        series: vec![
            Series {
                name: "measured".into(),
                points: r.probes.iter().map(|p| (p.load, p.mean_probe)).collect(),
            },
            Series {
                name: "α/(2(1−α))".into(),
                points: r.probes.iter().map(|p| (p.load, p.formula_mean)).collect(),
            },
            Series {
                name: "max (measured)".into(),
                points: r
                    .probes
                    .iter()
                    .map(|p| (p.load, p.max_probe as f64))
                    .collect(),
            },
        ],
        ..Chart::default()
    }
}

/// Overflow probability vs load per page capacity.
pub fn overflow_chart(r: &TableReport) -> Chart {
    let mut caps: Vec<u64> = r.overflow.iter().map(|o| o.entries_per_page).collect();
    caps.dedup();
    let mut series = Vec::new();
    for c in caps {
        let pts = r.overflow.iter().filter(|o| o.entries_per_page == c);
        series.push(Series {
            name: format!("{c}/page Poisson"),
            points: pts
                .clone()
                .map(|o| (o.load, o.poisson.p_overflow))
                .collect(),
        });
        series.push(Series {
            name: format!("{c}/page MC"),
            points: pts.map(|o| (o.load, o.monte_carlo.p_overflow)).collect(),
        });
    }
    Chart {
        title: "Bucket overflow probability vs load".into(),
        x_label: "table load".into(),
        y_label: "P(bucket overflows its page)".into(),
        y_log: true,
        series,
        ..Chart::default()
    }
}

/// Index WA vs log/table ratio.
pub fn wa_chart(r: &TableReport) -> Chart {
    Chart {
        title: "Index write amplification vs log/table size".into(),
        x_label: "log bytes / table bytes".into(),
        y_label: "index bytes written / user bytes".into(),
        x_log: true,
        y_log: true,
        series: vec![
            Series {
                name: "model".into(),
                points: r
                    .index_wa
                    .iter()
                    .map(|p| (p.log_to_table, p.index_wa))
                    .collect(),
            },
            Series {
                name: "MC (engine hash)".into(),
                points: r
                    .index_wa
                    .iter()
                    .filter_map(|p| p.monte_carlo.map(|m| (p.log_to_table, m)))
                    .collect(),
            },
        ],
    }
}

/// SSD years vs SSD count around the plan.
pub fn lifetime_chart(w: &Workload, ssd: &DeviceProfile, best: &ratio::Sizing) -> Chart {
    let user = w.user_write_bytes_per_sec() * 86400.0;
    let pts = (1..=(best.ssds * 4).max(8))
        .map(|n| {
            let wear = crate::lifetime::ssd_wear(
                ssd,
                n,
                user,
                &best.wa,
                best.wear.growth_bytes_per_day,
                best.ssd_bytes.total,
            );
            (n as f64, wear.years_to_wear_out.min(1000.0))
        })
        .collect();
    Chart {
        title: format!("SSD lifetime vs SSD count ({})", ssd.name),
        x_label: "SSDs".into(),
        y_label: "years to rated endurance".into(),
        y_log: true,
        series: vec![Series {
            name: "years".into(),
            points: pts,
        }],
        ..Chart::default()
    }
}

impl Plan {
    /// Human-readable summary.
    pub fn table(&self) -> String {
        let r = &self.recommended;
        let mut s = format!(
            "Plan for workload `{}` ({} keys), computed in {:.2} s\n\n",
            self.workload.name, self.workload.keys, self.elapsed_s
        );
        let _ = writeln!(s, "  shards               {}", r.shards);
        let _ = writeln!(
            s,
            "  log capacity/shard   {}",
            human_bytes(r.log_capacity_bytes as f64)
        );
        let _ = writeln!(s, "  table max load       {}", r.table_max_load);
        let _ = writeln!(
            s,
            "  Bloom                fpr {} → {:.2} bits/key, {} hashes",
            r.bloom_fpr, r.bloom_bits_per_key, r.bloom_hashes
        );
        match (r.bloom_rebuild_fpr, r.bloom_rebuild_interval_s) {
            (Some(f), Some(t)) => {
                let _ = writeln!(
                    s,
                    "  Bloom rebuild        when estimated fpr > {f:.4} (≈ every {})",
                    human_duration(t)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  Bloom rebuild        not needed (no churn or no absent reads)"
                );
            }
        }
        let _ = writeln!(
            s,
            "  hot capacity/shard   {} ({:.4} % of keys)",
            human_bytes(r.hot_capacity_bytes as f64),
            r.hot_fraction * 100.0
        );
        let _ = writeln!(s, "  SSDs                 {} × {}", r.ssds, r.ssd_model);
        let _ = writeln!(s, "  HDDs                 {} × {}", r.hdds, r.hdd_model);
        let _ = writeln!(s, "  SSD/HDD capacity     {:.4}", r.ssd_hdd_capacity_ratio);
        let _ = writeln!(s, "  cost                 ${:.0}", r.cost);
        let _ = writeln!(
            s,
            "  SSD wear-out         {:.1} years",
            r.ssd_years_to_wear_out
        );
        let _ = writeln!(s, "  DRAM                 {}", human_bytes(r.dram_bytes));
        let _ = writeln!(
            s,
            "  without a serving hot file (the engine's fill-once hot file, long run): {} HDDs, ${:.0}",
            r.without_hot_hdds, r.without_hot_cost
        );
        s
    }

    /// Writes `report.md` and the SVG plots into `dir` (created if missing).
    pub fn write_report(&self, dir: &Path, ssd: &DeviceProfile) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        let mut charts = vec![
            ("shards.svg", shard_chart(&self.shards)),
            ("ratio.svg", ratio_chart(&self.ratio)),
            ("bloom.svg", bloom_chart(&self.bloom)),
            ("probes.svg", probe_chart(&self.table)),
            ("overflow.svg", overflow_chart(&self.table)),
            ("index-wa.svg", wa_chart(&self.table)),
            (
                "lifetime.svg",
                lifetime_chart(&self.workload, ssd, &self.ratio.best),
            ),
        ];
        if let Some(c) = rebuild_chart(&self.bloom) {
            charts.push(("bloom-rebuild.svg", c));
        }
        for (name, c) in &charts {
            c.write(&dir.join(name))?;
        }
        let fence = |t: String| format!("```text\n{t}```\n");
        let mut md = format!("# Capacity plan: `{}`\n\nGenerated by `kvtool simulate plan`; the models and their sources are in `docs/simulations.md`.\n\n## Recommended configuration\n\n", self.workload.name);
        md += &fence(self.table());
        md += "\n## Shards\n\n![shards](shards.svg)\n\n";
        md += &fence(self.shards.table());
        md += "\n## SSD/HDD ratio\n\n![ratio](ratio.svg)\n\n";
        md += &fence(self.ratio.table());
        md += "\n## Bloom filter\n\n![bloom](bloom.svg)\n\n";
        if self.bloom.rebuild.is_some() {
            md += "![rebuild](bloom-rebuild.svg)\n\n";
        }
        md += &fence(self.bloom.table());
        md += "\n## Map parameters\n\n![probes](probes.svg) ![overflow](overflow.svg) ![index WA](index-wa.svg)\n\n";
        md += &fence(self.table.table());
        md += "\n## Lifetime\n\n![lifetime](lifetime.svg)\n\n";
        md += &fence(self.ratio.best.wear.table() + "\n" + &self.ratio.best.hdd.table());
        let path = dir.join("report.md");
        std::fs::write(&path, md).map_err(|cause| Error::Io { path, cause })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tests::{toy_hdd, toy_ssd};
    use crate::workload::{tests::shipped_dir, WorkloadSpec};

    #[test]
    fn plan_for_a_billion_keys_is_fast_and_writes_a_report() {
        let w = WorkloadSpec::load(shipped_dir().join("hotset-mixed.json"))
            .unwrap()
            .model()
            .unwrap()
            .with_keys(1_000_000_000);
        let p = plan(
            &w,
            &toy_ssd(),
            &toy_hdd(),
            &PlanParams {
                mc_keys: 20_000,
                ..PlanParams::default()
            },
        )
        .unwrap();
        assert!(p.recommended.shards >= 8);
        assert!(p.recommended.ssds >= 1 && p.recommended.hdds >= 1);
        assert!(p.elapsed_s < 10.0, "{} s", p.elapsed_s);
        let dir = tempfile::tempdir().unwrap();
        p.write_report(dir.path(), &toy_ssd()).unwrap();
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("![shards](shards.svg)"));
        assert!(dir.path().join("overflow.svg").exists());
        serde_json::to_string(&p).unwrap();
    }

    #[test]
    fn human_formats() {
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_duration(90.0), "90 s");
        assert_eq!(human_duration(3.0 * 86400.0), "3.0 days");
    }
}
