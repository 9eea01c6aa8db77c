//! Readers and writers on the same and different shards while flush, compaction, hot-set rebuilds
//! and syncs run on another thread, checked for lost updates and torn reads.
//!
//! Each writer owns a set of keys and writes increasing versions of each; after a put returns it
//! publishes the version. Every value carries its key, its version and a checksum over a payload whose
//! length depends on the version, so a torn or misdirected read cannot pass. Readers check that a key
//! read after a version was published holds that version or a newer one (no lost update, no stale
//! read from an older table or file), and never one that was not yet issued. Shared keys, written by
//! every writer, must end as the last value one of the writers put.
//!
//! `rebalance` and `split_shard` take the handle by value (`Db::rebalance(self, ..)`): the type
//! system rules out running them beside other threads, so they are checked between rounds here.
//! `TIERKV_CONCURRENCY_SECS` sets the time per round (default 2).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, NoProgress, Options, WriteBatch};

const WRITERS: usize = 2;
const READERS: usize = 2;
const KEYS_PER_WRITER: usize = 400;
const SHARED_KEYS: usize = 8;

fn key(writer: usize, i: usize) -> Vec<u8> {
    format!("w{writer}-k{i:04}").into_bytes()
}

fn shared_key(i: usize) -> Vec<u8> {
    format!("shared-{i}").into_bytes()
}

/// `key|version|payload|crc`: the payload length varies with the version (0..600 bytes).
fn value(key: &[u8], version: u64) -> Vec<u8> {
    let mut v = key.to_vec();
    v.push(b'|');
    v.extend_from_slice(&version.to_le_bytes());
    v.push(b'|');
    let len = (version.wrapping_mul(0x9E37_79B9) % 600) as usize;
    v.extend((0..len).map(|i| (i as u64 ^ version) as u8));
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

/// The version a value holds, after checking it is whole and belongs to `key`.
fn parse(key: &[u8], v: &[u8]) -> u64 {
    assert!(v.len() >= key.len() + 14, "short value for {key:?}");
    let (body, crc) = v.split_at(v.len() - 4);
    assert_eq!(
        crc32fast::hash(body),
        u32::from_le_bytes(crc.try_into().unwrap()),
        "torn value for {}",
        String::from_utf8_lossy(key)
    );
    assert_eq!(&body[..key.len()], key, "value of another key");
    let at = key.len() + 1;
    let version = u64::from_le_bytes(body[at..at + 8].try_into().unwrap());
    assert_eq!(v, value(key, version).as_slice(), "malformed value");
    version
}

struct Shared {
    /// Per writer and key: the version whose put returned (0 = none yet).
    acked: Vec<Vec<AtomicU64>>,
    /// Per writer and key: the highest version whose put started.
    issued: Vec<Vec<AtomicU64>>,
    stop: AtomicBool,
}

fn options() -> Options {
    Options {
        shards: 4,
        log_capacity_bytes: 16 << 10,
        hot_capacity_bytes: 64 << 10,
        ..Options::default()
    }
}

/// One round: writers, readers and maintenance for `secs`; returns (writes, reads, maintenance ops).
fn round(db: &Arc<Db>, shared: &Arc<Shared>, secs: f64, round: u64) -> (u64, u64, u64) {
    shared.stop.store(false, Ordering::SeqCst);
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (db, shared) = (db.clone(), shared.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(round * 100 + w as u64);
            let mut n = 0u64;
            let mut last_shared = vec![None; SHARED_KEYS];
            while !shared.stop.load(Ordering::Relaxed) {
                let i = rng.gen_range(0..KEYS_PER_WRITER);
                let k = key(w, i);
                let version = shared.issued[w][i].load(Ordering::SeqCst) + 1;
                shared.issued[w][i].store(version, Ordering::SeqCst);
                if rng.gen_bool(0.2) {
                    // A batch: this key and a shared key, in one call.
                    let s = rng.gen_range(0..SHARED_KEYS);
                    let sv = value(&shared_key(s), (w as u64) << 40 | round << 32 | n);
                    let mut b = WriteBatch::new();
                    b.put(k.clone(), value(&k, version));
                    b.put(shared_key(s), sv.clone());
                    db.write_batch(&b).unwrap();
                    last_shared[s] = Some(sv);
                } else {
                    db.put(&k, &value(&k, version)).unwrap();
                }
                shared.acked[w][i].store(version, Ordering::SeqCst);
                n += 1;
            }
            (n, last_shared)
        }));
    }
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (db, shared) = (db.clone(), shared.clone());
        readers.push(std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(round * 100 + 50 + r as u64);
            let mut n = 0u64;
            while !shared.stop.load(Ordering::Relaxed) {
                let w = rng.gen_range(0..WRITERS);
                let i = rng.gen_range(0..KEYS_PER_WRITER);
                let k = key(w, i);
                let floor = shared.acked[w][i].load(Ordering::SeqCst);
                let got = db.get(&k).unwrap();
                let ceiling = shared.issued[w][i].load(Ordering::SeqCst);
                match got {
                    None => assert_eq!(floor, 0, "{k:?}: acked version {floor} lost"),
                    Some(v) => {
                        let version = parse(&k, &v);
                        assert!(
                            version >= floor,
                            "{}: read version {version} after {floor} was acknowledged",
                            String::from_utf8_lossy(&k)
                        );
                        assert!(version <= ceiling, "{k:?}: version {version} never issued");
                    }
                }
                if n % 16 == 0 {
                    // multi_get on keys of several shards.
                    let keys: Vec<Vec<u8>> = (0..8)
                        .map(|j| key(w, (i + j * 37) % KEYS_PER_WRITER))
                        .collect();
                    let floors: Vec<u64> = (0..8)
                        .map(|j| {
                            shared.acked[w][(i + j * 37) % KEYS_PER_WRITER].load(Ordering::SeqCst)
                        })
                        .collect();
                    for ((k, v), floor) in keys.iter().zip(db.multi_get(&keys).unwrap()).zip(floors)
                    {
                        let version = v.map_or(0, |v| parse(k, &v));
                        assert!(version >= floor, "multi_get {k:?}: {version} < {floor}");
                    }
                }
                let s = rng.gen_range(0..SHARED_KEYS);
                if let Some(v) = db.get(&shared_key(s)).unwrap() {
                    parse(&shared_key(s), &v);
                }
                n += 1;
            }
            n
        }));
    }
    let maint = {
        let (db, shared) = (db.clone(), shared.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !shared.stop.load(Ordering::Relaxed) {
                match n % 4 {
                    0 => db.flush().unwrap(),
                    1 => {
                        db.compact(&NoProgress).unwrap();
                    }
                    2 => {
                        db.rebuild_hot_sets().unwrap();
                    }
                    _ => db.sync().unwrap(),
                }
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_secs_f64(secs));
    shared.stop.store(true, Ordering::SeqCst);
    let mut writes = 0;
    let mut last_shared: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
    for h in handles {
        let (n, last) = h.join().expect("writer panicked");
        writes += n;
        last_shared.push(last);
    }
    let reads: u64 = readers
        .into_iter()
        .map(|h| h.join().expect("reader panicked"))
        .sum();
    let maintenance = maint.join().expect("maintenance panicked");
    // Shared keys end as the last value some writer put (each writer's later puts supersede its own).
    for s in 0..SHARED_KEYS {
        let finals: Vec<&Vec<u8>> = last_shared.iter().filter_map(|l| l[s].as_ref()).collect();
        let got = db.get(&shared_key(s)).unwrap();
        if !finals.is_empty() {
            let got = got.unwrap_or_else(|| panic!("shared key {s} lost"));
            assert!(
                finals.iter().any(|f| **f == got),
                "shared key {s}: not the last value of any writer"
            );
        }
    }
    (writes, reads, maintenance)
}

/// Every key holds exactly its last acknowledged version.
fn check_exact(db: &Db, shared: &Shared) {
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            let k = key(w, i);
            let acked = shared.acked[w][i].load(Ordering::SeqCst);
            let got = db.get(&k).unwrap().map_or(0, |v| parse(&k, &v));
            assert_eq!(got, acked, "{}", String::from_utf8_lossy(&k));
        }
    }
}

#[test]
fn readers_and_writers_beside_flush_compaction_and_rebalance() {
    let secs: f64 = std::env::var("TIERKV_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared {
        acked: (0..WRITERS)
            .map(|_| (0..KEYS_PER_WRITER).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        issued: (0..WRITERS)
            .map(|_| (0..KEYS_PER_WRITER).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        stop: AtomicBool::new(false),
    });
    let mut db = Db::open(dir.path(), options()).unwrap();
    let start = Instant::now();
    let mut totals = (0, 0, 0);
    for (r, shards) in [(0u64, 8u32), (1, 2), (2, 4)] {
        let arc = Arc::new(db);
        let (w, rd, m) = round(&arc, &shared, secs, r);
        totals = (totals.0 + w, totals.1 + rd, totals.2 + m);
        db = Arc::try_unwrap(arc).expect("threads joined");
        check_exact(&db, &shared);
        // Between rounds: change the shard count (the handle is consumed, so no thread can be using it).
        db = db.rebalance(shards, &NoProgress).unwrap().0;
        check_exact(&db, &shared);
        if r == 1 {
            db = db.split_shard(0, &NoProgress).unwrap().0;
            check_exact(&db, &shared);
        }
    }
    let report = db.check(&NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    check_exact(&db, &shared);
    eprintln!(
        "concurrency: {} writes, {} reads, {} flush/compact/hot/sync runs in {:.1} s, no lost update, no torn read",
        totals.0,
        totals.1,
        totals.2,
        start.elapsed().as_secs_f64()
    );
    assert!(
        totals.0 > 1000 && totals.1 > 1000 && totals.2 > 10,
        "{totals:?}"
    );
}
