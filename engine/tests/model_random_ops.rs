//! Random put/get/delete/write_batch/multi_get/flush/sync/reopen/compact/hot-set rebuild/rebalance
//! sequences checked against a `BTreeMap`.
//! The log is tiny (4 KiB per shard) so flushes, table growth and overflow pages happen constantly.
//! `TIERKV_MODEL_OPS` scales the operation count (default 25 000 per seed, 5 seeds; the I/O-path
//! variants run a fifth of it on 3 seeds each).
//!
//! The same workload runs on every I/O path: buffered reads through maps with positioned calls or
//! io_uring, and direct I/O on every tier with either, with and without the engine's page cache.
//! Whatever the path, the answers must be the model's.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, DirectIo, IoEngine, Options, WriteBatch};

fn key(rng: &mut SmallRng, universe: u32) -> Vec<u8> {
    let k = rng.gen_range(0..universe);
    // A few long keys make buckets overflow into chained pages.
    if k % 17 == 0 {
        format!("long-key-{k:06}-{}", "x".repeat(200 + (k as usize % 300))).into_bytes()
    } else {
        format!("key-{k:06}").into_bytes()
    }
}

fn value(rng: &mut SmallRng) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=4 => 0,
        5..=89 => rng.gen_range(1..120),
        90..=98 => rng.gen_range(120..3000),
        _ => rng.gen_range(3000..9000),
    };
    let b: u8 = rng.gen();
    (0..len).map(|i| b.wrapping_add(i as u8)).collect()
}

/// The I/O path a run uses.
#[derive(Clone, Copy, Debug)]
struct IoPath {
    engine: IoEngine,
    direct: DirectIo,
    page_cache_bytes: u64,
}

const BUFFERED: IoPath = IoPath {
    engine: IoEngine::Auto,
    direct: DirectIo {
        index: false,
        hot: false,
        data: false,
    },
    page_cache_bytes: 0,
};

fn options(seed: u64, io: IoPath) -> Options {
    Options {
        shards: [1, 2, 4][seed as usize % 3],
        log_capacity_bytes: 4096,
        background_flush: seed % 2 == 0,
        hot_capacity_bytes: if seed % 4 < 2 { 64 << 10 } else { 0 },
        io_engine: io.engine,
        direct_io: io.direct,
        page_cache_bytes: io.page_cache_bytes,
        ..Options::default()
    }
}

fn run(seed: u64, ops: usize, io: IoPath) {
    let options = |seed| options(seed, io);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut db = Db::open(dir.path(), options(seed)).unwrap();
    let expected_engine = match io.engine {
        IoEngine::Pread => "pread",
        _ => "io_uring",
    };
    assert_eq!(db.stats().io_engine, expected_engine, "{io:?}");
    let universe = 3000;
    for step in 0..ops {
        match rng.gen_range(0..1000) {
            0..=399 => {
                let (k, v) = (key(&mut rng, universe), value(&mut rng));
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            400..=549 => {
                let k = key(&mut rng, universe);
                db.delete(&k).unwrap();
                model.remove(&k);
            }
            550..=849 => {
                let k = key(&mut rng, universe);
                assert_eq!(
                    db.get(&k).unwrap(),
                    model.get(&k).cloned(),
                    "seed {seed} step {step} key {:?}",
                    String::from_utf8_lossy(&k)
                );
            }
            850..=929 => {
                let mut batch = WriteBatch::new();
                for _ in 0..rng.gen_range(1..60) {
                    let k = key(&mut rng, universe);
                    if rng.gen_bool(0.8) {
                        let v = value(&mut rng);
                        batch.put(k.clone(), v.clone());
                        model.insert(k, v);
                    } else {
                        batch.delete(k.clone());
                        model.remove(&k);
                    }
                }
                db.write_batch(&batch).unwrap();
            }
            930..=969 => {
                let keys: Vec<Vec<u8>> = (0..rng.gen_range(1..30))
                    .map(|_| key(&mut rng, universe))
                    .collect();
                let got = db.multi_get(&keys).unwrap();
                for (k, v) in keys.iter().zip(got) {
                    assert_eq!(v, model.get(k).cloned(), "seed {seed} step {step}");
                }
            }
            970..=989 => db.flush().unwrap(),
            990..=994 => db.sync().unwrap(),
            995..=996 => {
                drop(db);
                db = Db::open(dir.path(), options(seed)).unwrap();
            }
            997 => {
                let shard = rng.gen_range(0..db.shards());
                db.compact_shard(shard, &tierkv::NoProgress).unwrap();
            }
            998 => {
                db.rebuild_hot_sets().unwrap();
            }
            _ => {
                // Rebalance between the seed's shard count and twice it.
                let base = options(seed).shards;
                let target = if db.shards() == base { base * 2 } else { base };
                db = db.rebalance(target, &tierkv::NoProgress).unwrap().0;
            }
        }
    }
    // Full agreement at the end: every model key, and a scan that sees exactly the model.
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "seed {seed} final");
    }
    let mut scanned = BTreeMap::new();
    db.scan(|k, v| {
        assert!(
            scanned.insert(k.to_vec(), v.to_vec()).is_none(),
            "scan repeated a key"
        );
        true
    })
    .unwrap();
    assert_eq!(scanned, model, "seed {seed}: scan differs from the model");
    let stats = db.stats();
    assert_eq!(
        stats.live_keys,
        model.len() as u64,
        "seed {seed}: live key count"
    );
    assert!(stats.flushes > 0);
    if options(seed).hot_capacity_bytes > 0 {
        // Keys rewritten while in the log got hot copies, and gets were served from them (and agreed
        // with the model above).
        assert!(
            stats.gets.from_hot > 0,
            "seed {seed}: no get was served from the hot file"
        );
    } else {
        assert_eq!(stats.gets.from_hot, 0);
    }
    let report = db.check(&tierkv::NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.pages_checked > 0);
    db.close().unwrap();
    // After a clean close everything is in the global table and reopens without replay.
    let db = Db::open(dir.path(), options(seed)).unwrap();
    let s = db.stats();
    assert_eq!(s.live_keys, model.len() as u64);
    assert_eq!(s.per_shard.iter().map(|p| p.log_records).sum::<u64>(), 0);
    for (k, v) in model.iter().take(500) {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
    let index = db.stats().tiers.index;
    assert!(
        index.read_ops > 0,
        "{io:?}: no index page read reached a file"
    );
    if io.page_cache_bytes > 0 {
        // The page just read is cached: asking again is answered from DRAM, not the file.
        let (k, v) = model.iter().next().expect("the model is not empty");
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
        let after = db.stats().tiers.index;
        assert!(after.cache_hits > index.cache_hits, "{io:?}: no cache hit");
    } else {
        assert_eq!(index.cache_hits, 0);
    }
}

fn model_ops() -> usize {
    std::env::var("TIERKV_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25_000)
}

#[test]
fn random_operations_match_a_btreemap() {
    for seed in 0..5 {
        run(seed, model_ops(), BUFFERED);
    }
}

fn run_io_variant(io: IoPath) {
    for seed in 10..13 {
        run(seed, model_ops() / 5, io);
    }
}

#[test]
fn buffered_with_positioned_calls() {
    run_io_variant(IoPath {
        engine: IoEngine::Pread,
        ..BUFFERED
    });
}

#[test]
fn direct_io_with_positioned_calls() {
    run_io_variant(IoPath {
        engine: IoEngine::Pread,
        direct: DirectIo::ALL,
        page_cache_bytes: 0,
    });
}

#[test]
fn direct_io_with_io_uring() {
    run_io_variant(IoPath {
        engine: IoEngine::IoUring,
        direct: DirectIo::ALL,
        page_cache_bytes: 0,
    });
}

#[test]
fn direct_io_with_io_uring_and_page_cache() {
    // A cache smaller than the table so that pages are evicted and read again.
    run_io_variant(IoPath {
        engine: IoEngine::IoUring,
        direct: DirectIo::ALL,
        page_cache_bytes: 64 << 10,
    });
}
