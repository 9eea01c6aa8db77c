//! What the engine asks of its files: direct I/O with sizes that fit no alignment, device reads per
//! get counted by `stats()`, and a flush that writes each touched page once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::storage::{register_storage, FileBackend, OpenHow, OsStorage, StorageBackend};
use tierkv::{Db, DirectIo, IoEngine, Options, TierStats};

const PAGE: u64 = 4096;

fn direct_options(engine: IoEngine) -> Options {
    Options {
        shards: 2,
        log_capacity_bytes: 256 << 10,
        background_flush: false,
        hot_capacity_bytes: 256 << 10,
        io_engine: engine,
        direct_io: DirectIo::ALL,
        ..Options::default()
    }
}

/// Keys of every length class from 1 to 1024 bytes and values of lengths that are never, or only
/// just, multiples of the 4 KiB alignment.
fn odd_sized_records(rng: &mut SmallRng, n: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    const VALUE_LENS: [usize; 12] = [0, 1, 3, 511, 4095, 4096, 4097, 8191, 12_289, 65_537, 7, 13];
    let mut out = BTreeMap::new();
    for i in 0..n {
        let key_len = match i % 5 {
            0 => 1 + i % 7,
            1 => 1021 + i % 4,
            _ => rng.gen_range(9..300),
        };
        let mut key = format!("{i:08}").into_bytes();
        key.resize(key_len.max(8), b'k');
        if key_len < 8 {
            // Short keys: distinct single bytes and pairs.
            key = vec![(i % 251) as u8 + 1; key_len];
            key.push((i / 251) as u8);
        }
        let value_len = if i % 3 == 0 {
            VALUE_LENS[i % VALUE_LENS.len()]
        } else {
            rng.gen_range(0..3000)
        };
        let seed: u8 = rng.gen();
        let value = (0..value_len)
            .map(|j| seed.wrapping_add(j as u8 ^ (j >> 8) as u8))
            .collect();
        out.insert(key, value);
    }
    out
}

fn check_all(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{when}: key {k:?}");
    }
    let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
    for chunk in keys.chunks(97) {
        let got = db.multi_get(chunk).unwrap();
        for (k, v) in chunk.iter().zip(got) {
            assert_eq!(v.as_ref(), model.get(k), "{when}: multi_get key {k:?}");
        }
    }
}

fn odd_sizes_round_trip(engine: IoEngine) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let mut model = odd_sized_records(&mut rng, 1500);
    let db = Db::open(dir.path(), direct_options(engine)).unwrap();
    for (k, v) in &model {
        db.put(k, v).unwrap();
    }
    check_all(&db, &model, "in the log");
    db.flush().unwrap();
    check_all(&db, &model, "after a flush");
    // Rewrites while flushed make hot copies; read them back through the direct hot file.
    for (i, (k, v)) in model.iter_mut().enumerate() {
        if i % 4 == 0 {
            v.push(b'!');
            db.put(k, v).unwrap();
        }
    }
    db.flush().unwrap();
    db.rebuild_hot_sets().unwrap();
    check_all(&db, &model, "after rewrites");
    let stats = db.stats();
    assert!(stats.tiers.data.read_ops > 0 && stats.tiers.index.read_ops > 0);
    db.close().unwrap();
    let db = Db::open(dir.path(), direct_options(engine)).unwrap();
    check_all(&db, &model, "after reopening");
    let report = db.check(&tierkv::NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn direct_io_with_odd_sizes_positioned_calls() {
    odd_sizes_round_trip(IoEngine::Pread);
}

#[test]
fn direct_io_with_odd_sizes_io_uring() {
    odd_sizes_round_trip(IoEngine::IoUring);
}

fn device_reads(t: &tierkv::TiersStats) -> u64 {
    t.index.read_ops + t.hot.read_ops + t.data.read_ops
}

/// Loads `n` keys with 100-byte values, closes (so everything is in the global table) and reopens.
fn flushed_store(dir: &Path, n: u32, opts: &Options) -> Db {
    let db = Db::open(dir, opts.clone()).unwrap();
    for i in 0..n {
        db.put(format!("key-{i:08}").as_bytes(), &[i as u8; 100])
            .unwrap();
    }
    db.close().unwrap();
    Db::open(dir, opts.clone()).unwrap()
}

#[test]
fn device_reads_per_get() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let opts = Options {
        shards: 4,
        hot_capacity_bytes: 0,
        ..direct_options(IoEngine::Auto)
    };
    let db = flushed_store(dir.path(), n, &opts);
    let before = db.stats().tiers;
    let gets = 4000;
    for i in (0..n).step_by((n / gets) as usize) {
        let v = db.get(format!("key-{i:08}").as_bytes()).unwrap();
        assert_eq!(v, Some(vec![i as u8; 100]));
    }
    let after = db.stats().tiers;
    let per_present = (device_reads(&after) - device_reads(&before)) as f64 / gets as f64;
    assert!(
        per_present >= 1.0,
        "a present get read nothing: {per_present}"
    );
    assert!(
        per_present <= 2.05,
        "{per_present} device reads per present get"
    );
    assert_eq!(after.index.cache_hits, 0);

    let absent = 20_000;
    for i in 0..absent {
        assert_eq!(db.get(format!("nokey-{i:08}").as_bytes()).unwrap(), None);
    }
    let after_absent = db.stats().tiers;
    let per_absent = (device_reads(&after_absent) - device_reads(&after)) as f64 / absent as f64;
    assert!(
        per_absent <= 0.02,
        "{per_absent} device reads per absent get"
    );
    drop(db);

    // With a page cache that holds the whole table, a warm get reads only its value.
    let cached = Options {
        page_cache_bytes: 64 << 20,
        ..opts
    };
    let db = Db::open(dir.path(), cached).unwrap();
    let key = |i: u32| format!("key-{i:08}").into_bytes();
    for i in 0..n {
        db.get(&key(i)).unwrap();
    }
    let warm = db.stats().tiers;
    for i in 0..n {
        assert_eq!(db.get(&key(i)).unwrap(), Some(vec![i as u8; 100]));
    }
    let after = db.stats().tiers;
    let per_cached = (device_reads(&after) - device_reads(&warm)) as f64 / n as f64;
    assert!(
        per_cached <= 1.05,
        "{per_cached} device reads per cached get"
    );
    assert!(after.index.cache_hits - warm.index.cache_hits >= n as u64);
}

/// One write the engine issued: file, offset and length.
type Write = (PathBuf, u64, u64);

/// Passes everything to the OS and records every write.
#[derive(Debug, Default)]
struct RecordingStorage {
    writes: Arc<Mutex<Vec<Write>>>,
}

#[derive(Debug)]
struct RecordingFile {
    inner: Box<dyn FileBackend>,
    path: PathBuf,
    writes: Arc<Mutex<Vec<Write>>>,
}

impl FileBackend for RecordingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        let n = self.inner.write_at(buf, offset)?;
        let mut w = self.writes.lock().unwrap();
        w.push((self.path.clone(), offset, n as u64));
        Ok(n)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
    fn allocate(&self, len: u64) -> std::io::Result<()> {
        self.inner.allocate(len)
    }
    fn map_fd(&self) -> std::os::unix::io::RawFd {
        self.inner.map_fd()
    }
    fn uring_fd(&self) -> Option<std::os::unix::io::RawFd> {
        None
    }
}

impl StorageBackend for RecordingStorage {
    fn open(&self, path: &Path, how: OpenHow) -> std::io::Result<Box<dyn FileBackend>> {
        Ok(Box::new(RecordingFile {
            inner: OsStorage.open(path, how)?,
            path: path.to_path_buf(),
            writes: self.writes.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        OsStorage.remove_file(path)
    }
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        OsStorage.create_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        OsStorage.sync_dir(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        OsStorage.remove_dir_all(path)
    }
}

fn is_index_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("index-"))
}

#[test]
fn a_flush_writes_each_touched_page_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let storage = Arc::new(RecordingStorage::default());
    let writes = storage.writes.clone();
    let _routing = register_storage(&root, storage);
    let opts = Options {
        shards: 2,
        log_capacity_bytes: 16 << 20,
        background_flush: false,
        ..Options::default()
    };
    let db = Db::open(&root, opts).unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    let mut flushes_with_page_writes = 0;
    let mut index_before = TierStats::default();
    let mut model = BTreeMap::new();
    for round in 0..12u8 {
        // Fresh keys and rewrites of old ones, spread over the whole table.
        for _ in 0..3000 {
            let k = rng.gen_range(0..20_000u32);
            db.put(format!("key-{k:08}").as_bytes(), &[round; 40])
                .unwrap();
            model.insert(k, round);
        }
        writes.lock().unwrap().clear();
        let pages_before = db.stats().pages_written;
        db.flush().unwrap();
        let stats = db.stats();
        let pages_written = stats.pages_written - pages_before;
        let index_writes: Vec<Write> = writes
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| is_index_file(p))
            .cloned()
            .collect();
        let mut touched = HashSet::new();
        for (path, offset, len) in &index_writes {
            for page in offset / PAGE..(offset + len).div_ceil(PAGE) {
                assert!(
                    touched.insert((path.clone(), page)),
                    "flush {round}: page {page} of {} written twice",
                    path.display()
                );
            }
        }
        assert!(
            index_writes.len() as u64 <= touched.len() as u64,
            "flush {round}: {} writes for {} pages",
            index_writes.len(),
            touched.len()
        );
        let write_ops = stats.tiers.index.write_ops - index_before.write_ops;
        assert!(
            write_ops <= pages_written,
            "flush {round}: {write_ops} index writes counted for {pages_written} pages"
        );
        if pages_written > 0 {
            flushes_with_page_writes += 1;
        }
        index_before = stats.tiers.index;
    }
    assert!(flushes_with_page_writes >= 10);
    for (k, round) in model {
        let v = db.get(format!("key-{k:08}").as_bytes()).unwrap();
        assert_eq!(v, Some(vec![round; 40]));
    }
}
