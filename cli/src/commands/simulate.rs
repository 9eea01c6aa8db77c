//! `kvtool simulate`: capacity planning. Parses arguments, loads the workload and device files, calls
//! the `tiersim` models and prints a table, or the numbers with `--json`; `--plot FILE.svg` draws the
//! main curve. All logic lives in `tiersim` (`docs/simulations.md`).
//!
//! Exit codes: 0 success; 1 `validate` found a figure off by more than `--tolerance`; errors (bad
//! files or arguments) are returned to `main` and exit with its error code.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use tiersim::model::EngineConfig;
use tiersim::ratio::Targets;
use tiersim::svg::{Chart, Series};
use tiersim::{DeviceProfile, Workload, WorkloadSpec};

/// `kvtool simulate …`
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The model to run.
    #[command(subcommand)]
    pub command: SimCommand,
}

/// The simulations.
#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Shard count: per-shard keys, bytes, DRAM, balance (Monte Carlo with the engine's hash).
    Shards(ShardsArgs),
    /// SSD/HDD capacity ratio that minimises cost under the HDD IOPS and latency targets.
    Ratio(DeviceArgs),
    /// Bloom bits per key and hashes for a target FPR, growth with churn, rebuild interval.
    Bloom(BloomArgs),
    /// Map parameters: Robin Hood probes, page overflow, index write amplification.
    Table(TableArgs),
    /// SSD wear (DWPD, years to rated endurance) and HDD load.
    Lifetime(LifetimeArgs),
    /// Every model for one workload: a recommended configuration and a report folder.
    Plan(PlanArgs),
    /// Run a workload scaled down against a real store and compare predictions with the counters.
    Validate(ValidateArgs),
}

/// Workload selection shared by the subcommands.
#[derive(Args, Debug)]
pub struct WorkloadArg {
    /// Workload spec (JSON, see bench-data/workloads/).
    #[arg(long, short = 'w', default_value = "bench-data/workloads/ycsb-b.json")]
    pub workload: PathBuf,
    /// Override the workload's key count.
    #[arg(long)]
    pub keys: Option<u64>,
}

/// Device profiles and targets.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    #[command(flatten)]
    pub workload: WorkloadArg,
    /// SSD profile (JSON, see bench-data/devices/).
    #[arg(long, default_value = "bench-data/devices/gen4-nvme.json")]
    pub ssd: PathBuf,
    /// HDD profile.
    #[arg(long, default_value = "bench-data/devices/hdd-7200.json")]
    pub hdd: PathBuf,
    /// Shard count of the store.
    #[arg(long, default_value_t = 256)]
    pub shards: u32,
    /// Mean HDD random-read response target, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub hdd_latency_ms: f64,
    /// Highest planned device utilisation.
    #[arg(long, default_value_t = 0.7)]
    pub max_utilisation: f64,
    /// Years the SSDs must last.
    #[arg(long, default_value_t = 5.0)]
    pub ssd_years: f64,
    /// Draw the main curve to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `simulate shards`.
#[derive(Args, Debug)]
pub struct ShardsArgs {
    #[command(flatten)]
    pub workload: WorkloadArg,
    /// Threads that should work on distinct shards.
    #[arg(long, default_value_t = 8)]
    pub threads: u32,
    /// Largest acceptable expected max deviation of shard key counts (rebalance trigger).
    #[arg(long, default_value_t = 0.05)]
    pub max_deviation: f64,
    /// Largest global table per shard, GiB (a doubling rewrites one shard's table in one flush).
    #[arg(long, default_value_t = 4.0)]
    pub max_shard_index_gib: f64,
    /// Keys hashed per Monte Carlo trial.
    #[arg(long, default_value_t = 1_000_000)]
    pub mc_keys: u64,
    /// Monte Carlo trials.
    #[arg(long, default_value_t = 4)]
    pub mc_trials: u32,
    /// Largest shard count swept (power of two ≤ 65536).
    #[arg(long, default_value_t = 4096)]
    pub max_shards: u32,
    /// Draw the main curve to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `simulate bloom`.
#[derive(Args, Debug)]
pub struct BloomArgs {
    /// Target false-positive rate.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Keys in the store.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Keys for the measurements with the real filter.
    #[arg(long, default_value_t = 200_000)]
    pub sample_keys: u64,
    /// Largest churn (new keys since the build ÷ keys) on the growth curve.
    #[arg(long, default_value_t = 1.0)]
    pub max_churn: f64,
    /// Workload for the rebuild interval (insert rate, absent-get rate).
    #[arg(long, short = 'w')]
    pub workload: Option<PathBuf>,
    /// SSD profile for the rebuild interval.
    #[arg(long, default_value = "bench-data/devices/gen4-nvme.json")]
    pub ssd: PathBuf,
    /// Draw the main curve to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `simulate table`.
#[derive(Args, Debug)]
pub struct TableArgs {
    /// Workload whose key and value sizes to use.
    #[arg(long, short = 'w')]
    pub workload: Option<PathBuf>,
    /// Mean key size (without a workload).
    #[arg(long, default_value_t = 24.0)]
    pub key_bytes: f64,
    /// Mean value size (without a workload).
    #[arg(long, default_value_t = 1000.0)]
    pub value_bytes: f64,
    /// Slots of the Robin Hood table measured.
    #[arg(long, default_value_t = 1 << 18)]
    pub rh_slots: usize,
    /// log2 of the buckets in the overflow Monte Carlo.
    #[arg(long, default_value_t = 14)]
    pub mc_bucket_bits: u32,
    /// The table's doubling threshold.
    #[arg(long, default_value_t = 0.75)]
    pub table_max_load: f64,
    /// Draw the main curve to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `simulate lifetime`.
#[derive(Args, Debug)]
pub struct LifetimeArgs {
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// Fraction of keys in the hot file (default: the cheapest configuration's).
    #[arg(long)]
    pub hot_fraction: Option<f64>,
    /// SSD count (default: the sizing's).
    #[arg(long)]
    pub ssds: Option<u32>,
    /// HDD count (default: the sizing's).
    #[arg(long)]
    pub hdds: Option<u32>,
}

/// `simulate plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Workload spec.
    pub workload: PathBuf,
    /// Override the workload's key count.
    #[arg(long)]
    pub keys: Option<u64>,
    /// SSD profile.
    #[arg(long, default_value = "bench-data/devices/gen4-nvme.json")]
    pub ssd: PathBuf,
    /// HDD profile.
    #[arg(long, default_value = "bench-data/devices/hdd-7200.json")]
    pub hdd: PathBuf,
    /// Threads that should work on distinct shards.
    #[arg(long, default_value_t = 8)]
    pub threads: u32,
    /// Mean HDD random-read response target, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub hdd_latency_ms: f64,
    /// Write report.md and the SVG plots into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw the main curve (cost vs hot-set size) to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `simulate validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Workload spec.
    pub workload: PathBuf,
    /// Keys loaded into the scaled-down store.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Run-phase operations (default: the spec's, at most 5 × keys).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Store shards.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Per-shard log capacity, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub log_capacity: u64,
    /// Store Bloom target.
    #[arg(long, default_value_t = 0.05)]
    pub bloom_fpr: f64,
    /// Per-shard hot-file capacity as a multiple of the shard's loaded data bytes.
    #[arg(long, default_value_t = 4.0)]
    pub hot_capacity_factor: f64,
    /// Largest accepted relative error.
    #[arg(long, default_value_t = 0.15)]
    pub tolerance: f64,
    /// Operation-stream seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Create the store here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Draw predicted vs measured to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

fn load_workload(path: &Path, keys: Option<u64>) -> Result<Workload> {
    let spec =
        WorkloadSpec::load(path).with_context(|| format!("loading workload {}", path.display()))?;
    let w = spec
        .model()
        .with_context(|| format!("reading workload {}", path.display()))?;
    Ok(match keys {
        Some(k) => w.with_keys(k),
        None => w,
    })
}

fn load_device(path: &Path) -> Result<DeviceProfile> {
    DeviceProfile::load(path).with_context(|| format!("loading device profile {}", path.display()))
}

fn targets(d: &DeviceArgs) -> Targets {
    Targets {
        hdd_read_latency_s: d.hdd_latency_ms / 1e3,
        max_utilisation: d.max_utilisation,
        ssd_years: d.ssd_years,
        ..Targets::default()
    }
}

fn config(shards: u32) -> Result<EngineConfig> {
    anyhow::ensure!(
        shards.is_power_of_two(),
        "--shards must be a power of two, got {shards}"
    );
    Ok(EngineConfig {
        shards,
        ..EngineConfig::default()
    })
}

fn emit<T: Serialize>(report: &T, table: String, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

fn plot(chart: Option<Chart>, path: &Option<PathBuf>) -> Result<()> {
    if let (Some(c), Some(p)) = (chart, path) {
        c.write(p)
            .with_context(|| format!("writing plot {}", p.display()))?;
    }
    Ok(())
}

/// Runs `kvtool simulate …`; returns the exit code.
pub fn run(args: &SimulateArgs, json: bool) -> Result<i32> {
    match &args.command {
        SimCommand::Shards(a) => {
            let w = load_workload(&a.workload.workload, a.workload.keys)?;
            let p = tiersim::shards::ShardParams {
                threads: a.threads,
                max_deviation: a.max_deviation,
                max_shard_index_bytes: a.max_shard_index_gib * (1u64 << 30) as f64,
                mc_keys: a.mc_keys,
                mc_trials: a.mc_trials,
                max_shards: a.max_shards,
                ..Default::default()
            };
            let r = tiersim::shards::simulate(&w, &p)?;
            plot(Some(tiersim::plan::shard_chart(&r)), &a.plot)?;
            emit(&r, r.table(), json)?;
        }
        SimCommand::Ratio(a) => {
            let w = load_workload(&a.workload.workload, a.workload.keys)?;
            let (ssd, hdd) = (load_device(&a.ssd)?, load_device(&a.hdd)?);
            let r = tiersim::ratio::simulate(&w, &ssd, &hdd, &config(a.shards)?, &targets(a))?;
            plot(Some(tiersim::plan::ratio_chart(&r)), &a.plot)?;
            emit(&r, r.table(), json)?;
        }
        SimCommand::Bloom(a) => {
            let rebuild = match &a.workload {
                Some(path) => {
                    let w = load_workload(path, Some(a.keys))?;
                    let ssd = load_device(&a.ssd)?;
                    let sizing = tiersim::ratio::evaluate(
                        &w,
                        &ssd,
                        &load_device(Path::new("bench-data/devices/hdd-7200.json"))
                            .unwrap_or_else(|_| ssd.clone()),
                        &EngineConfig::default(),
                        &Targets::default(),
                        0.0,
                    );
                    Some(tiersim::bloom::RebuildInputs {
                        churn_keys_per_sec: w.new_keys_per_sec(),
                        absent_gets_per_sec: w.gets_per_sec() * w.missing_fraction,
                        seq_read_bytes_per_sec: ssd.seq_read_mb_s * 1e6,
                        page_read_cost_s: 1.0 / ssd.random_read_iops,
                        index_bytes_per_key: sizing.ssd_bytes.index / w.keys.max(1) as f64,
                    })
                }
                None => None,
            };
            let r = tiersim::bloom::simulate(&tiersim::bloom::BloomParams {
                fpr: a.fpr,
                keys: a.keys,
                sample_keys: a.sample_keys,
                probes: a.sample_keys,
                max_churn: a.max_churn,
                rebuild,
            })?;
            plot(Some(tiersim::plan::bloom_chart(&r)), &a.plot)?;
            emit(&r, r.table(), json)?;
        }
        SimCommand::Table(a) => {
            let (k, v) = match &a.workload {
                Some(p) => {
                    let w = load_workload(p, None)?;
                    (w.key_bytes, w.value_bytes)
                }
                None => (a.key_bytes, a.value_bytes),
            };
            let r = tiersim::table::simulate(&tiersim::table::TableParams {
                rh_slots: a.rh_slots,
                mc_bucket_bits: a.mc_bucket_bits,
                key_bytes: k,
                value_bytes: v,
                table_max_load: a.table_max_load,
            })?;
            plot(Some(tiersim::plan::overflow_chart(&r)), &a.plot)?;
            emit(&r, r.table(), json)?;
        }
        SimCommand::Lifetime(a) => {
            let d = &a.devices;
            let w = load_workload(&d.workload.workload, d.workload.keys)?;
            let (ssd, hdd) = (load_device(&d.ssd)?, load_device(&d.hdd)?);
            let o = tiersim::lifetime::Overrides {
                hot_fraction: a.hot_fraction,
                ssds: a.ssds,
                hdds: a.hdds,
            };
            let r =
                tiersim::lifetime::simulate(&w, &ssd, &hdd, &config(d.shards)?, &targets(d), &o)?;
            let chart = Chart {
                title: format!("SSD lifetime vs fill ({} × {})", r.ssd.ssds, ssd.name),
                x_label: "SSD fill".into(),
                y_label: "years to rated endurance".into(),
                y_log: true,
                series: vec![Series {
                    name: "years".into(),
                    points: r.curve.clone(),
                }],
                ..Chart::default()
            };
            plot(Some(chart), &d.plot)?;
            emit(&r, r.table(), json)?;
        }
        SimCommand::Plan(a) => {
            let w = load_workload(&a.workload, a.keys)?;
            let (ssd, hdd) = (load_device(&a.ssd)?, load_device(&a.hdd)?);
            let params = tiersim::plan::PlanParams {
                threads: a.threads,
                targets: Targets {
                    hdd_read_latency_s: a.hdd_latency_ms / 1e3,
                    ..Targets::default()
                },
                ..Default::default()
            };
            let p = tiersim::plan::plan(&w, &ssd, &hdd, &params)?;
            if let Some(dir) = &a.out {
                p.write_report(dir, &ssd)
                    .with_context(|| format!("writing report to {}", dir.display()))?;
            }
            plot(Some(tiersim::plan::ratio_chart(&p.ratio)), &a.plot)?;
            emit(&p, p.table(), json)?;
        }
        SimCommand::Validate(a) => {
            let spec = WorkloadSpec::load(&a.workload)
                .with_context(|| format!("loading workload {}", a.workload.display()))?;
            let p = tiersim::validate::ValidateParams {
                keys: a.keys,
                ops: a.ops.unwrap_or(0),
                shards: a.shards,
                log_capacity_bytes: a.log_capacity,
                bloom_fpr: a.bloom_fpr,
                hot_capacity_factor: a.hot_capacity_factor,
                tolerance: a.tolerance,
                seed: a.seed,
                dir: a.dir.clone(),
            };
            let r = tiersim::validate::run(&spec, &p)
                .with_context(|| format!("validating {}", a.workload.display()))?;
            let pts: Vec<(f64, f64)> = r
                .figures
                .iter()
                .map(|f| (f.measured, f.predicted))
                .collect();
            let lo = pts
                .iter()
                .flat_map(|p| [p.0, p.1])
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let hi = pts.iter().flat_map(|p| [p.0, p.1]).fold(0.0, f64::max);
            let mut sorted = pts.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let chart = Chart {
                title: format!("Predicted vs measured: {}", r.workload),
                x_label: "measured".into(),
                y_label: "predicted".into(),
                x_log: true,
                y_log: true,
                series: vec![
                    Series {
                        name: "figures".into(),
                        points: sorted,
                    },
                    Series {
                        name: "y = x".into(),
                        points: vec![(lo, lo), (hi, hi)],
                    },
                ],
            };
            plot(Some(chart), &a.plot)?;
            emit(&r, r.table(), json)?;
            return Ok(if r.passed { 0 } else { 1 });
        }
    }
    Ok(0)
}
