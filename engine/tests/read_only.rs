//! Read-only handles beside a writer: a writer process puts, deletes, flushes constantly (tiny logs),
//! compacts, rebuilds hot sets and rebalances, while reader processes opened before it started read
//! random keys and scan. Every value a reader gets must be one the writer wrote for that key — the
//! values encode their key and version, so garbage, a torn value or another key's value is caught —
//! and once the writer has closed, a refresh must show exactly the writer's final state. Readers
//! never block the writer (it finishes its fixed history whatever they do) and a reader opened before
//! the rebalance keeps working across it.
//!
//! `TIERKV_RO_OPS` sets the writer's operations (default 40 000), `TIERKV_RO_READERS` the reader
//! processes (default 2).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, Error, NoProgress, Options, ReadOnlyDb};

const KEYS: u32 = 3_000;
const SEED: u64 = 0x5EAD_0001;

fn ops() -> u64 {
    std::env::var("TIERKV_RO_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40_000)
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// The value version `v` of `key` holds: `key:v:` then filler; some are longer than a page so that
/// dead extents get reused under the readers.
fn value(key: &[u8], v: u64) -> Vec<u8> {
    let tag = format!("{}:{v}:", String::from_utf8_lossy(key));
    let len = if v % 13 == 0 {
        4_000 + (v % 5_000) as usize
    } else {
        (v % 300) as usize
    };
    tag.bytes()
        .chain((0..).map(|i: u64| b'a' + ((v + i) % 26) as u8))
        .take(len.max(tag.len()))
        .collect()
}

/// Checks that `got` is a value the writer wrote for `key` (some version of it, whole).
fn check_value(key: &[u8], got: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(got);
    let mut parts = text.splitn(3, ':');
    let (k, v) = (parts.next(), parts.next());
    let version: u64 = match (k, v.and_then(|v| v.parse().ok())) {
        (Some(k), Some(v)) if k.as_bytes() == key => v,
        _ => {
            return Err(format!(
                "{}: garbage or another key's value: {:?}",
                String::from_utf8_lossy(key),
                &text[..text.len().min(40)]
            ))
        }
    };
    if value(key, version) != got {
        return Err(format!(
            "{}: version {version} is torn or altered ({} bytes)",
            String::from_utf8_lossy(key),
            got.len()
        ));
    }
    Ok(())
}

/// One writer operation.
enum Op {
    Put(u32, u64),
    Delete(u32),
    Compact(u32),
    HotSets,
    Rebalance(u32),
}

/// The writer's whole history, a function of the seed alone.
fn history(n: u64) -> Vec<Op> {
    let mut rng = SmallRng::seed_from_u64(SEED);
    (0..n)
        .map(|i| match rng.gen_range(0..1000) {
            _ if i == n / 3 => Op::Rebalance(8),
            0..=879 => Op::Put(rng.gen_range(0..KEYS), i),
            880..=996 => Op::Delete(rng.gen_range(0..KEYS)),
            997 | 998 => Op::Compact(rng.gen_range(0..8)),
            _ => Op::HotSets,
        })
        .collect()
}

/// The store after `seed_store` and the history.
fn model(h: &[Op]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m: BTreeMap<Vec<u8>, Vec<u8>> =
        (0..KEYS).map(|i| (key(i), value(&key(i), 0))).collect();
    for op in h {
        match op {
            Op::Put(k, v) => {
                m.insert(key(*k), value(&key(*k), *v));
            }
            Op::Delete(k) => {
                m.remove(&key(*k));
            }
            _ => {}
        }
    }
    m
}

fn options() -> Options {
    Options {
        shards: 4,
        // Tiny logs: a flush every few hundred writes, so slots and extents are reused constantly.
        log_capacity_bytes: 64 << 10,
        hot_capacity_bytes: 256 << 10,
        ..Options::default()
    }
}

/// Applies the history to the store at `dir`, then closes it (everything flushed).
fn write_history(dir: &Path, h: &[Op]) {
    let mut db = Db::open(dir, options()).unwrap();
    for op in h {
        match op {
            Op::Put(k, v) => db.put(&key(*k), &value(&key(*k), *v)).unwrap(),
            Op::Delete(k) => db.delete(&key(*k)).unwrap(),
            Op::Compact(s) => {
                let s = s % db.shards();
                db.compact_shard(s, &NoProgress).unwrap();
            }
            Op::HotSets => {
                db.rebuild_hot_sets().unwrap();
            }
            Op::Rebalance(n) => db = db.rebalance(*n, &NoProgress).unwrap().0,
        }
    }
    db.close().unwrap();
}

#[test]
#[ignore = "run by readers_follow_a_writer_process as a child process"]
fn child_writer() {
    let dir = std::env::var("TIERKV_RO_DIR").unwrap();
    write_history(Path::new(&dir), &history(ops()));
}

/// What a reader did.
#[derive(Debug, Default)]
struct Tally {
    gets: u64,
    found: u64,
    scans: u64,
    scanned: u64,
    stale: u64,
    generations_seen: u64,
}

/// Reads random keys and scans until `done` exists, checking every value; then refreshes and
/// checks the final state against the model.
fn read_until_done(db: &ReadOnlyDb, done: &Path, seed: u64, h: &[Op]) -> Tally {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut t = Tally::default();
    let mut last_generation = 0;
    while !done.exists() {
        for _ in 0..2_000 {
            let k = key(rng.gen_range(0..KEYS));
            t.gets += 1;
            match db.get(&k) {
                Ok(Some(v)) => {
                    t.found += 1;
                    check_value(&k, &v).unwrap();
                }
                Ok(None) => {}
                Err(Error::Stale(_)) => t.stale += 1,
                Err(e) => panic!("get {}: {e}", String::from_utf8_lossy(&k)),
            }
        }
        let generation: u64 = db.stats().per_shard.iter().map(|s| s.generation).sum();
        if generation != last_generation {
            t.generations_seen += 1;
            last_generation = generation;
        }
        if rng.gen_bool(0.1) {
            t.scans += 1;
            let mut seen = std::collections::HashSet::new();
            let r = db.scan(|k, v| {
                check_value(k, v).unwrap();
                assert!(seen.insert(k.to_vec()), "scan repeated a key");
                t.scanned += 1;
                true
            });
            match r {
                Ok(()) | Err(Error::Stale(_)) => {}
                Err(e) => panic!("scan: {e}"),
            }
        }
    }
    // The writer closed: everything is flushed and announced.
    db.refresh().unwrap();
    let want = model(h);
    let mut got = BTreeMap::new();
    db.scan(|k, v| {
        got.insert(k.to_vec(), v.to_vec());
        true
    })
    .unwrap();
    assert!(
        got == want,
        "final state: {} keys, want {}",
        got.len(),
        want.len()
    );
    for i in 0..KEYS {
        let k = key(i);
        assert_eq!(db.get(&k).unwrap(), want.get(&k).cloned(), "final get");
    }
    let report = db.check(&NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    t
}

#[test]
#[ignore = "run by readers_follow_a_writer_process as a child process"]
fn child_reader() {
    let dir = std::env::var("TIERKV_RO_DIR").unwrap();
    let seed: u64 = std::env::var("TIERKV_RO_SEED").unwrap().parse().unwrap();
    let db = Db::open_read_only(&dir).unwrap();
    println!("opened");
    let t = read_until_done(&db, &Path::new(&dir).join("DONE"), seed, &history(ops()));
    let follow = db.stats().read_only.unwrap();
    println!(
        "tally gets={} found={} scans={} scanned={} stale={} generations={} shards={} reloads={} retries={}",
        t.gets,
        t.found,
        t.scans,
        t.scanned,
        t.stale,
        t.generations_seen,
        db.shards(),
        follow.reloads,
        follow.retries
    );
}

/// A store with the first keys in it, so readers have something before the writer starts.
/// Gets every seeded key through `reader`, checking each value.
fn read_every_key(reader: &ReadOnlyDb) {
    for i in 0..KEYS {
        let got = reader.get(&key(i)).unwrap().expect("every key exists");
        check_value(&key(i), &got).unwrap();
    }
}

fn seed_store(dir: &Path) {
    let db = Db::open(dir, options()).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &value(&key(i), 0)).unwrap();
    }
    db.close().unwrap();
}

#[test]
fn readers_follow_a_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    seed_store(&path);
    let readers: usize = std::env::var("TIERKV_RO_READERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let child = |test: &str, seed: usize| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", test, "--nocapture"])
            .args(["--test-threads=1"])
            .env("TIERKV_RO_DIR", &path)
            .env("TIERKV_RO_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut reader_procs = Vec::new();
    for r in 0..readers {
        let mut c = child("child_reader", r);
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("opened") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "reader {r} died");
        }
        reader_procs.push((c, out));
    }
    let started = std::time::Instant::now();
    let writer = child("child_writer", 0).wait_with_output().unwrap();
    assert!(writer.status.success(), "writer failed");
    let writer_secs = started.elapsed().as_secs_f64();
    std::fs::write(path.join("DONE"), b"").unwrap();
    let mut tallies = Vec::new();
    for (r, (mut c, out)) in reader_procs.into_iter().enumerate() {
        let lines: Vec<String> = out.lines().map(|l| l.unwrap()).collect();
        assert!(c.wait().unwrap().success(), "reader {r} failed");
        let tally = lines
            .iter()
            .find(|l| l.starts_with("tally"))
            .unwrap_or_else(|| panic!("reader {r} printed no tally"))
            .clone();
        tallies.push(tally);
    }
    eprintln!("read_only: writer ran {writer_secs:.1} s; readers: {tallies:#?}");
    for t in &tallies {
        let field = |name: &str| -> u64 {
            t.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(field("gets") > 0 && field("found") > 0, "{t}");
        // The reader followed the writer (it saw flushes happen) and across the rebalance.
        assert!(field("generations") >= 2, "{t}");
        assert_eq!(
            field("shards"),
            8,
            "the reader did not follow the rebalance: {t}"
        );
        assert!(
            field("stale") * 100 <= field("gets"),
            "too many stale reads: {t}"
        );
    }
}

/// The same in one process: reader threads beside a writer thread, and a reader that opens while
/// the writer holds the store.
#[test]
fn reader_threads_beside_a_writer_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    seed_store(&path);
    let h = history(12_000);
    let done = path.join("DONE");
    let db = ReadOnlyDb::open(&path).unwrap();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (db, done, h) = (&db, &done, &h);
                s.spawn(move || read_until_done(db, done, 100 + r, h))
            })
            .collect();
        write_history(&path, &h);
        std::fs::write(&done, b"").unwrap();
        for r in readers {
            let t = r.join().unwrap();
            assert!(t.found > 0);
        }
    });
}

#[test]
fn opens_beside_a_held_writer_lock_and_without_a_board() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    assert!(matches!(
        Db::open_read_only(&path),
        Err(Error::NoStore { .. })
    ));
    let w = Db::open(&path, options()).unwrap();
    w.put(b"a", b"1").unwrap();
    assert!(matches!(
        Db::open(&path, options()),
        Err(Error::Locked { .. })
    ));
    let r = Db::open_read_only(&path).unwrap();
    assert_eq!(
        r.get(b"a").unwrap(),
        None,
        "unflushed writes are not visible"
    );
    w.flush().unwrap();
    assert_eq!(
        r.get(b"a").unwrap().as_deref(),
        Some(&b"1"[..]),
        "a flush is seen by the next get"
    );
    w.close().unwrap();
    // A store whose board is gone (written by an older build): reads work, refresh() follows.
    std::fs::remove_file(path.join("PUBLISHED")).unwrap();
    let r = Db::open_read_only(&path).unwrap();
    assert_eq!(r.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    let w = Db::open(&path, options()).unwrap();
    w.put(b"a", b"2").unwrap();
    w.flush().unwrap();
    assert_eq!(
        r.get(b"a").unwrap().as_deref(),
        Some(&b"1"[..]),
        "no board: no news"
    );
    assert!(r.refresh().unwrap());
    assert_eq!(r.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(r.stats().read_only.is_some());
}

/// A reader that does not follow the board keeps its old snapshot while the writer reuses the slots
/// and extents it references: its reads must catch every reused page and value (checksum, slot,
/// bucket, generation), reload and retry — never return what the writer put there since.
#[test]
fn a_reader_left_behind_detects_reuse_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    seed_store(&path);
    let reader = ReadOnlyDb::open(&path).unwrap();
    reader.set_follow(false);
    let writer = Db::open(&path, options()).unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut want: BTreeMap<Vec<u8>, Vec<u8>> =
        (0..KEYS).map(|i| (key(i), value(&key(i), 0))).collect();
    let mut version = 1;
    for round in 0..12 {
        // Rewrite every key (many flushes: every page and every page-sized extent of the reader's
        // snapshot is freed and reused), then read everything through the stale reader.
        for i in 0..KEYS {
            version += 1;
            let v = value(&key(i), version);
            writer.put(&key(i), &v).unwrap();
            want.insert(key(i), v);
        }
        writer.flush().unwrap();
        for _ in 0..KEYS {
            let k = key(rng.gen_range(0..KEYS));
            let got = reader.get(&k).unwrap().expect("every key exists");
            check_value(&k, &got).unwrap();
        }
        if round % 5 == 4 {
            writer.compact(&NoProgress).unwrap();
        }
    }
    let follow = reader.stats().read_only.unwrap();
    eprintln!("left-behind reader: {follow:?}");
    assert!(
        follow.retries > 0,
        "the reader never met a reused page or extent"
    );
    reader.refresh().unwrap();
    for (k, v) in &want {
        assert_eq!(reader.get(k).unwrap().as_ref(), Some(v));
    }
    writer.close().unwrap();
}

/// A following reader keeps the pages it validated validated across reloads while their
/// generation shows the writer did not rewrite them — so a page the writer did rewrite must be
/// validated again: one damaged on disk after the rewrite (header intact, so only the checksum can
/// tell) is refused with a corruption error, never read as entries.
#[test]
fn a_following_reader_revalidates_the_pages_a_flush_rewrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    seed_store(&path);
    let reader = ReadOnlyDb::open(&path).unwrap();
    read_every_key(&reader);
    // Two flushes: the second reuses the slots the first freed — slots whose earlier pages the
    // reader validated.
    let writer = Db::open(&path, options()).unwrap();
    for version in 1..=2 {
        for i in (0..KEYS).step_by(7) {
            writer.put(&key(i), &value(&key(i), version)).unwrap();
        }
        writer.flush().unwrap();
    }

    // Damage one entry byte of every page the last flush of shard 0 wrote (the newest generation).
    let shard_dir = std::fs::read_dir(path.join("ssd"))
        .unwrap()
        .map(|e| e.unwrap().path().join("shard-00000"))
        .find(|p| p.exists())
        .expect("shard 0's directory");
    let index = std::fs::read_dir(&shard_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("index-")
        })
        .expect("shard 0's index file");
    let mut bytes = std::fs::read(&index).unwrap();
    let generation = |page: &[u8]| u64::from_le_bytes(page[16..24].try_into().unwrap());
    let newest = bytes.chunks(4096).skip(1).map(generation).max().unwrap();
    let mut damaged = 0;
    for page in bytes.chunks_mut(4096).skip(1) {
        if generation(page) == newest {
            page[40] ^= 0x10;
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    std::fs::write(&index, &bytes).unwrap();

    let (mut refused, mut read) = (0, 0);
    for i in 0..KEYS {
        match reader.get(&key(i)) {
            Ok(got) => {
                check_value(&key(i), &got.expect("every key exists")).unwrap();
                read += 1;
            }
            Err(Error::Corruption { reason, .. }) => {
                assert!(reason.contains("checksum"), "{reason}");
                refused += 1;
            }
            Err(e) => panic!("key {i}: {e}"),
        }
    }
    eprintln!("{damaged} pages damaged: {refused} gets refused, {read} read");
    assert!(refused > 0, "a damaged rewritten page was read as valid");
    assert!(read > 0);
    drop(writer);
}

/// A writer that opens bumps every count on the board without storing a new checkpoint. A
/// following reader must find its snapshot still the newest and go on reading pages in place — not
/// copy and re-validate every page it reads until each shard's next flush (which once cost a reader
/// beside a freshly opened writer a fifth of its throughput).
#[test]
fn a_reader_reads_in_place_again_after_a_writer_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    seed_store(&path);
    let reader = ReadOnlyDb::open(&path).unwrap();
    read_every_key(&reader);
    let copied = || reader.stats().read_only.unwrap().copied_gets;
    assert_eq!(copied(), 0, "an idle store is read in place");
    let reloads = reader.stats().read_only.unwrap().reloads;
    let writer = Db::open(&path, options()).unwrap();
    read_every_key(&reader);
    assert_eq!(
        copied(),
        0,
        "gets copied their pages after the writer's open announced no new checkpoint"
    );
    assert_eq!(reader.stats().read_only.unwrap().reloads, reloads);
    // The reader still follows a real flush.
    writer.put(&key(0), &value(&key(0), 1)).unwrap();
    writer.flush().unwrap();
    assert_eq!(
        reader.get(&key(0)).unwrap(),
        Some(value(&key(0), 1)),
        "a flush is seen by the next get"
    );
    writer.close().unwrap();
}
