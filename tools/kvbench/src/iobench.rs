//! `kvbench io`: what tierkv asks of its devices, beside what the device gives `fio`, in one run.
//!
//! Loads a store, then reopens it with direct I/O (`O_DIRECT`) on every tier and a bounded index
//! page cache of its own (default: none), so that every read is a device read the engine counts per
//! tier (`Stats::tiers`). Measures:
//! - device reads per present-key `get` and per absent-key `get` (counter deltas over many gets),
//!   and per present-key `get` once the index pages of the keys read are in the engine's page cache;
//! - `multi_get` throughput at each queue depth `d`: batches of `d` random present keys, which the
//!   engine submits as one io_uring batch of `d` page reads and then one of the value reads
//!   (depth 1 is a plain `get`); keys/s and device reads/s;
//! - `fio` random 4 KiB reads (`--direct=1 --ioengine=io_uring`) at the same depths on the store's own
//!   data files, interleaved with the engine's runs, and the ratio of the engine's device reads/s
//!   to fio's IOPS.
//!
//! Every value read is compared with the value written: a benchmark that returned wrong data would
//! be measuring something else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tierkv::{Db, DirectIo, IoEngine, Options, Stats, WriteBatch};

use crate::measure;
use crate::result::Machine;
use crate::workload::Values;

/// What to measure.
#[derive(Debug, Clone)]
pub struct IoBenchArgs {
    /// Directory for the store (fio reads its data files there).
    pub dir: PathBuf,
    /// Keys to load.
    pub keys: u64,
    /// Value size, bytes.
    pub value_size: usize,
    /// Shards of the store.
    pub shards: u32,
    /// Queue depths (multi_get batch sizes and fio `--iodepth`).
    pub depths: Vec<usize>,
    /// Seconds per measurement.
    pub seconds: f64,
    /// Repeats per depth (the median is reported).
    pub repeat: usize,
    /// The engine's index page cache, bytes (the "allowed" DRAM; the kernel's cache is bypassed).
    pub page_cache_bytes: u64,
    /// Gets per reads-per-get figure.
    pub sample_gets: u64,
    /// Skip fio (figures without the device baseline).
    pub no_fio: bool,
    /// Seed of every random choice.
    pub seed: u64,
}

/// One queue depth: the engine and fio, medians of the repeats.
#[derive(Debug, Clone, Serialize)]
pub struct DepthResult {
    /// Queue depth.
    pub depth: usize,
    /// Keys returned per second by `multi_get` batches of `depth` keys (`get` at depth 1).
    pub keys_per_sec: f64,
    /// Device reads per second those batches issued (the engine's counters).
    pub device_reads_per_sec: f64,
    /// Device reads per key in the run.
    pub device_reads_per_key: f64,
    /// fio random 4 KiB read IOPS at this depth on the store's data files.
    pub fio_iops: Option<f64>,
    /// `device_reads_per_sec / fio_iops`.
    pub device_reads_vs_fio: Option<f64>,
    /// `keys_per_sec / fio_iops`.
    pub keys_vs_fio: Option<f64>,
    /// keys/s of every repeat, in run order.
    pub repeats_keys_per_sec: Vec<f64>,
    /// fio IOPS of every repeat, in run order.
    pub repeats_fio_iops: Vec<f64>,
}

/// The report of `kvbench io`.
#[derive(Debug, Clone, Serialize)]
pub struct IoReport {
    /// Where it ran.
    pub machine: Machine,
    /// The command line.
    pub command: String,
    /// Keys loaded.
    pub keys: u64,
    /// Value size, bytes.
    pub value_size: usize,
    /// Shards.
    pub shards: u32,
    /// Batched I/O engine the store ran with (`stats().io_engine`).
    pub io_engine: String,
    /// Bytes of the data files (HDD tier), which fio reads.
    pub data_file_bytes: u64,
    /// Bytes of the index files (SSD tier).
    pub index_file_bytes: u64,
    /// The engine's index page cache, bytes.
    pub page_cache_bytes: u64,
    /// Device reads per present-key get, index pages not cached.
    pub reads_per_present_get: f64,
    /// Device reads per absent-key get.
    pub reads_per_absent_get: f64,
    /// Device reads per present-key get with the index pages of the keys read cached in DRAM.
    pub reads_per_present_get_index_cached: f64,
    /// One per queue depth.
    pub depths: Vec<DepthResult>,
    /// `fio --version`, or why fio did not run.
    pub fio: String,
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:013}").into_bytes()
}

fn absent_key(i: u64) -> Vec<u8> {
    format!("nokey{i:011}").into_bytes()
}

fn device_reads(s: &Stats) -> u64 {
    let t = &s.tiers;
    t.log.read_ops + t.index.read_ops + t.hot.read_ops + t.data.read_ops
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark.
pub fn run(a: &IoBenchArgs, command: String) -> Result<IoReport> {
    ensure!(a.keys >= 1000, "--keys must be at least 1000");
    ensure!(a.repeat >= 1, "--repeat must be at least 1");
    ensure!(!a.depths.is_empty(), "--depths needs at least one depth");
    let machine = measure::machine(&a.dir);
    let store = a.dir.join("tierkv-io");
    if store.exists() {
        std::fs::remove_dir_all(&store)
            .with_context(|| format!("removing the old store {}", store.display()))?;
    }
    let values = Values::new(a.value_size, a.seed);
    load(&store, a, &values)?;

    let fio = if a.no_fio {
        None
    } else {
        Some(fio_version().context(
            "fio is needed for the device baseline (apt-get install fio), or pass --no-fio",
        )?)
    };

    let uncached = open_direct(&store, a, 0)?;
    let io_engine = uncached.stats().io_engine.clone();
    let mut rng = SmallRng::seed_from_u64(a.seed ^ 0x10);
    let reads_per_present_get = per_get(&uncached, a.sample_gets, |_| {
        let i = rng.gen_range(0..a.keys);
        (key(i), Some(values.get(a.value_size, i).to_vec()))
    })?;
    let reads_per_absent_get = per_get(&uncached, a.sample_gets, |n| (absent_key(n), None))?;

    let data_files = files_named(&store, "data-")?;
    let index_files = files_named(&store, "index-")?;
    let data_file_bytes = total_len(&data_files)?;
    let index_file_bytes = total_len(&index_files)?;

    let mut depths = Vec::new();
    for &depth in &a.depths {
        let mut keys_ps = Vec::new();
        let mut reads_ps = Vec::new();
        let mut reads_pk = Vec::new();
        let mut fio_iops = Vec::new();
        for r in 0..a.repeat {
            // Interleaved: the engine and fio see the same machine state, repeat after repeat.
            let m = multi_get_rate(&uncached, a, &values, depth, a.seed ^ ((r as u64 + 1) << 8))?;
            keys_ps.push(m.0);
            reads_ps.push(m.1);
            reads_pk.push(m.1 / m.0);
            if fio.is_some() {
                fio_iops.push(fio_randread(&data_files, depth, a.seconds)?);
            }
        }
        let repeats_keys_per_sec = keys_ps.clone();
        let repeats_fio_iops = fio_iops.clone();
        let keys_per_sec = median(&mut keys_ps);
        let device_reads_per_sec = median(&mut reads_ps);
        let fio_iops = (!fio_iops.is_empty()).then(|| median(&mut fio_iops));
        depths.push(DepthResult {
            depth,
            keys_per_sec,
            device_reads_per_sec,
            device_reads_per_key: median(&mut reads_pk),
            fio_iops,
            device_reads_vs_fio: fio_iops.map(|f| device_reads_per_sec / f),
            keys_vs_fio: fio_iops.map(|f| keys_per_sec / f),
            repeats_keys_per_sec,
            repeats_fio_iops,
        });
    }
    uncached.close().context("closing the store")?;

    // Index pages cached: read a sample once to fill the cache, then measure the same sample.
    let cache = (index_file_bytes + (1 << 20)).max(a.page_cache_bytes);
    let cached = open_direct(&store, a, cache)?;
    let sample: Vec<u64> = {
        let mut rng = SmallRng::seed_from_u64(a.seed ^ 0x20);
        (0..a.sample_gets.min(a.keys))
            .map(|_| rng.gen_range(0..a.keys))
            .collect()
    };
    let pass = |db: &Db| {
        let mut it = sample.iter();
        per_get(db, sample.len() as u64, |_| {
            let i = *it.next().expect("one key per get");
            (key(i), Some(values.get(a.value_size, i).to_vec()))
        })
    };
    pass(&cached)?;
    let reads_per_present_get_index_cached = pass(&cached)?;
    cached.close().context("closing the store")?;

    Ok(IoReport {
        machine,
        command,
        keys: a.keys,
        value_size: a.value_size,
        shards: a.shards,
        io_engine,
        data_file_bytes,
        index_file_bytes,
        page_cache_bytes: a.page_cache_bytes,
        reads_per_present_get,
        reads_per_absent_get,
        reads_per_present_get_index_cached,
        depths,
        fio: fio.unwrap_or_else(|| "not run (--no-fio)".to_string()),
    })
}

/// Loads `a.keys` keys through buffered writes and flushes them into the global tables.
fn load(store: &Path, a: &IoBenchArgs, values: &Values) -> Result<()> {
    let o = Options {
        shards: a.shards,
        ..Options::default()
    };
    let db =
        Db::open(store, o).with_context(|| format!("creating the store {}", store.display()))?;
    let mut b = WriteBatch::with_capacity(1000);
    for i in 0..a.keys {
        b.put(key(i), values.get(a.value_size, i));
        if b.len() == 1000 {
            db.write_batch(&b)?;
            b = WriteBatch::with_capacity(1000);
        }
    }
    db.write_batch(&b)?;
    db.flush().context("flushing the loaded keys")?;
    db.close().context("closing the loaded store")?;
    Ok(())
}

fn open_direct(store: &Path, a: &IoBenchArgs, page_cache_bytes: u64) -> Result<Db> {
    let o = Options {
        shards: a.shards,
        create_if_missing: false,
        background_flush: false,
        io_engine: IoEngine::Auto,
        direct_io: DirectIo::ALL,
        page_cache_bytes,
        ..Options::default()
    };
    Db::open(store, o).with_context(|| format!("opening {} with direct I/O", store.display()))
}

/// Device reads per `get` over `n` gets of the keys `next` yields, each checked against its value.
fn per_get(
    db: &Db,
    n: u64,
    mut next: impl FnMut(u64) -> (Vec<u8>, Option<Vec<u8>>),
) -> Result<f64> {
    let before = device_reads(&db.stats());
    for g in 0..n {
        let (k, want) = next(g);
        let got = db.get(&k)?;
        if got != want {
            bail!(
                "wrong value for key {}: the store returned {:?} bytes, {:?} were written",
                String::from_utf8_lossy(&k),
                got.map(|v| v.len()),
                want.map(|v| v.len())
            );
        }
    }
    Ok((device_reads(&db.stats()) - before) as f64 / n.max(1) as f64)
}

/// (keys/s, device reads/s) of batches of `depth` random present keys for `a.seconds`.
fn multi_get_rate(
    db: &Db,
    a: &IoBenchArgs,
    values: &Values,
    depth: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let budget = Duration::from_secs_f64(a.seconds);
    let before = device_reads(&db.stats());
    let start = Instant::now();
    let mut done = 0u64;
    let mut ids = vec![0u64; depth];
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(); depth];
    while start.elapsed() < budget {
        for (id, k) in ids.iter_mut().zip(keys.iter_mut()) {
            *id = rng.gen_range(0..a.keys);
            *k = key(*id);
        }
        let got = if depth == 1 {
            vec![db.get(&keys[0])?]
        } else {
            db.multi_get(&keys)?
        };
        for (id, v) in ids.iter().zip(&got) {
            if v.as_deref() != Some(values.get(a.value_size, *id)) {
                bail!("multi_get returned a wrong value for key {}", id);
            }
        }
        done += depth as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let reads = device_reads(&db.stats()) - before;
    Ok((done as f64 / secs, reads as f64 / secs))
}

/// Files under `dir` whose name starts with `prefix`, sorted.
fn files_named(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn total_len(files: &[PathBuf]) -> Result<u64> {
    files.iter().try_fold(0u64, |sum, f| {
        Ok(sum
            + std::fs::metadata(f)
                .with_context(|| f.display().to_string())?
                .len())
    })
}

fn fio_version() -> Result<String> {
    let out = Command::new("fio").arg("--version").output()?;
    ensure!(out.status.success(), "fio --version failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// fio's random 4 KiB read IOPS at `depth` over `files` (direct I/O, io_uring, read-only).
fn fio_randread(files: &[PathBuf], depth: usize, seconds: f64) -> Result<f64> {
    ensure!(
        !files.is_empty(),
        "the store has no data files for fio to read"
    );
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let out = Command::new("fio")
        .args([
            "--name=randread",
            "--readonly",
            "--rw=randread",
            "--bs=4k",
            "--direct=1",
            "--ioengine=io_uring",
            "--numjobs=1",
            "--time_based",
            "--output-format=json",
        ])
        .arg(format!("--filename={}", names.join(":")))
        .arg(format!("--iodepth={depth}"))
        .arg(format!("--runtime={}ms", (seconds * 1000.0) as u64))
        .output()
        .context("running fio")?;
    ensure!(
        out.status.success(),
        "fio failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    parse_fio_iops(&String::from_utf8_lossy(&out.stdout))
}

/// The read IOPS of fio's JSON output (the first job).
pub fn parse_fio_iops(json: &str) -> Result<f64> {
    // fio may print notes before the JSON object.
    let start = json.find('{').context("fio printed no JSON")?;
    let v: serde_json::Value = serde_json::from_str(&json[start..]).context("fio's JSON")?;
    v["jobs"][0]["read"]["iops"]
        .as_f64()
        .context("fio's JSON has no jobs[0].read.iops")
}

/// The report as Markdown.
pub fn markdown(r: &IoReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "## tierkv device reads (direct I/O on every tier)\n\n\
         {} keys, {}-byte values, {} shards, io engine {}; data files {:.1} MiB, index files {:.1} MiB, \
         engine page cache {} B; {} on {} ({}), {} cores, kernel {}; fio: {}\n\n",
        r.keys,
        r.value_size,
        r.shards,
        r.io_engine,
        r.data_file_bytes as f64 / (1 << 20) as f64,
        r.index_file_bytes as f64 / (1 << 20) as f64,
        r.page_cache_bytes,
        r.machine.dir,
        r.machine.device,
        r.machine.file_system,
        r.machine.cores,
        r.machine.kernel,
        r.fio
    ));
    s.push_str("| device reads per get | value |\n|---|---:|\n");
    s.push_str(&format!(
        "| present key | {:.3} |\n| present key, index pages cached | {:.3} |\n| absent key | {:.4} |\n\n",
        r.reads_per_present_get, r.reads_per_present_get_index_cached, r.reads_per_absent_get
    ));
    s.push_str(
        "| queue depth | keys/s | device reads/s | reads/key | fio IOPS | reads/s ÷ fio | keys/s ÷ fio |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    for d in &r.depths {
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.3} | {} | {} | {} |\n",
            d.depth,
            d.keys_per_sec,
            d.device_reads_per_sec,
            d.device_reads_per_key,
            opt(d.fio_iops, &|v| format!("{v:.0}")),
            opt(d.device_reads_vs_fio, &|v| format!("{:.0}%", v * 100.0)),
            opt(d.keys_vs_fio, &|v| format!("{:.0}%", v * 100.0)),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fio_json_after_notes() {
        let out = "note: both iodepth >= 1 and synchronous I/O engine are selected\n\
                   {\"fio version\":\"fio-3.33\",\"jobs\":[{\"jobname\":\"randread\",\"read\":{\"iops\":27831.5}}]}";
        assert_eq!(parse_fio_iops(out).unwrap(), 27831.5);
        assert!(parse_fio_iops("no json").is_err());
        assert!(parse_fio_iops("{\"jobs\":[]}").is_err());
    }
}
