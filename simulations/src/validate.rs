//! `simulate validate`: runs a workload, scaled down, against a real temporary store and compares what
//! the models predict with the engine's counters: write amplification per tier, device reads per get,
//! the hot-file hit ratio and the Bloom filter's false-positive rate, each with its relative error.
//!
//! The prediction ([`predict`]) never looks at the store: it walks the engine's rules (log parts of
//! `log_capacity_bytes` flushed as soon as they fill, flush = newest record per key, table rebuild
//! when entry bytes pass the threshold, the filter re-sized with the engine's headroom on growth or
//! when stale) with the expected values of [`crate::model`], per shard. The hot tier's figures come
//! from [`crate::hotwalk`], which replays the same operations key by key through the engine's hot-set
//! rules (count-min admission, rebuilds); its hot-entry fraction feeds the table walk's entry sizes.
//! [`run`] then drives the same workload through `tierkv::Db` and reads `Db::stats()`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::bloom::{crate_sizing, fpr_formula};
use crate::error::{check_param, Result};
use crate::hotwalk::{HotCounts, HotWalk, HotWalkParams};
use crate::model::{self, binned, p_any};
use crate::skew::AccessCurve;
use crate::table::poisson_overflow;
use crate::workload::{Distribution, LoadOps, Op, OpStream, WorkloadSpec};

/// Settings of the scaled-down run.
#[derive(Clone, Debug)]
pub struct ValidateParams {
    /// Keys loaded.
    pub keys: u64,
    /// Run-phase operations (0: the spec's `operations`, capped at 5 × keys).
    pub ops: u64,
    /// Store shards.
    pub shards: u32,
    /// Per-shard log capacity (small, so a scaled-down store flushes as often as a full-size one).
    pub log_capacity_bytes: u64,
    /// Bloom target of the store (0.05 keeps false positives frequent enough to count precisely).
    pub bloom_fpr: f64,
    /// Per-shard hot-file capacity as a multiple of the shard's loaded data (large: never fills).
    pub hot_capacity_factor: f64,
    /// A figure fails when its relative error is above this.
    pub tolerance: f64,
    /// RNG seed of the operation stream.
    pub seed: u64,
    /// Where to create the store (a temporary directory when `None`).
    pub dir: Option<PathBuf>,
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams {
            keys: 100_000,
            ops: 0,
            shards: 4,
            log_capacity_bytes: 1 << 20,
            bloom_fpr: 0.05,
            hot_capacity_factor: 4.0,
            tolerance: 0.15,
            seed: 42,
            dir: None,
        }
    }
}

/// One compared figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// `phase.figure` (`run.wa_index`).
    pub name: String,
    /// The model's value.
    pub predicted: f64,
    /// Lowest and highest prediction when the shards hold one log part of keys fewer or more: an
    /// engine decision within that distance of its threshold (a filter rebuild, a table rebuild)
    /// can go either way in a real run, and the range shows it.
    pub predicted_range: (f64, f64),
    /// The engine's counters.
    pub measured: f64,
    /// `|prediction − measured| / |measured|` for the closest of the three predictions (0 when equal).
    pub relative_error: f64,
}

fn rel_err(predicted: f64, measured: f64) -> f64 {
    if predicted == measured {
        0.0
    } else {
        (predicted - measured).abs() / measured.abs().max(1e-12)
    }
}

impl Figure {
    #[cfg(test)]
    fn new(name: &str, predicted: f64, measured: f64) -> Figure {
        Figure::ranged(name, &[predicted], measured)
    }

    /// From the central prediction followed by the perturbed ones.
    fn ranged(name: &str, predictions: &[f64], measured: f64) -> Figure {
        let lo = predictions.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = predictions
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        Figure {
            name: name.to_string(),
            predicted: predictions[0],
            predicted_range: (lo, hi),
            measured,
            relative_error: predictions
                .iter()
                .map(|&p| rel_err(p, measured))
                .fold(f64::INFINITY, f64::min),
        }
    }
}

/// What `simulate validate` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidateReport {
    /// Workload name.
    pub workload: String,
    /// Keys loaded.
    pub keys: u64,
    /// Run-phase operations.
    pub ops: u64,
    /// Store shards.
    pub shards: u32,
    /// The figures.
    pub figures: Vec<Figure>,
    /// Figures not compared because too few events were expected to measure them precisely.
    pub skipped: Vec<String>,
    /// Tolerance applied.
    pub tolerance: f64,
    /// True when every figure is within the tolerance.
    pub passed: bool,
    /// Wall time, seconds.
    pub elapsed_s: f64,
}

/// Predicted figures of one phase (per-user-byte WAs, per-get reads, ratios).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhasePrediction {
    /// User bytes written (keys + values; keys of deletes).
    pub user_bytes: f64,
    /// Log bytes written.
    pub log_bytes: f64,
    /// Index bytes written.
    pub index_bytes: f64,
    /// Data-file bytes written.
    pub data_bytes: f64,
    /// Hot-file bytes written.
    pub hot_bytes: f64,
    /// Gets.
    pub gets: f64,
    /// Device reads (log + index + hot + data) over all gets.
    pub device_reads: f64,
    /// Gets answered by the hot file.
    pub hot_reads: f64,
    /// Gets answered by the hot or the data file.
    pub table_reads: f64,
    /// Absent lookups reaching the filter and the expected false positives among them.
    pub absent_checked: f64,
    /// Expected false positives.
    pub false_positives: f64,
}

/// Expected state of one shard.
#[derive(Clone, Debug)]
struct ShardModel {
    table_keys: f64,
    entry_bytes: f64,
    buckets: f64,
    filter_capacity: f64,
    filter_inserted: f64,
}

/// The per-shard walk of the engine's rules.
struct Walk {
    s: ShardModel,
    k: f64,
    v: f64,
    max_load: f64,
    fpr: f64,
    shards: f64,
    /// Hot-entry fraction of the table after each run-phase flush (from `crate::hotwalk`).
    hot_fraction: Vec<f64>,
    /// Run-phase flushes so far (`None` during the load).
    run_flushes: Option<usize>,
}

/// What one flush adds.
struct FlushIn {
    /// New keys.
    puts: f64,
    /// Distinct existing keys overwritten.
    updated: f64,
    /// Distinct existing keys deleted.
    deleted: f64,
}

impl Walk {
    fn buckets(&self) -> f64 {
        self.s.buckets
    }

    fn per_page(&self) -> u64 {
        model::entries_per_page(model::entry_bytes(self.k, false)) as u64
    }

    /// Applies a flush; returns (index bytes, data bytes) written (hot copies: `crate::hotwalk`).
    fn flush(&mut self, f: &FlushIn) -> (f64, f64) {
        let growth_bytes = (f.puts + f.updated) * model::growth_entry_bytes(self.k);
        // Past the threshold the table is rebuilt for 2/3 of it (never smaller).
        let needed = self.s.entry_bytes + growth_bytes;
        let rebuild = needed > model::PAGE_PAYLOAD * self.s.buckets * self.max_load;
        if rebuild {
            self.s.buckets = self.s.buckets.max(model::buckets_at_load(
                needed,
                self.max_load * model::REBUILD_LOAD_FRACTION,
            ));
        }
        let rec = model::DATA_HEADER + self.v;
        let data = (f.puts + f.updated) * rec;
        self.s.table_keys = (self.s.table_keys + f.puts - f.deleted).max(0.0);
        // Entries with a hot offset are longer; the engine's growth check sees their real size.
        let hot = match self.run_flushes.as_mut() {
            Some(j) => {
                *j += 1;
                let f = self.hot_fraction.get(*j - 1).or(self.hot_fraction.last());
                f.copied().unwrap_or(0.0)
            }
            None => 0.0,
        };
        self.s.entry_bytes = self.s.table_keys
            * (model::entry_bytes(self.k, false) + hot * tierkv::format::HOT_OFFSET_BYTES as f64);
        let b = self.buckets();
        let c = self.per_page();
        let lambda = self.s.table_keys / b;
        let ovf = poisson_overflow(lambda, c);
        let pages = if rebuild {
            // Every non-empty bucket's chain.
            b * (p_any(1.0 / b, self.s.table_keys) + ovf.overflow_pages_per_bucket)
        } else {
            let touched = b * p_any(1.0 / b, f.puts + f.updated + f.deleted);
            touched * (1.0 + ovf.overflow_pages_per_bucket)
        };
        // The filter takes the new keys unless the table grew past it or its estimated rate (stale
        // bits of deleted keys included) would pass the target by the engine's slack: then it is
        // rebuilt from the table's keys with the engine's headroom.
        let grown = self.s.filter_inserted + f.puts;
        let (bytes, k) = crate_sizing(self.s.filter_capacity as u64, self.fpr);
        let stale = fpr_formula(grown, bytes as f64 * 8.0, k) > self.fpr * model::BLOOM_FPR_SLACK;
        if rebuild || self.s.table_keys > self.s.filter_capacity || stale {
            self.s.filter_capacity = (model::BLOOM_HEADROOM * self.s.table_keys)
                .floor()
                .max(1024.0);
            self.s.filter_inserted = self.s.table_keys;
        } else {
            self.s.filter_inserted = grown;
        }
        (pages * model::PAGE_SIZE, data)
    }

    fn fpr(&self) -> f64 {
        let (bytes, k) = crate_sizing(self.s.filter_capacity as u64, self.fpr);
        fpr_formula(self.s.filter_inserted, bytes as f64 * 8.0, k)
    }

    /// Page reads of a present-key lookup and of an absent one (the whole chain).
    fn page_reads(&self) -> (f64, f64) {
        let b = self.buckets();
        let o = poisson_overflow(self.s.table_keys / b, self.per_page());
        (
            1.0 + o.entries_in_overflow,
            1.0 + o.overflow_pages_per_bucket,
        )
    }
}

impl PhasePrediction {
    /// Hot-file hit ratio among table reads.
    pub fn hot_hit(&self) -> f64 {
        if self.table_reads > 0.0 {
            self.hot_reads / self.table_reads
        } else {
            0.0
        }
    }

    fn add_scaled(&mut self, o: &PhasePrediction, w: f64) {
        self.user_bytes += w * o.user_bytes;
        self.log_bytes += w * o.log_bytes;
        self.index_bytes += w * o.index_bytes;
        self.data_bytes += w * o.data_bytes;
        self.hot_bytes += w * o.hot_bytes;
        self.gets += w * o.gets;
        self.device_reads += w * o.device_reads;
        self.hot_reads += w * o.hot_reads;
        self.table_reads += w * o.table_reads;
        self.absent_checked += w * o.absent_checked;
        self.false_positives += w * o.false_positives;
    }
}

/// Five-point Gauss–Hermite rule for a standard normal: nodes and weights.
const GAUSS_HERMITE: [(f64, f64); 5] = [
    (-2.856_970_013_872_805, 0.011_257_411_327_720_7),
    (-1.355_626_179_974_266, 0.222_075_922_005_612_6),
    (0.0, 0.533_333_333_333_333_3),
    (1.355_626_179_974_266, 0.222_075_922_005_612_6),
    (2.856_970_013_872_805, 0.011_257_411_327_720_7),
];

/// Predicts the figures of the load phase and the run phase for `keys` keys and `ops` operations.
///
/// Shards hold Binomial(keys, 1/shards) keys, and the table's rebuilds are thresholds, so a
/// small store's shards sit on different sides of one: the prediction averages the per-shard walk
/// over shard sizes `n (1 + z σ)` with the five-point Gauss–Hermite rule (σ² = (1 − 1/S) / n).
pub fn predict(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    keys: u64,
    ops: u64,
) -> Result<(PhasePrediction, PhasePrediction)> {
    let s = p.shards.max(1) as f64;
    let n_s = keys.max(1) as f64 / s;
    let sigma = ((1.0 - 1.0 / s) / n_s).sqrt();
    let scales: Vec<(f64, f64)> = GAUSS_HERMITE
        .iter()
        .map(|&(z, weight)| ((1.0 + z * sigma).max(0.01), weight))
        .collect();
    predict_over(spec, p, keys, ops, &scales, &[])
}

/// Like [`predict`], with the shard sizes given: `shard_keys[i]` keys in shard `i` (counted with the
/// engine's hash over the keys the run will load), and the table's hot-entry fraction after each
/// run-phase flush (`HotCounts::hot_entry_fraction`; empty: no hot offsets).
pub fn predict_for_shards(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    shard_keys: &[u64],
    ops: u64,
    hot_fraction: &[f64],
) -> Result<(PhasePrediction, PhasePrediction)> {
    let keys: u64 = shard_keys.iter().sum();
    let mean = keys.max(1) as f64 / shard_keys.len().max(1) as f64;
    let w = 1.0 / shard_keys.len().max(1) as f64;
    let scales: Vec<(f64, f64)> = shard_keys
        .iter()
        .map(|&n| ((n as f64 / mean).max(0.01), w))
        .collect();
    predict_over(spec, p, keys, ops, &scales, hot_fraction)
}

fn predict_over(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    keys: u64,
    ops: u64,
    scales: &[(f64, f64)],
    hot_fraction: &[f64],
) -> Result<(PhasePrediction, PhasePrediction)> {
    let (mut load, mut run) = (PhasePrediction::default(), PhasePrediction::default());
    for &(scale, weight) in scales {
        let (l, r) = predict_scaled(spec, p, keys, ops, scale, hot_fraction)?;
        load.add_scaled(&l, weight);
        run.add_scaled(&r, weight);
    }
    Ok((load, run))
}

/// The walk for a store whose shards all hold `scale` times the mean share of keys and writes.
fn predict_scaled(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    keys: u64,
    ops: u64,
    scale: f64,
    hot_fraction: &[f64],
) -> Result<(PhasePrediction, PhasePrediction)> {
    let w = spec.model()?.with_keys(keys);
    let s = p.shards as f64;
    let (k, v) = (w.key_bytes, w.value_bytes);
    let n_mean = keys as f64 / s;
    let n_s = n_mean * scale;
    let cap = p.log_capacity_bytes as f64 - 32.0;
    let load_rec = model::log_record_bytes(k, v);
    let curve = w.curve.clone();
    let mut walk = Walk {
        s: ShardModel {
            table_keys: 0.0,
            entry_bytes: 0.0,
            buckets: 1.0,
            filter_capacity: 1024.0,
            filter_inserted: 0.0,
        },
        k,
        v,
        max_load: tierkv::Options::default().table_max_load,
        fpr: p.bloom_fpr,
        shards: s,
        hot_fraction: hot_fraction.to_vec(),
        run_flushes: None,
    };

    // Load: log parts of `per_part` new keys, then the final flush of the remainder.
    let mut load = PhasePrediction {
        user_bytes: n_s * s * (k + v),
        log_bytes: n_s * s * load_rec,
        ..PhasePrediction::default()
    };
    let per_part = (cap / load_rec).floor().max(1.0);
    let mut left = n_s;
    while left > 0.0 {
        let m = left.min(per_part);
        let (i, d) = walk.flush(&FlushIn {
            puts: m,
            updated: 0.0,
            deleted: 0.0,
        });
        load.index_bytes += i * s;
        load.data_bytes += d * s;
        left -= m;
    }

    // Run.
    walk.run_flushes = Some(0);
    let writes_per_op = w.puts_per_op + w.updates_per_op + w.deletes_per_op;
    let gets_per_op = w.gets_per_op;
    let missing = w.missing_fraction;
    let (fp, fu, fd) = if writes_per_op > 0.0 {
        (
            w.puts_per_op / writes_per_op,
            w.updates_per_op / writes_per_op,
            w.deletes_per_op / writes_per_op,
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let mean_rec = (fp + fu) * load_rec + fd * model::log_record_bytes(k, 0.0);
    let writes_s = ops as f64 * writes_per_op / s * scale;
    let gets_total = ops as f64 * gets_per_op * scale;
    let mut run = PhasePrediction {
        user_bytes: scale * ops as f64 * writes_per_op * ((fp + fu) * (k + v) + fd * k),
        log_bytes: scale * ops as f64 * writes_per_op * mean_rec,
        gets: gets_total,
        ..PhasePrediction::default()
    };
    let per_part = if writes_per_op > 0.0 {
        (cap / mean_rec).floor().max(1.0)
    } else {
        f64::INFINITY
    };
    // The popularity of a key is global: the whole store's key count sets it.
    let n_global = |walk: &Walk| walk.s.table_keys * walk.shards / scale;
    // Gets are spread evenly over the writes; evaluate the read figures at `steps` points per part.
    let latest = spec.trace.is_none() && matches!(spec.distribution, Distribution::Latest { .. });
    let mut written = 0.0;
    let parts = if writes_s > 0.0 {
        (writes_s / per_part).ceil()
    } else {
        1.0
    };
    // Without the background flusher the writer that fills a part flushes it at once (the engine's
    // `after_rotation`), so part j is flushed before part j + 1 serves reads.
    let mut pending: std::collections::VecDeque<FlushIn> = Default::default();
    let mut part = 0.0;
    while part < parts {
        while let Some(f) = pending.pop_front() {
            let (i, d) = walk.flush(&f);
            run.index_bytes += i * s;
            run.data_bytes += d * s;
        }
        let m = if writes_s > 0.0 {
            (writes_s - written).min(per_part)
        } else {
            0.0
        };
        // Gets are interleaved with writes, so each part (the last may be short) gets its share.
        let gets_per_part = if writes_s > 0.0 {
            gets_total * m / writes_s
        } else {
            gets_total
        };
        // Reads during this part see the filling active part only.
        let frozen = 0.0;
        let n = n_global(&walk).max(1.0);
        let (pages_present, pages_absent) = walk.page_reads();
        let fpr = walk.fpr();
        let steps = 8;
        for i in 0..steps {
            let window = (frozen + m * (i as f64 + 0.5) / steps as f64) * s / scale;
            let mut log_hit = model::hit_in_recent(&curve, n, window * fu);
            if latest {
                log_hit = (log_hit + curve.hit_fraction(window * fp / n)).min(1.0);
            }
            let table = 1.0 - log_hit;
            let g = gets_per_part / steps as f64;
            run.device_reads += g
                * ((1.0 - missing) * (log_hit + table * (pages_present + 1.0))
                    + missing * fpr * pages_absent);
            // Hot hits come from the key-by-key walk (`crate::hotwalk`, see `run`).
            run.table_reads += g * (1.0 - missing) * table_reads(&curve, n, window * fu);
        }
        run.absent_checked += gets_per_part * missing;
        run.false_positives += gets_per_part * missing * fpr;
        if m > 0.0 {
            let upd = fu * m * s / scale;
            pending.push_back(FlushIn {
                puts: fp * m,
                updated: model::expected_distinct(&curve, n, upd) / s,
                deleted: walk.s.table_keys * p_any(1.0 / walk.s.table_keys.max(1.0), fd * m),
            });
        }
        written += m;
        part += 1.0;
    }
    for f in pending {
        let (i, d) = walk.flush(&f);
        run.index_bytes += i * s;
        run.data_bytes += d * s;
    }
    Ok((load, run))
}

/// Table reads per present-key get while `window` overwrites sit in the log: keys not in the log
/// window, weighted by popularity.
fn table_reads(curve: &AccessCurve, n: f64, window: f64) -> f64 {
    binned(curve, n, |p, mass, _| mass * (1.0 - p_any(p, window)))
}

/// Walks the hot tier's rules ([`crate::hotwalk`]) over the load, then over the run phase (the
/// trace's operations, or `ops` draws of the spec's stream with the run's seed); returns the run's
/// counts.
fn hot_walk(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    opts: &tierkv::Options,
    load_ops: &LoadOps,
    run_ops: Option<&[Op]>,
    ops: u64,
) -> HotCounts {
    let mut hw = HotWalk::new(HotWalkParams {
        shards: opts.shards,
        log_capacity_bytes: opts.log_capacity_bytes,
        hot_capacity_bytes: opts.hot_capacity_bytes,
        background: opts.background_flush,
        table_max_load: opts.table_max_load,
    });
    for (k, v) in load_ops {
        hw.apply(&Op::Put(k.clone(), *v));
    }
    hw.flush_all();
    let _ = hw.take();
    match run_ops {
        Some(list) => list.iter().for_each(|op| hw.apply(op)),
        None => {
            let mut stream = OpStream::new(spec, p.keys, p.seed);
            let _ = stream.load_ops();
            for _ in 0..ops {
                for op in stream.next_ops() {
                    hw.apply(&op);
                }
            }
        }
    }
    hw.flush_all();
    hw.take()
}

/// Runs the workload against a real store and compares.
pub fn run(spec: &WorkloadSpec, p: &ValidateParams) -> Result<ValidateReport> {
    check_param(p.keys >= 1000, "keys", || "must be at least 1000".into())?;
    check_param(p.tolerance > 0.0, "tolerance", || "must be positive".into())?;
    let start = Instant::now();
    let trace = spec.trace.is_some();
    let ops = if trace {
        0
    } else if p.ops > 0 {
        p.ops
    } else {
        spec.operations.unwrap_or(p.keys).min(5 * p.keys)
    };
    let tmp;
    let dir = match &p.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(|cause| crate::Error::Io {
                path: std::env::temp_dir(),
                cause,
            })?;
            tmp.path().join("store")
        }
    };
    let w = spec.model()?;
    let hot_capacity =
        (p.hot_capacity_factor * p.keys as f64 / p.shards as f64 * (4.0 + w.value_bytes)) as u64;
    let opts = tierkv::Options {
        shards: p.shards,
        log_capacity_bytes: p.log_capacity_bytes,
        bloom_fpr: p.bloom_fpr,
        hot_capacity_bytes: hot_capacity,
        background_flush: false,
        ..tierkv::Options::default()
    };
    let db = tierkv::Db::open(&dir, opts.clone())?;

    let (load_ops, run_ops): (LoadOps, Option<Vec<Op>>) = match &spec.trace {
        Some(t) => {
            let (l, r) = crate::trace::replay(t)?;
            (l, Some(r))
        }
        None => (OpStream::new(spec, p.keys, p.seed).load_ops(), None),
    };
    let max_value = load_ops
        .iter()
        .map(|l| l.1)
        .chain(run_ops.iter().flatten().map(|o| match o {
            Op::Put(_, v) => *v,
            _ => 0,
        }))
        .max()
        .unwrap_or(0)
        .max(spec.value_size.max() as usize)
        .max(1);
    let filler: Vec<u8> = (0..max_value).map(|i| (i * 31 % 251) as u8).collect();
    // The hot tier's figures: the engine's hot-set rules walked key by key over the same operations.
    let hot_pred = hot_walk(spec, p, &opts, &load_ops, run_ops.as_deref(), ops);
    let keys_loaded = load_ops.len() as u64;
    // One put at a time: a batch reserves log room for its whole share of a shard, which would
    // leave parts partly empty at these small log sizes.
    for (k, vlen) in &load_ops {
        db.put(k, &filler[..*vlen])?;
    }
    db.flush()?;
    let s0 = db.stats();

    let mut stream = OpStream::new(spec, p.keys, p.seed);
    let _ = stream.load_ops();
    let apply = |op: Op| -> Result<()> {
        match op {
            Op::Get(k) | Op::GetMissing(k) => {
                db.get(&k)?;
            }
            Op::Put(k, vlen) => db.put(&k, &filler[..vlen])?,
            Op::Delete(k) => db.delete(&k)?,
        }
        Ok(())
    };
    let mut run_count = 0u64;
    match run_ops {
        Some(list) => {
            for op in list {
                apply(op)?;
                run_count += 1;
            }
        }
        None => {
            for _ in 0..ops {
                for op in stream.next_ops() {
                    apply(op)?;
                }
                run_count += 1;
            }
        }
    }
    db.flush()?;
    let s1 = db.stats();
    drop(db);

    let mut figures = Vec::new();
    let mut skipped = Vec::new();
    let mut shard_keys = vec![0u64; p.shards as usize];
    let shard_bits = p.shards.trailing_zeros();
    for (k, _) in &load_ops {
        shard_keys[tierkv::hash::KeyHash::of(k).shard(shard_bits) as usize] += 1;
    }
    // A trace's summary counts every line (first writes included) in its per-op fractions.
    let model_ops = if trace { keys_loaded + run_count } else { ops };
    // Central prediction, then with one log part of keys fewer and more per shard.
    let w = spec.model()?;
    let part_keys =
        (p.log_capacity_bytes as f64 / model::log_record_bytes(w.key_bytes, w.value_bytes)).floor();
    let mean_shard = keys_loaded.max(1) as f64 / p.shards as f64;
    let mut scenarios = Vec::new();
    for d in [0.0, -1.0, 1.0] {
        let shifted: Vec<u64> = shard_keys
            .iter()
            .map(|&n| (n as f64 + d * part_keys.min(0.5 * mean_shard)).max(1.0) as u64)
            .collect();
        scenarios.push(predict_for_shards(
            spec,
            p,
            &shifted,
            model_ops,
            &hot_pred.hot_entry_fraction,
        )?);
    }
    for (_, r) in scenarios.iter_mut() {
        r.hot_bytes = hot_pred.hot_bytes as f64;
        r.hot_reads = hot_pred.hot_reads as f64;
        r.table_reads = (hot_pred.hot_reads + hot_pred.data_reads) as f64;
        r.index_bytes += hot_pred.rebuild_index_bytes as f64;
        r.device_reads += hot_pred.rebuild_reads as f64;
    }
    let (pl, pr) = scenarios[0].clone();
    let value = |name: &str, (l, r): &(PhasePrediction, PhasePrediction)| -> f64 {
        let (ul, ur) = (l.user_bytes.max(1e-12), r.user_bytes.max(1e-12));
        match name {
            "load.wa_log" => l.log_bytes / ul,
            "load.wa_index" => l.index_bytes / ul,
            "load.wa_data" => l.data_bytes / ul,
            "run.wa_log" => r.log_bytes / ur,
            "run.wa_index" => r.index_bytes / ur,
            "run.wa_data" => r.data_bytes / ur,
            "run.wa_hot" => r.hot_bytes / ur,
            "run.device_reads_per_get" => r.device_reads / r.gets.max(1.0),
            "run.hot_hit_ratio" => r.hot_hit(),
            "run.bloom_fpr" => r.false_positives / r.absent_checked.max(1e-12),
            _ => f64::NAN,
        }
    };
    let mut add = |name: &str, measured: f64| {
        let preds: Vec<f64> = scenarios.iter().map(|sc| value(name, sc)).collect();
        figures.push(Figure::ranged(name, &preds, measured));
    };
    let user_load = pl.user_bytes;
    add("load.wa_log", s0.tiers.log.write_bytes as f64 / user_load);
    add(
        "load.wa_index",
        s0.tiers.index.write_bytes as f64 / user_load,
    );
    add("load.wa_data", s0.tiers.data.write_bytes as f64 / user_load);
    let d = |f: fn(&tierkv::Stats) -> u64| (f(&s1) - f(&s0)) as f64;
    if pr.user_bytes > 0.0 {
        let u = pr.user_bytes;
        add("run.wa_log", d(|s| s.tiers.log.write_bytes) / u);
        add("run.wa_index", d(|s| s.tiers.index.write_bytes) / u);
        add("run.wa_data", d(|s| s.tiers.data.write_bytes) / u);
        if pr.hot_bytes > 0.0 || d(|s| s.tiers.hot.write_bytes) > 0.0 {
            add("run.wa_hot", d(|s| s.tiers.hot.write_bytes) / u);
        }
    }
    let gets = d(|s| s.gets.total);
    if gets > 0.0 {
        let reads = d(|s| {
            s.tiers.log.read_ops
                + s.tiers.index.read_ops
                + s.tiers.hot.read_ops
                + s.tiers.data.read_ops
        });
        add("run.device_reads_per_get", reads / gets);
        // A rate is compared only when it rests on enough events for counting noise (Poisson,
        // 2σ) to stay inside the tolerance: ≥ (2 / tolerance)² expected events.
        let min_events = (2.0 / p.tolerance).powi(2);
        let (hot, data) = (d(|s| s.gets.from_hot), d(|s| s.gets.from_data));
        if pr.hot_reads >= min_events {
            add("run.hot_hit_ratio", hot / (hot + data).max(1.0));
        } else if pr.hot_reads > 0.0 || hot > 0.0 {
            skipped.push(format!(
                "run.hot_hit_ratio: {:.0} hot reads expected, {} measured (< {min_events:.0})",
                pr.hot_reads, hot
            ));
        }
        let (fp, neg) = (d(|s| s.bloom_false_positives), d(|s| s.bloom_negatives));
        if pr.false_positives >= min_events {
            add("run.bloom_fpr", fp / (fp + neg).max(1.0));
        } else if pr.absent_checked > 0.0 {
            skipped.push(format!(
                "run.bloom_fpr: {:.1} false positives expected, {} measured (< {min_events:.0})",
                pr.false_positives, fp
            ));
        }
    }
    let passed = figures.iter().all(|f| f.relative_error <= p.tolerance);
    Ok(ValidateReport {
        workload: spec.name.clone(),
        keys: keys_loaded,
        ops: run_count,
        shards: p.shards,
        figures,
        skipped,
        tolerance: p.tolerance,
        passed,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

impl ValidateReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "Validation of `{}`: {} keys, {} ops, {} shards ({:.1} s)\n  figure                     predicted      measured   rel. error   (range ± one log part)\n",
            self.workload, self.keys, self.ops, self.shards, self.elapsed_s
        );
        for f in &self.figures {
            s += &format!(
                "  {:24}  {:10.5}  {:12.5}  {:9.2} %   {}{}\n",
                f.name,
                f.predicted,
                f.measured,
                f.relative_error * 100.0,
                if (f.predicted_range.1 - f.predicted_range.0) > 1e-3 * f.predicted.abs() {
                    format!("({:.5}–{:.5})", f.predicted_range.0, f.predicted_range.1)
                } else {
                    String::new()
                },
                if f.relative_error > self.tolerance {
                    "  FAIL"
                } else {
                    ""
                }
            );
        }
        for k in &self.skipped {
            s += &format!("  not compared: {k}\n");
        }
        s += &format!(
            "{} (tolerance {:.0} %)\n",
            if self.passed { "PASS" } else { "FAIL" },
            self.tolerance * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tests::shipped_dir;

    #[test]
    fn relative_error_definition() {
        assert_eq!(Figure::new("x", 0.0, 0.0).relative_error, 0.0);
        assert!((Figure::new("x", 1.1, 1.0).relative_error - 0.1).abs() < 1e-12);
        // The closest of the scenario predictions counts; the central one is reported.
        let f = Figure::ranged("x", &[1.5, 1.05, 2.0], 1.0);
        assert_eq!(f.predicted, 1.5);
        assert_eq!(f.predicted_range, (1.05, 2.0));
        assert!((f.relative_error - 0.05).abs() < 1e-12);
    }

    #[test]
    fn trace_replay_matches_the_model() {
        let spec = WorkloadSpec::load(shipped_dir().join("trace-sample.json")).unwrap();
        let r = run(&spec, &ValidateParams::default()).unwrap();
        assert_eq!((r.keys, r.ops), (1000, 9000));
        assert!(r.figures.len() >= 6, "{}", r.table());
        assert!(r.passed, "{}", r.table());
    }

    #[test]
    fn small_hot_file_rebuilds_match_the_model() {
        // A hot file of 0.3 × the data: dead copies reach a quarter of it, so hot sets are rebuilt
        // (full table rewrites) and the file fills.
        let spec = WorkloadSpec::load(shipped_dir().join("ycsb-a.json")).unwrap();
        let r = run(
            &spec,
            &ValidateParams {
                keys: 20_000,
                ops: 60_000,
                log_capacity_bytes: 256 << 10,
                hot_capacity_factor: 0.3,
                ..ValidateParams::default()
            },
        )
        .unwrap();
        for name in [
            "run.wa_hot",
            "run.hot_hit_ratio",
            "run.wa_index",
            "run.device_reads_per_get",
        ] {
            let f = r.figures.iter().find(|f| f.name == name).unwrap();
            assert!(f.relative_error <= 0.15, "{}", r.table());
        }
    }

    #[test]
    fn ycsb_a_small_run_matches_the_model() {
        let spec = WorkloadSpec::load(shipped_dir().join("ycsb-a.json")).unwrap();
        let r = run(
            &spec,
            &ValidateParams {
                keys: 20_000,
                ops: 40_000,
                log_capacity_bytes: 256 << 10,
                ..ValidateParams::default()
            },
        )
        .unwrap();
        for f in &r.figures {
            assert!(f.relative_error < 0.25, "{}", r.table());
        }
    }
}
