//! `simulate validate`: runs a workload, scaled down, against a real temporary store and compares what
//! the models predict with the engine's counters: write amplification per tier, device reads per get,
//! the hot-file hit ratio and the Bloom filter's false-positive rate, each with its relative error.
//!
//! The prediction ([`predict`]) never looks at the store: it walks the engine's rules (log segments of
//! `log_capacity_bytes` flushed as soon as they fill, flush = newest record per key, bucket doubling on entry
//! bytes, hot copies for keys rewritten within a log part, the filter re-sized to twice the table's
//! keys on growth) with the expected values of [`crate::model`], per shard. [`run`] then drives the
//! same workload through `tierkv::Db` and reads `Db::stats()`.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::bloom::{crate_sizing, fpr_formula};
use crate::error::{check_param, Result};
use crate::model::{self, binned, p_any, p_two};
use crate::skew::AccessCurve;
use crate::table::poisson_overflow;
use crate::workload::{Distribution, Op, OpStream, WorkloadSpec};

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
    /// The engine's counters.
    pub measured: f64,
    /// `|predicted − measured| / |measured|` (0 when both are 0).
    pub relative_error: f64,
}

impl Figure {
    fn new(name: &str, predicted: f64, measured: f64) -> Figure {
        let relative_error = if predicted == measured {
            0.0
        } else {
            (predicted - measured).abs() / measured.abs().max(1e-12)
        };
        Figure {
            name: name.to_string(),
            predicted,
            measured,
            relative_error,
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
    /// Gets answered by the hot file ÷ gets answered by hot or data file.
    pub hot_hit: f64,
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
    bits: u32,
    filter_capacity: f64,
    filter_inserted: f64,
    hot_used: f64,
}

/// The per-shard walk of the engine's rules.
struct Walk {
    s: ShardModel,
    k: f64,
    v: f64,
    max_load: f64,
    fpr: f64,
    hot_limit: f64,
    shards: f64,
}

/// What one flush adds.
struct FlushIn {
    /// New keys.
    puts: f64,
    /// Distinct existing keys overwritten.
    updated: f64,
    /// Distinct existing keys deleted.
    deleted: f64,
    /// Keys written at least twice in the part (hot candidates).
    rewritten: f64,
}

impl Walk {
    fn buckets(&self) -> f64 {
        (1u64 << self.s.bits) as f64
    }

    fn per_page(&self) -> u64 {
        model::entries_per_page(model::ENTRY_HEADER + self.k) as u64
    }

    /// Applies a flush; returns (index bytes, data bytes, hot bytes) written.
    fn flush(&mut self, f: &FlushIn) -> (f64, f64, f64) {
        let growth_bytes =
            (f.puts + f.updated) * (model::ENTRY_HEADER + model::HOT_OFFSET + self.k);
        let room = |bits: u32| model::PAGE_PAYLOAD * (1u64 << bits) as f64 * self.max_load;
        let old_bits = self.s.bits;
        while self.s.entry_bytes + growth_bytes > room(self.s.bits) && self.s.bits < 32 {
            self.s.bits += 1;
        }
        let rebuild = self.s.bits != old_bits;
        let rec = model::DATA_HEADER + self.v;
        let data = (f.puts + f.updated) * rec;
        let hot_new = f
            .rewritten
            .min(((self.hot_limit - self.s.hot_used) / rec).max(0.0));
        self.s.hot_used += hot_new * rec;
        self.s.table_keys = (self.s.table_keys + f.puts - f.deleted).max(0.0);
        self.s.entry_bytes = self.s.table_keys * (model::ENTRY_HEADER + self.k);
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
        if rebuild || self.s.table_keys > self.s.filter_capacity {
            self.s.filter_capacity = (2.0 * self.s.table_keys).max(1024.0);
            self.s.filter_inserted = self.s.table_keys;
        } else {
            self.s.filter_inserted += f.puts;
        }
        (pages * model::PAGE_SIZE, data, hot_new * rec)
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

/// Predicts the figures of the load phase and the run phase for `keys` keys and `ops` operations.
pub fn predict(
    spec: &WorkloadSpec,
    p: &ValidateParams,
    keys: u64,
    ops: u64,
) -> Result<(PhasePrediction, PhasePrediction)> {
    let w = spec.model()?.with_keys(keys);
    let s = p.shards as f64;
    let (k, v) = (w.key_bytes, w.value_bytes);
    let n_s = keys as f64 / s;
    let cap = p.log_capacity_bytes as f64 - 32.0;
    let load_rec = model::log_record_bytes(k, v);
    let curve = w.curve.clone();
    let mut walk = Walk {
        s: ShardModel {
            table_keys: 0.0,
            entry_bytes: 0.0,
            bits: 0,
            filter_capacity: 1024.0,
            filter_inserted: 0.0,
            hot_used: 0.0,
        },
        k,
        v,
        max_load: tierkv::Options::default().table_max_load,
        fpr: p.bloom_fpr,
        hot_limit: p.hot_capacity_factor * n_s * (model::DATA_HEADER + v),
        shards: s,
    };

    // Load: log parts of `per_part` new keys, then the final flush of the remainder.
    let mut load = PhasePrediction {
        user_bytes: keys as f64 * (k + v),
        log_bytes: keys as f64 * load_rec,
        ..PhasePrediction::default()
    };
    let per_part = (cap / load_rec).floor().max(1.0);
    let mut left = n_s;
    while left > 0.0 {
        let m = left.min(per_part);
        let (i, d, h) = walk.flush(&FlushIn {
            puts: m,
            updated: 0.0,
            deleted: 0.0,
            rewritten: 0.0,
        });
        load.index_bytes += i * s;
        load.data_bytes += d * s;
        load.hot_bytes += h * s;
        left -= m;
    }

    // Run.
    let mix = &spec.mix;
    let writes_per_op = mix.put + mix.update + mix.delete + mix.read_modify_write;
    let gets_per_op = mix.get + mix.read_modify_write + mix.scan * spec.scan_length as f64;
    let (fp, fu, fd) = if writes_per_op > 0.0 {
        (
            mix.put / writes_per_op,
            (mix.update + mix.read_modify_write) / writes_per_op,
            mix.delete / writes_per_op,
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let mean_rec = (fp + fu) * load_rec + fd * model::log_record_bytes(k, 0.0);
    let writes_s = ops as f64 * writes_per_op / s;
    let gets_total = ops as f64 * gets_per_op;
    let mut run = PhasePrediction {
        user_bytes: ops as f64 * writes_per_op * ((fp + fu) * (k + v) + fd * k),
        log_bytes: ops as f64 * writes_per_op * mean_rec,
        gets: gets_total,
        ..PhasePrediction::default()
    };
    let per_part = if writes_per_op > 0.0 {
        (cap / mean_rec).floor().max(1.0)
    } else {
        f64::INFINITY
    };
    let n_global = |walk: &Walk| walk.s.table_keys * walk.shards;
    // Gets are spread evenly over the writes; evaluate the read figures at `steps` points per part.
    let latest = matches!(spec.distribution, Distribution::Latest { .. });
    let mut written = 0.0;
    let mut flushes_done = 0.0;
    let parts = if writes_s > 0.0 {
        (writes_s / per_part).ceil()
    } else {
        1.0
    };
    // Without the background flusher the writer that fills a part flushes it at once (the engine's
    // `after_rotation`), so part j is flushed before part j + 1 serves reads.
    let mut pending: std::collections::VecDeque<FlushIn> = Default::default();
    let mut table_reads = 0.0;
    let mut part = 0.0;
    while part < parts {
        while let Some(f) = pending.pop_front() {
            let (i, d, h) = walk.flush(&f);
            run.index_bytes += i * s;
            run.data_bytes += d * s;
            run.hot_bytes += h * s;
            flushes_done += 1.0;
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
        let room = walk.s.hot_used < walk.hot_limit;
        let upd_per_part = fu * per_part * s;
        let steps = 8;
        for i in 0..steps {
            let window = (frozen + m * (i as f64 + 0.5) / steps as f64) * s;
            let mut log_hit = model::hit_in_recent(&curve, n, window * fu);
            if latest {
                log_hit = (log_hit + curve.hit_fraction(window * fp / n)).min(1.0);
            }
            let table = 1.0 - log_hit;
            let g = gets_per_part / steps as f64;
            run.device_reads += g
                * ((1.0 - spec.missing_fraction) * (log_hit + table * (pages_present + 1.0))
                    + spec.missing_fraction * fpr * pages_absent);
            // Hot hits among table reads: keys not in the log window, weighted by popularity.
            let (hot, tab) = hot_reads(&curve, n, window * fu, upd_per_part, flushes_done, room);
            run.hot_hit += g * (1.0 - spec.missing_fraction) * hot;
            table_reads += g * (1.0 - spec.missing_fraction) * tab;
        }
        run.absent_checked += gets_per_part * spec.missing_fraction;
        run.false_positives += gets_per_part * spec.missing_fraction * fpr;
        if m > 0.0 {
            let upd = fu * m * s;
            pending.push_back(FlushIn {
                puts: fp * m,
                updated: model::expected_distinct(&curve, n, upd) / s,
                deleted: walk.s.table_keys * p_any(1.0 / walk.s.table_keys.max(1.0), fd * m),
                rewritten: model::expected_repeated(&curve, n, upd) / s,
            });
        }
        written += m;
        part += 1.0;
    }
    for f in pending {
        let (i, d, h) = walk.flush(&f);
        run.index_bytes += i * s;
        run.data_bytes += d * s;
        run.hot_bytes += h * s;
    }
    run.hot_hit = if table_reads > 0.0 {
        run.hot_hit / table_reads
    } else {
        0.0
    };
    Ok((load, run))
}

/// Hot-file reads and table reads (per present-key get) while `window` overwrites sit in the log,
/// after `flushes` flushes of parts holding `per_part` overwrites each. A key is read from the table
/// when it is not in the log window; it has a hot copy when the last part that wrote it wrote it at
/// least twice: `P = P(≥2)/P(≥1) · (1 − (1 − P(≥1))^flushes)` per key, weighted by its popularity.
fn hot_reads(
    curve: &AccessCurve,
    n: f64,
    window: f64,
    per_part: f64,
    flushes: f64,
    room: bool,
) -> (f64, f64) {
    let table = binned(curve, n, |p, mass, _| mass * (1.0 - p_any(p, window)));
    if per_part <= 0.0 || flushes <= 0.0 || !room {
        return (0.0, table);
    }
    let hot = binned(curve, n, |p, mass, _| {
        let a = p_any(p, per_part);
        if a <= 0.0 {
            return 0.0;
        }
        mass * (1.0 - p_any(p, window)) * p_two(p, per_part) / a * (1.0 - (1.0 - a).powf(flushes))
    });
    (hot, table)
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
            tmp = tempfile::tempdir().map_err(|source| crate::Error::Io {
                path: std::env::temp_dir(),
                source,
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
    let db = tierkv::Db::open(&dir, opts)?;
    let max_value = spec.value_size.max().max(1) as usize;
    let filler: Vec<u8> = (0..max_value).map(|i| (i * 31 % 251) as u8).collect();

    let (load_ops, run_ops): (Vec<(Vec<u8>, usize)>, Option<Vec<Op>>) = match &spec.trace {
        Some(t) => {
            let (l, r) = crate::trace::replay(t)?;
            (l, Some(r))
        }
        None => (OpStream::new(spec, p.keys, p.seed).load_ops(), None),
    };
    let keys_loaded = load_ops.len() as u64;
    for chunk in load_ops.chunks(1000) {
        let mut b = tierkv::WriteBatch::with_capacity(chunk.len());
        for (k, vlen) in chunk {
            b.put(k.clone(), filler[..*vlen].to_vec());
        }
        db.write_batch(&b)?;
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
    let (pl, pr) = if trace {
        // A trace is summarised into a model; its replay order is not the model's, so only the
        // model-level figures are compared (same as for a synthetic spec).
        predict(
            &trace_spec(spec, &w, keys_loaded, run_count)?,
            p,
            keys_loaded,
            run_count,
        )?
    } else {
        predict(spec, p, p.keys, ops)?
    };
    let user_load = pl.user_bytes;
    figures.push(Figure::new(
        "load.wa_log",
        pl.log_bytes / user_load,
        s0.tiers.log.write_bytes as f64 / user_load,
    ));
    figures.push(Figure::new(
        "load.wa_index",
        pl.index_bytes / user_load,
        s0.tiers.index.write_bytes as f64 / user_load,
    ));
    figures.push(Figure::new(
        "load.wa_data",
        pl.data_bytes / user_load,
        s0.tiers.data.write_bytes as f64 / user_load,
    ));
    let d = |f: fn(&tierkv::Stats) -> u64| (f(&s1) - f(&s0)) as f64;
    if pr.user_bytes > 0.0 {
        let u = pr.user_bytes;
        figures.push(Figure::new(
            "run.wa_log",
            pr.log_bytes / u,
            d(|s| s.tiers.log.write_bytes) / u,
        ));
        figures.push(Figure::new(
            "run.wa_index",
            pr.index_bytes / u,
            d(|s| s.tiers.index.write_bytes) / u,
        ));
        figures.push(Figure::new(
            "run.wa_data",
            pr.data_bytes / u,
            d(|s| s.tiers.data.write_bytes) / u,
        ));
        if pr.hot_bytes > 0.0 || d(|s| s.tiers.hot.write_bytes) > 0.0 {
            figures.push(Figure::new(
                "run.wa_hot",
                pr.hot_bytes / u,
                d(|s| s.tiers.hot.write_bytes) / u,
            ));
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
        figures.push(Figure::new(
            "run.device_reads_per_get",
            pr.device_reads / pr.gets.max(1.0),
            reads / gets,
        ));
        let (hot, data) = (d(|s| s.gets.from_hot), d(|s| s.gets.from_data));
        if hot + data > 0.0 && (pr.hot_hit > 0.0 || hot > 0.0) {
            figures.push(Figure::new(
                "run.hot_hit_ratio",
                pr.hot_hit,
                hot / (hot + data),
            ));
        }
        let (fp, neg) = (d(|s| s.bloom_false_positives), d(|s| s.bloom_negatives));
        if pr.absent_checked > 0.0 && fp + neg > 0.0 {
            figures.push(Figure::new(
                "run.bloom_fpr",
                pr.false_positives / pr.absent_checked,
                fp / (fp + neg),
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
        tolerance: p.tolerance,
        passed,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// A synthetic spec equivalent (for the model) to a trace's summary.
fn trace_spec(
    spec: &WorkloadSpec,
    w: &crate::Workload,
    keys: u64,
    ops: u64,
) -> Result<WorkloadSpec> {
    let _ = (keys, ops);
    let total = w.gets_per_op + w.updates_per_op + w.deletes_per_op;
    let mut s = spec.clone();
    s.trace = None;
    s.keys = keys.max(1);
    s.key_size = crate::workload::SizeDist::Fixed {
        bytes: w.key_bytes.round() as u64,
    };
    s.value_size = crate::workload::SizeDist::Fixed {
        bytes: w.value_bytes.round() as u64,
    };
    s.mix = crate::workload::OpMix {
        get: w.gets_per_op / total,
        update: w.updates_per_op / total,
        delete: w.deletes_per_op / total,
        ..Default::default()
    };
    s.missing_fraction = w.missing_fraction;
    s.distribution = Distribution::Uniform;
    Ok(s)
}

impl ValidateReport {
    /// Human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "Validation of `{}`: {} keys, {} ops, {} shards ({:.1} s)\n  figure                     predicted      measured   rel. error\n",
            self.workload, self.keys, self.ops, self.shards, self.elapsed_s
        );
        for f in &self.figures {
            s += &format!(
                "  {:24}  {:10.5}  {:12.5}  {:9.2} %{}\n",
                f.name,
                f.predicted,
                f.measured,
                f.relative_error * 100.0,
                if f.relative_error > self.tolerance {
                    "  FAIL"
                } else {
                    ""
                }
            );
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
