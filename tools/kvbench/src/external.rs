//! External peers run as processes with the workload mapped onto their own benchmark tools: RocksDB's
//! `db_bench` (Debian `rocksdb-tools`) and tkrzw's `tkrzw_dbm_perf` (Debian `tkrzw-utils`, HashDBM).
//! Owns the flag mapping (and the note of what differs from the spec) and the parsing of their
//! output. A workload a tool cannot express is reported as unsupported rather than approximated
//! beyond recognition. `docs/benchmarks.md` tabulates the mappings.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::measure::{dir_bytes, run_measured};
use crate::result::BenchResult;
use crate::workload::Plan;

/// External engines kvbench knows.
pub const EXTERNAL: &[&str] = &["rocksdb", "tkrzw"];

fn base(plan: &Plan, engine: &str, threads: usize) -> BenchResult {
    BenchResult {
        engine: engine.into(),
        workload: plan.name().into(),
        keys: plan.keys,
        key_bytes: plan.spec.key_size.mean(),
        value_bytes: plan.spec.value_size.mean(),
        threads,
        ..Default::default()
    }
}

/// A `db_bench` benchmark list and extra flags for `plan`, with what differs, or why it cannot.
fn rocksdb_mapping(plan: &Plan) -> Result<(String, Vec<String>, String)> {
    let m = &plan.spec.mix;
    let mut notes = vec!["fillrandom draws keys with replacement (~63 % distinct)".to_string()];
    let skew = !matches!(
        plan.spec.distribution,
        tiersim::workload::Distribution::Uniform
    );
    if skew {
        notes.push("key choice uniform (db_bench readrandom has no Zipf/latest)".into());
    }
    let ops = plan.ops.to_string();
    let (bench, extra) = if plan.load_is_timed() {
        ("fillrandom".to_string(), vec![])
    } else if m.get == 1.0 && plan.spec.missing_fraction == 1.0 {
        (
            "fillrandom,readmissing".into(),
            vec![format!("--reads={ops}")],
        )
    } else if m.get == 1.0 && plan.spec.missing_fraction == 0.0 {
        (
            "fillrandom,readrandom".into(),
            vec![format!("--reads={ops}")],
        )
    } else if m.read_modify_write > 0.0 && m.get + m.read_modify_write >= 0.999 {
        notes.push("updaterandom: every operation is a read-modify-write".into());
        (
            "fillrandom,updaterandom".into(),
            vec![format!("--writes={ops}")],
        )
    } else if m.get + m.update + m.put >= 0.999 && m.get > 0.0 {
        if m.put > 0.0 {
            notes.push("inserts mapped to overwrites of random keys".into());
        }
        let pct = (m.get * 100.0).round() as i64;
        (
            "fillrandom,readrandomwriterandom".into(),
            vec![
                format!("--readwritepercent={pct}"),
                format!("--reads={ops}"),
            ],
        )
    } else {
        bail!(
            "db_bench has no equivalent of workload `{}`'s mix",
            plan.name()
        );
    };
    Ok((bench, extra, notes.join("; ")))
}

/// ops/s and the p50, p99 and p99.9 latencies (µs) of one benchmark.
pub type Parsed = (f64, Option<f64>, Option<f64>, Option<f64>);

/// Parses `name : X micros/op Y ops/sec ...` and the following `Percentiles:` line of benchmark
/// `name` in db_bench output: (ops/s, p50, p99, p99.9).
pub fn parse_db_bench(out: &str, name: &str) -> Option<Parsed> {
    let mut lines = out.lines();
    let mut ops = None;
    let pat = format!("{name} ");
    for l in lines.by_ref() {
        let Some(pos) = l.find(&pat) else { continue };
        let Some(after) = l[pos + pat.len()..].trim_start().strip_prefix(':') else {
            continue;
        };
        let w: Vec<&str> = after.split_whitespace().collect();
        if let Some(i) = w.iter().position(|&x| x == "ops/sec") {
            ops = i.checked_sub(1).and_then(|j| w[j].parse::<f64>().ok());
            break;
        }
    }
    let ops = ops?;
    let mut pct = (None, None, None);
    for l in lines.take(6) {
        if let Some(p) = l.trim().strip_prefix("Percentiles:") {
            let w: Vec<&str> = p.split_whitespace().collect();
            let get = |k: &str| {
                w.iter()
                    .position(|&x| x == k)
                    .and_then(|i| w.get(i + 1))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            pct = (get("P50:"), get("P99:"), get("P99.9:"));
            break;
        }
    }
    Some((ops, pct.0, pct.1, pct.2))
}

/// Runs `db_bench` for `plan` with its store in `dir`.
pub fn run_rocksdb(plan: &Plan, dir: &Path, threads: usize) -> Result<BenchResult> {
    let (bench, extra, notes) = rocksdb_mapping(plan)?;
    let key_size = plan.spec.key_size.mean().round() as u64;
    let value_size = plan.spec.value_size.mean().round() as u64;
    let mut cmd = Command::new("db_bench");
    cmd.arg(format!("--benchmarks={bench}"))
        .arg(format!("--db={}", dir.display()))
        .arg(format!("--num={}", plan.keys))
        .arg(format!("--key_size={key_size}"))
        .arg(format!("--value_size={value_size}"))
        .arg(format!("--threads={threads}"))
        .arg(format!("--seed={}", plan.seed.max(1)))
        .args([
            "--compression_type=none",
            "--histogram=1",
            "--progress_reports=0",
        ])
        // What a user tuning RocksDB for point lookups sets: a Bloom filter (db_bench's default is
        // none, so an absent key would cost a block read per level) and a block cache larger than
        // the 8 MiB default.
        .args(["--bloom_bits=10", "--cache_size=268435456"])
        .args(&extra);
    let m = run_measured(&mut cmd).context("running db_bench (install: tools/install-peers.sh)")?;
    if m.code != Some(0) {
        bail!(
            "db_bench failed ({:?}): {}",
            m.code,
            tail(&m.stderr, &m.stdout)
        );
    }
    let timed = bench.rsplit(',').next().unwrap_or("fillrandom");
    let (ops_s, p50, p99, p999) = parse_db_bench(&m.stdout, timed).with_context(|| {
        format!(
            "no `{timed}` result in db_bench output: {}",
            tail(&m.stdout, "")
        )
    })?;
    let mut r = base(plan, "rocksdb", threads);
    r.ops = if plan.load_is_timed() {
        plan.keys
    } else {
        plan.ops
    };
    r.ops_per_sec = ops_s;
    (r.p50_us, r.p99_us, r.p999_us) = (p50, p99, p999);
    if !plan.load_is_timed() {
        r.load_ops_per_sec = parse_db_bench(&m.stdout, "fillrandom").map(|p| p.0);
    }
    r.bytes_written = m.bytes_written;
    r.peak_rss_bytes = m.peak_rss_bytes;
    r.disk_bytes = dir_bytes(dir);
    let writes = match bench.as_str() {
        b if b.ends_with("readrandomwriterandom") => plan.ops as f64 * (1.0 - plan.spec.mix.get),
        b if b.ends_with("updaterandom") => plan.ops as f64,
        _ => 0.0,
    };
    r.user_bytes_written = ((plan.keys as f64 + writes) * (key_size + value_size) as f64) as u64;
    r.notes = format!(
        "db_bench --benchmarks={bench}, compression none, 10-bit Bloom filter, 256 MiB block cache; {notes}"
    );
    Ok(r)
}

/// Parses `Setting done: ... qps=N` style lines of `tkrzw_dbm_perf`: the qps of phase `phase`.
pub fn parse_tkrzw(out: &str, phase: &str) -> Option<f64> {
    out.lines()
        .find(|l| l.starts_with(&format!("{phase} done:")))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("qps=")))
        .and_then(|v| v.parse().ok())
}

/// Runs `tkrzw_dbm_perf sequence` (HashDBM) for `plan` with its file in `dir`: a set-only process
/// (the load), then for get workloads a get-only process over the same file.
pub fn run_tkrzw(plan: &Plan, dir: &Path, threads: usize) -> Result<BenchResult> {
    let m = &plan.spec.mix;
    let gets = !plan.load_is_timed();
    if gets && !(m.get == 1.0 && plan.spec.missing_fraction == 0.0) {
        bail!(
            "tkrzw_dbm_perf has no equivalent of workload `{}`'s mix",
            plan.name()
        );
    }
    std::fs::create_dir_all(dir)?;
    let value_size = plan.spec.value_size.mean().round() as u64;
    let file = dir.join("casket.tkh");
    let common = |cmd: &mut Command| {
        cmd.args(["sequence", "--dbm", "hash", "--random_key"])
            .arg("--path")
            .arg(&file)
            .arg("--iter")
            .arg((plan.keys / threads as u64).max(1).to_string())
            .arg("--size")
            .arg(value_size.to_string())
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--buckets")
            .arg((plan.keys * 2).to_string())
            .arg("--random_seed")
            .arg(plan.seed.to_string());
    };
    let mut set = Command::new("tkrzw_dbm_perf");
    common(&mut set);
    set.arg("--set_only");
    let ms = run_measured(&mut set)
        .context("running tkrzw_dbm_perf (install: tools/install-peers.sh)")?;
    if ms.code != Some(0) {
        bail!(
            "tkrzw_dbm_perf failed ({:?}): {}",
            ms.code,
            tail(&ms.stderr, &ms.stdout)
        );
    }
    let load = parse_tkrzw(&ms.stdout, "Setting").context("no `Setting done` in tkrzw output")?;
    let mut r = base(plan, "tkrzw", threads);
    r.key_bytes = 8.0;
    let mut notes = vec![
        "tkrzw_dbm_perf sequence, HashDBM, buckets = 2 × keys".to_string(),
        "8-byte keys, drawn with replacement (~63 % distinct)".into(),
        "no latency percentiles reported".into(),
    ];
    r.bytes_written = ms.bytes_written;
    r.peak_rss_bytes = ms.peak_rss_bytes;
    if gets {
        let mut get = Command::new("tkrzw_dbm_perf");
        common(&mut get);
        get.arg("--get_only");
        let mg = run_measured(&mut get).context("running tkrzw_dbm_perf")?;
        if mg.code != Some(0) {
            bail!(
                "tkrzw_dbm_perf failed ({:?}): {}",
                mg.code,
                tail(&mg.stderr, &mg.stdout)
            );
        }
        r.ops_per_sec =
            parse_tkrzw(&mg.stdout, "Getting").context("no `Getting done` in tkrzw output")?;
        r.ops = plan.keys;
        r.load_ops_per_sec = Some(load);
        r.bytes_written += mg.bytes_written;
        r.peak_rss_bytes = r.peak_rss_bytes.max(mg.peak_rss_bytes);
        notes.push("gets = keys (one pass), not the spec's operation count".into());
        if !matches!(
            plan.spec.distribution,
            tiersim::workload::Distribution::Uniform
        ) {
            notes.push("key choice uniform".into());
        }
    } else {
        r.ops_per_sec = load;
        r.ops = plan.keys;
    }
    r.disk_bytes = dir_bytes(dir);
    r.user_bytes_written = plan.keys * (8 + value_size);
    r.notes = notes.join("; ");
    Ok(r)
}

fn tail(a: &str, b: &str) -> String {
    let s = format!("{a}{b}");
    let lines: Vec<&str> = s.lines().rev().take(8).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_db_bench_output() {
        let out = "DB path: [/tmp/dbb]\n\
            readrandom   :       2.531 micros/op 394975 ops/sec 0.051 seconds 20000 operations;   29.0 MB/s\n\
            Microseconds per read:\n\
            Count: 20000 Average: 2.5631  StdDev: 87.14\n\
            Min: 0  Median: 0.6010  Max: 8036\n\
            Percentiles: P50: 0.60 P75: 0.90 P99: 2.51 P99.9: 12.35 P99.99: 4400.00\n";
        let (ops, p50, p99, p999) = parse_db_bench(out, "readrandom").unwrap();
        assert_eq!(ops, 394975.0);
        assert_eq!((p50, p99, p999), (Some(0.60), Some(2.51), Some(12.35)));
        assert!(parse_db_bench(out, "fillrandom").is_none());
    }

    #[test]
    fn parses_tkrzw_output() {
        let out = "Setting done: elapsed_time=0.013209 num_records=12549 qps=1514107 mem=6100000\n";
        assert_eq!(parse_tkrzw(out, "Setting"), Some(1514107.0));
        assert_eq!(parse_tkrzw(out, "Getting"), None);
    }
}
