//! Gets on a writer handle take no lock while their shard's log is empty (they answer from the
//! published snapshot, `Shard::get_while_quiet`). Here a writer thread puts a few keys and flushes,
//! round after round — so every shard's log keeps going from empty to not empty and back, its
//! snapshot is replaced, and its page slots and value extents are reused — while reader threads get
//! random keys and check each answer: never older than the version published (after its put
//! returned) before the get began, never a version not yet issued, never garbage (every value encodes
//! its key and version, with a length that depends on the version, some past 4 KiB so extents are
//! reused too).
//!
//! `TIERKV_QUIET_SECS` sets the running time (default 2).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, Options};

const KEYS: usize = 300;
const READERS: usize = 2;

fn key(i: usize) -> Vec<u8> {
    format!("quiet-{i:04}").into_bytes()
}

/// `key:version:` then filler up to a length set by the version (40 B to 6 KiB).
fn value(key: &[u8], version: u64) -> Vec<u8> {
    let mut v = format!("{}:{version}:", String::from_utf8_lossy(key)).into_bytes();
    let len = 40 + (version.wrapping_mul(2_654_435_761) % 6_100) as usize;
    let fill = (version % 251) as u8;
    v.resize(len.max(v.len()), fill);
    v
}

/// The version a value encodes, checked against its key and its filler.
fn version_of(key: &[u8], v: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(v);
    let mut parts = text.splitn(3, ':');
    let k = parts.next().unwrap_or_default();
    assert_eq!(k.as_bytes(), key, "a value of another key");
    let version: u64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("garbage for {}", String::from_utf8_lossy(key)));
    assert_eq!(v, value(key, version).as_slice(), "a torn value");
    version
}

#[test]
fn lock_free_gets_follow_puts_and_flushes() {
    let secs: f64 = std::env::var("TIERKV_QUIET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        shards: 2,
        log_capacity_bytes: 256 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &value(&key(i), 0)).unwrap();
    }
    db.flush().unwrap();
    let issued: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
    let published: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let (rounds, gets) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (db, issued, published, stop) = (&db, &issued, &published, &stop);
                s.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(r as u64 + 1);
                    let mut gets = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let i = rng.gen_range(0..KEYS);
                        let floor = published[i].load(Ordering::Acquire);
                        let got = db.get(&key(i)).unwrap().expect("every key exists");
                        let v = version_of(&key(i), &got);
                        let ceiling = issued[i].load(Ordering::Acquire);
                        assert!(
                            v >= floor,
                            "key {i}: read version {v}, {floor} was published"
                        );
                        assert!(
                            v <= ceiling,
                            "key {i}: read version {v}, only {ceiling} issued"
                        );
                        gets += 1;
                    }
                    gets
                })
            })
            .collect();
        let mut rng = SmallRng::seed_from_u64(99);
        let started = Instant::now();
        let mut rounds = 0u64;
        while started.elapsed() < Duration::from_secs_f64(secs) {
            for _ in 0..8 {
                let i = rng.gen_range(0..KEYS);
                let v = issued[i].load(Ordering::Relaxed) + 1;
                issued[i].store(v, Ordering::Release);
                db.put(&key(i), &value(&key(i), v)).unwrap();
                published[i].store(v, Ordering::Release);
            }
            db.flush().unwrap();
            rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let gets: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        (rounds, gets)
    });
    eprintln!("{rounds} put-and-flush rounds, {gets} checked gets");
    assert!(rounds >= 20 && gets >= 1000, "too little happened to test");
    for (i, last) in issued.iter().enumerate() {
        let got = db.get(&key(i)).unwrap().unwrap();
        assert_eq!(version_of(&key(i), &got), last.load(Ordering::Relaxed));
    }
    db.close().unwrap();
}
