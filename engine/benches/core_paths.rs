//! Core-path throughput (issue: engine core): bulk load through `write_batch`, gets of present keys and
//! gets of absent keys, one thread, data in page cache. Prints one JSON line per phase.
//!
//! `cargo bench -p tierkv --bench core_paths -- [--keys N] [--value-size B] [--dir PATH] [--single-puts]`
//! (defaults: 10 000 000 keys of 16–24 bytes, 100-byte values, a temporary directory).

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, Options, WriteBatch};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Key `i`: 16–24 bytes, derived from `i` so gets can regenerate it.
fn key(i: u64, buf: &mut Vec<u8>) {
    buf.clear();
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let extra = (h % 9) as usize;
    buf.extend_from_slice(format!("k{:015}", i).as_bytes());
    buf.extend_from_slice(&b"abcdefgh"[..extra]);
}

fn main() {
    let keys: u64 = arg("--keys")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let value_size: usize = arg("--value-size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let tmp = tempfile::tempdir_in(arg("--dir").unwrap_or_else(|| ".".into())).unwrap();
    // `--store PATH` keeps the store between runs: a store that already holds the keys skips the load
    // (for profiling the read paths alone).
    let store = arg("--store")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let opts = Options::default();
    let db = Db::open(&store, opts).unwrap();
    let preloaded = db.stats().live_keys == keys;
    let mut rng = SmallRng::seed_from_u64(1);
    // Random insertion order.
    let mut order: Vec<u64> = (0..keys).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let value: Vec<u8> = (0..value_size).map(|i| b'a' + (i % 26) as u8).collect();

    let t = Instant::now();
    let mut batch = WriteBatch::with_capacity(1000);
    let mut k = Vec::new();
    // `--single-puts`: load with one `put` per key instead (what a put costs alone).
    let single = std::env::args().any(|a| a == "--single-puts");
    for &i in order.iter().filter(|_| single && !preloaded) {
        key(i, &mut k);
        db.put(&k, &value).unwrap();
    }
    for chunk in order.chunks(1000).filter(|_| !single && !preloaded) {
        batch.clear();
        for &i in chunk {
            key(i, &mut k);
            batch.put(k.as_slice(), value.as_slice());
        }
        db.write_batch(&batch).unwrap();
    }
    db.flush().unwrap();
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"phase\":\"{}\",\"keys\":{keys},\"seconds\":{load_s:.3},\"ops_per_sec\":{:.0}}}",
        if single {
            "load_put_incl_flush"
        } else {
            "load_write_batch_1000_incl_flush"
        },
        keys as f64 / load_s
    );

    if std::env::args().any(|a| a == "--load-only") {
        return;
    }
    let n: u64 = arg("--gets")
        .and_then(|s| s.parse().ok())
        .unwrap_or(keys.min(5_000_000));
    let t = Instant::now();
    let mut found = 0u64;
    for _ in 0..n {
        key(rng.gen_range(0..keys), &mut k);
        found += db.get(&k).unwrap().is_some() as u64;
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(found, n, "every present key must be found");
    println!(
        "{{\"phase\":\"get_present\",\"gets\":{n},\"seconds\":{s:.3},\"ops_per_sec\":{:.0}}}",
        n as f64 / s
    );

    let t = Instant::now();
    let mut absent = 0u64;
    for _ in 0..n {
        key(keys + rng.gen_range(0..keys), &mut k);
        absent += db.get(&k).unwrap().is_none() as u64;
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(absent, n);
    println!(
        "{{\"phase\":\"get_absent\",\"gets\":{n},\"seconds\":{s:.3},\"ops_per_sec\":{:.0}}}",
        n as f64 / s
    );

    let st = db.stats();
    println!(
        "{{\"phase\":\"stats\",\"table_keys\":{},\"dram_bytes_per_flushed_key\":{:.3},\"bloom_false_positives\":{},\"index_reads\":{},\"data_reads\":{},\"disk_bytes\":{}}}",
        st.table_keys,
        st.dram_bytes_per_flushed_key,
        st.bloom_false_positives,
        st.tiers.index.read_ops,
        st.tiers.data.read_ops,
        st.disk_bytes.total
    );

    // Clean close, then reopen: no log to replay, filters loaded from checkpoints.
    let t = Instant::now();
    db.close().unwrap();
    let close_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let db = Db::open(&store, Options::default()).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    key(keys / 2, &mut k);
    assert!(db.get(&k).unwrap().is_some());
    println!("{{\"phase\":\"close_reopen\",\"close_seconds\":{close_s:.3},\"open_seconds\":{open_s:.3}}}");
}
