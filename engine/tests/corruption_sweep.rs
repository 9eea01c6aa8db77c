//! Corruption sweeps over a real store (every file type present: log segments with put, delete and
//! batch records, index pages with overflow chains, data and hot files, checkpoint, sync point,
//! manifest):
//!
//! * the live log truncated (and, separately, zeroed) at every byte offset: the store opens and holds
//!   exactly the history cut before the first damaged record — never a hole, never a wrong value;
//! * the same across two shards on a crash image whose sync point is older than the logs: recovery
//!   cuts the global history at the first missing record;
//! * single flipped bits in every record header of the log (and sampled payload bits): open refuses
//!   with `Error::Corruption` naming the segment and the damaged record's offset, except in the last
//!   record, which is indistinguishable from a torn write and is dropped (a correct prefix);
//! * single flipped bits in live data-file and hot-file records and index pages: `Db::check` (what
//!   `kvtool check` runs) reports each with its file and the record's or page's offset, and a reopened
//!   store answers every get with the written value or a `Corruption` error naming that file;
//! * single flipped bits in file headers, checkpoints, the sync point and the manifest: open refuses
//!   with a typed error naming the file, or (sync point) falls back to the other slot and still holds
//!   exactly the written history.
//!
//! The default run flips every bit of every header and samples payload bits; set
//! `TIERKV_CORRUPTION_EXHAUSTIVE=1` to flip every bit of every file region (minutes).
//! Counts are printed with `--nocapture`.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use tierkv::format::{LOG_HEADER, PAGE_HEADER, PAGE_SIZE, RECORD_HEADER, VALUE_RECORD_HEADER};
use tierkv::{Db, Error, NoProgress, Options, WriteBatch};

// ---------------------------------------------------------------------------------------------
// Scratch space, images and the write history.

/// A directory on tmpfs when there is one (thousands of opens, each with fsyncs), else the default.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tierkv-sweep")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn exhaustive() -> bool {
    std::env::var("TIERKV_CORRUPTION_EXHAUSTIVE").is_ok_and(|v| v != "0" && !v.is_empty())
}

/// Every file of a store, by path relative to the store, with its bytes: a crash image.
#[derive(Clone)]
struct Image {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Image {
    fn take(store: &Path) -> Image {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_path_buf();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(store, store, &mut files);
        Image { files }
    }

    /// Writes the image to `dst`, replacing whatever is there.
    fn restore(&self, dst: &Path) {
        let _ = std::fs::remove_dir_all(dst);
        for (rel, bytes) in &self.files {
            let p = dst.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
    }

    /// The one file whose name starts with `prefix` in a directory whose path contains `dir_part`.
    fn find(&self, dir_part: &str, prefix: &str) -> Vec<PathBuf> {
        self.files
            .keys()
            .filter(|p| {
                p.to_str().unwrap().contains(dir_part)
                    && p.file_name().unwrap().to_str().unwrap().starts_with(prefix)
            })
            .cloned()
            .collect()
    }

    fn one(&self, dir_part: &str, prefix: &str) -> PathBuf {
        let v = self.find(dir_part, prefix);
        assert_eq!(v.len(), 1, "{prefix} files in {dir_part}: {v:?}");
        v[0].clone()
    }

    /// The newest log segment of a shard (the live one).
    fn live_log(&self, shard: u32) -> PathBuf {
        self.find(&format!("shard-{shard:05}"), "log-")
            .into_iter()
            .max_by_key(|p| log_seq(p))
            .expect("a live log segment")
    }
}

fn log_seq(p: &Path) -> u64 {
    let name = p.file_name().unwrap().to_str().unwrap();
    name.trim_start_matches("log-")
        .trim_end_matches(".tkv")
        .parse()
        .unwrap()
}

/// One acknowledged operation: the key and its value afterwards (`None` = deleted).
type Op = (Vec<u8>, Option<Vec<u8>>);

/// The write history, in acknowledgement order (one writer thread, so also sequence order).
#[derive(Default, Clone)]
struct History {
    ops: Vec<Op>,
    keys: Vec<Vec<u8>>,
}

impl History {
    fn state(&self, k: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut m = BTreeMap::new();
        for (key, v) in &self.ops[..k] {
            match v {
                Some(v) => m.insert(key.clone(), v.clone()),
                None => m.remove(key),
            };
        }
        m
    }

    /// Every `k` such that the first `k` operations leave exactly `seen`.
    fn prefixes_matching(&self, seen: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<usize> {
        // Keys whose current value differs from `seen`, maintained as `k` grows.
        let mut cur: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
        let mut mismatched = seen.len();
        let mut out = Vec::new();
        if mismatched == 0 {
            out.push(0);
        }
        for (i, (key, v)) in self.ops.iter().enumerate() {
            let want = seen.get(key).map(|v| v.as_slice());
            let before = cur.get(key.as_slice()).copied();
            match v {
                Some(v) => cur.insert(key, v),
                None => cur.remove(key.as_slice()),
            };
            let after = cur.get(key.as_slice()).copied();
            mismatched = mismatched + usize::from(after != want) - usize::from(before != want);
            if mismatched == 0 {
                out.push(i + 1);
            }
        }
        out
    }
}

/// Every key's value in `db`; the first error when a get fails.
fn observe(db: &Db, h: &History) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    let mut m = BTreeMap::new();
    for k in &h.keys {
        if let Some(v) = db.get(k)? {
            m.insert(k.clone(), v);
        }
    }
    Ok(m)
}

/// Asserts `db` holds exactly the history's first `k` operations.
fn assert_prefix(db: &Db, h: &History, k: usize, what: &str) {
    let seen = observe(db, h).unwrap_or_else(|e| panic!("{what}: get failed: {e}"));
    let matching = h.prefixes_matching(&seen);
    assert!(
        matching.contains(&k),
        "{what}: store is not the history cut at {k} (it matches cuts {matching:?} of {})",
        h.ops.len()
    );
}

fn options(shards: u32) -> Options {
    Options {
        shards,
        log_capacity_bytes: 8192,
        hot_capacity_bytes: 64 << 10,
        // Full primary pages before the table grows: buckets overflow into chained pages.
        table_max_load: 1.0,
        // Flushes run in the writer: after `sync` nothing runs in the background, so a copy of the
        // files is exactly what a crash at that moment would leave.
        background_flush: false,
        ..Options::default()
    }
}

fn value_for(i: usize, key: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let pad = rng.gen_range(0..40);
    let mut v = format!(
        "v{i}-{}-",
        String::from_utf8_lossy(&key[..key.len().min(8)])
    )
    .into_bytes();
    v.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, pad));
    v
}

/// Runs `n` random operations (puts, deletes, batches) on `db`, recording them in `h`.
fn random_ops(db: &Db, h: &mut History, rng: &mut impl Rng, n: usize, long_keys: bool) {
    let pick = |rng: &mut dyn rand::RngCore| -> Vec<u8> {
        if long_keys && rng.gen_range(0..5) == 0 {
            // 800–1000-byte keys: four fill a page, so some buckets need overflow pages.
            let n = rng.gen_range(0..64u32);
            let mut k = format!("long{n:02}-").into_bytes();
            k.resize(800 + n as usize * 3, b'L');
            k
        } else {
            format!("key{:03}", rng.gen_range(0..150u32)).into_bytes()
        }
    };
    let mut done = 0;
    while done < n {
        let i = h.ops.len();
        match rng.gen_range(0..10) {
            0 => {
                let k = pick(rng);
                db.delete(&k).unwrap();
                h.ops.push((k, None));
                done += 1;
            }
            1 | 2 => {
                let mut b = WriteBatch::new();
                for j in 0..rng.gen_range(2..6) {
                    let k = pick(rng);
                    if rng.gen_range(0..4) == 0 {
                        b.delete(k.clone());
                        h.ops.push((k, None));
                    } else {
                        let v = value_for(i + j, &k, rng);
                        b.put(k.clone(), v.clone());
                        h.ops.push((k, Some(v)));
                    }
                    done += 1;
                }
                db.write_batch(&b).unwrap();
            }
            _ => {
                let k = pick(rng);
                let v = value_for(i, &k, rng);
                db.put(&k, &v).unwrap();
                h.ops.push((k, Some(v)));
                done += 1;
            }
        }
    }
    let mut keys: Vec<Vec<u8>> = h.ops.iter().map(|o| o.0.clone()).collect();
    keys.sort();
    keys.dedup();
    h.keys = keys;
}

/// A store with every file type, and two crash images of it: `flushed` (all in the global tables,
/// hot copies made, the live log empty) and `live` (then 60 more operations, synced, in the log).
struct Built {
    history_flushed: usize,
    history: History,
    flushed: Image,
    live: Image,
}

fn build(store: &Path, shards: u32, seed: u64) -> Built {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut h = History::default();
    let db = Db::open(store, options(shards)).unwrap();
    random_ops(&db, &mut h, &mut rng, 900, true);
    // Reads make keys hot; the rebuild copies them into the hot file.
    for _ in 0..3 {
        for k in h.keys.iter().step_by(3) {
            db.get(k).unwrap();
        }
    }
    db.flush().unwrap();
    let copies = db.rebuild_hot_sets().unwrap();
    assert!(copies > 0, "no hot copies");
    let stats = db.stats();
    assert!(stats.flushes >= 5, "flushes {}", stats.flushes);
    assert!(
        stats.per_shard.iter().any(|s| s.overflow_pages > 0),
        "overflow pages {:?}",
        stats
            .per_shard
            .iter()
            .map(|s| s.overflow_pages)
            .collect::<Vec<_>>()
    );
    assert_prefix(&db, &h, h.ops.len(), "built store");
    let flushed = Image::take(store);
    let history_flushed = h.ops.len();
    random_ops(&db, &mut h, &mut rng, 60, false);
    db.sync().unwrap();
    let live = Image::take(store);
    drop(db);
    Built {
        history_flushed,
        history: h,
        flushed,
        live,
    }
}

// ---------------------------------------------------------------------------------------------
// Independent parsers of the on-disk formats (docs/format/*.md), to know where records and pages are.

#[derive(Debug, Clone)]
struct LogRec {
    off: usize,
    len: usize,
    seq: u64,
}

/// The records of a log segment, up to its all-zero end (`docs/format/log.md`).
fn parse_log(b: &[u8]) -> Vec<LogRec> {
    let mut out = Vec::new();
    let mut at = LOG_HEADER;
    while at + RECORD_HEADER <= b.len() && b[at..at + RECORD_HEADER].iter().any(|&x| x != 0) {
        let key_len = u16::from_le_bytes(b[at + 5..at + 7].try_into().unwrap()) as usize;
        let value_len = u32::from_le_bytes(b[at + 7..at + 11].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(b[at + 11..at + 19].try_into().unwrap());
        let len = RECORD_HEADER + key_len + value_len;
        out.push(LogRec { off: at, len, seq });
        at += len;
    }
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u48_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x[..6].copy_from_slice(&b[at..at + 6]);
    u64::from_le_bytes(x)
}

/// What a shard's checkpoint references: the index pages (slot numbers) of every chain, and every
/// live value record `(offset, bytes)` in the data file and in the hot file.
#[derive(Debug, Default)]
struct Live {
    pages: Vec<u32>,
    overflow_pages: usize,
    data: Vec<(u64, usize)>,
    hot: Vec<(u64, usize)>,
    /// Data-file offsets of the records that also have a hot copy.
    hot_backed: std::collections::BTreeSet<u64>,
}

/// Fixed u64 fields at the start of the checkpoint body (`docs/format/checkpoint.md`).
const CKPT_FIELDS: usize = 24;

fn live_of(ckpt: &[u8], index: &[u8]) -> Live {
    let field = |i: usize| u64::from_le_bytes(ckpt[24 + 8 * i..32 + 8 * i].try_into().unwrap());
    let buckets = field(3) as usize;
    let map_at = 24 + 8 * CKPT_FIELDS;
    let mut live = Live::default();
    for b in 0..buckets {
        let mut slot = u32_at(ckpt, map_at + 4 * b);
        let mut first = true;
        while slot != 0 {
            live.pages.push(slot);
            live.overflow_pages += usize::from(!first);
            first = false;
            let p = &index[slot as usize * PAGE_SIZE..(slot as usize + 1) * PAGE_SIZE];
            assert_eq!(&p[4..8], b"TKVP");
            assert_eq!(u32_at(p, 8) as usize, b, "page's bucket");
            let count = u16::from_le_bytes(p[24..26].try_into().unwrap()) as usize;
            let offsets = PAGE_HEADER + ((count + 1) & !1);
            let entries = offsets + 2 * count;
            for e in 0..count {
                let rel =
                    u16::from_le_bytes(p[offsets + 2 * e..offsets + 2 * e + 2].try_into().unwrap());
                let at = entries + rel as usize;
                let flags = u16::from_le_bytes(p[at..at + 2].try_into().unwrap());
                let value_len = u32_at(p, at + 2) as usize;
                let rec = VALUE_RECORD_HEADER as usize + value_len;
                live.data.push((u48_at(p, at + 6), rec));
                if flags & (1 << 15) != 0 {
                    live.hot.push((u48_at(p, at + 12), rec));
                    live.hot_backed.insert(u48_at(p, at + 6));
                }
            }
            slot = u32_at(p, 12);
        }
    }
    live
}

// ---------------------------------------------------------------------------------------------
// Bit flips.

/// Flips bit `bit` of byte `at` in the file at `path` (in place: a mapped reader sees it).
fn flip(path: &Path, at: u64, bit: u8) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, at).unwrap();
}

/// The bits to flip in a region of `len` bytes: every bit of the first `dense` bytes, then (unless
/// exhaustive) one bit of every `stride`-th byte, rotating through bit positions.
fn bits(len: usize, dense: usize, stride: usize) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    for byte in 0..len {
        if byte < dense || exhaustive() {
            out.extend((0..8).map(|b| (byte, b)));
        } else if byte % stride == 0 {
            out.push((byte, (byte / stride % 8) as u8));
        }
    }
    out
}

fn expect_corruption(r: Result<Db, Error>, file: &Path, what: &str) -> (PathBuf, u64) {
    match r {
        Err(Error::Corruption {
            file: f, offset, ..
        }) => {
            assert!(
                f.ends_with(file),
                "{what}: corruption named {}, expected {}",
                f.display(),
                file.display()
            );
            (f, offset)
        }
        Err(e) => panic!(
            "{what}: expected Corruption naming {}, got {e}",
            file.display()
        ),
        Ok(_) => panic!("{what}: the store opened"),
    }
}

// ---------------------------------------------------------------------------------------------
// The sweeps.

/// The live log of a one-shard store cut at every byte offset, two ways: the file truncated there
/// (`set_len`), and the bytes from there zeroed (a preallocated file whose tail was never written).
/// Each opens and holds exactly the history up to the last record that ends at or before the cut.
#[test]
fn live_log_cut_at_every_byte_offset_recovers_exactly_the_prefix() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 1, 1);
    let h = &built.history;
    let log = built.live.live_log(0);
    let bytes = &built.live.files[&log];
    let recs = parse_log(bytes);
    assert_eq!(
        recs.len(),
        h.ops.len() - built.history_flushed,
        "live log holds the last ops"
    );
    let end = recs.last().map_or(LOG_HEADER, |r| r.off + r.len);
    let work = tmp.path().join("work");
    let mut opens = 0;
    for cut in 0..=end {
        for truncate in [true, false] {
            built.live.restore(&work);
            let path = work.join(&log);
            if truncate {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(cut as u64)
                    .unwrap();
            } else {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.write_all_at(&vec![0u8; bytes.len() - cut], cut as u64)
                    .unwrap();
            }
            let what = format!(
                "cut at {cut} ({})",
                if truncate { "truncated" } else { "zeroed" }
            );
            let db = Db::open(&work, options(1)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let kept = recs.iter().filter(|r| r.off + r.len <= cut).count();
            assert_prefix(&db, h, built.history_flushed + kept, &what);
            opens += 1;
        }
    }
    println!(
        "live log: {} bytes, {} records, {opens} cuts opened",
        end,
        recs.len()
    );
}

/// Two shards, a crash image whose sync point predates the newest 60 records (as when a crash hits
/// before the sync point moved): shard 0's live log cut at every byte offset of its unsynced part.
/// Recovery keeps the global history up to the first record missing in any shard — exactly.
#[test]
fn unsynced_tail_cut_at_every_offset_across_shards_recovers_the_global_prefix() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 2, 2);
    let h = &built.history;
    // The crash image: logs as they were after the last sync, the sync point as of the flush.
    let mut image = built.live.clone();
    let synced = PathBuf::from("SYNCED");
    image
        .files
        .insert(synced.clone(), built.flushed.files[&synced].clone());
    let log0 = image.live_log(0);
    let log1 = image.live_log(1);
    let recs0 = parse_log(&image.files[&log0]);
    let recs1 = parse_log(&image.files[&log1]);
    assert_eq!(
        recs0.len() + recs1.len(),
        h.ops.len() - built.history_flushed
    );
    assert!(
        recs0.len() >= 10 && recs1.len() >= 10,
        "{} {}",
        recs0.len(),
        recs1.len()
    );
    // One writer: the newest operations carry consecutive sequence numbers.
    let first_seq = recs0.iter().chain(&recs1).map(|r| r.seq).min().unwrap();
    let end = recs0.last().unwrap().off + recs0.last().unwrap().len;
    let work = tmp.path().join("work");
    let mut opens = 0;
    for cut in LOG_HEADER..=end {
        image.restore(&work);
        std::fs::OpenOptions::new()
            .write(true)
            .open(work.join(&log0))
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let what = format!("shard 0 cut at {cut}");
        let db = Db::open(&work, options(2)).unwrap_or_else(|e| panic!("{what}: {e}"));
        let lost = recs0
            .iter()
            .filter(|r| r.off + r.len > cut)
            .map(|r| r.seq)
            .min();
        let k = match lost {
            Some(s) => built.history_flushed + (s - first_seq) as usize,
            None => h.ops.len(),
        };
        assert_prefix(&db, h, k, &what);
        opens += 1;
    }
    println!("two shards: {opens} cuts of shard 0's unsynced tail opened");
}

/// Flipped bits in the live log's header and records.
#[test]
fn flipped_log_bits_are_refused_in_the_middle_and_cut_only_at_the_tail() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 1, 3);
    let h = &built.history;
    let log = built.live.live_log(0);
    let bytes = &built.live.files[&log];
    let recs = parse_log(bytes);
    let work = tmp.path().join("work");
    let mut flips = (0, 0, 0); // (refused, cut at the last record, unchanged)
                               // The segment header: refused, naming offset 0.
    for (byte, bit) in bits(LOG_HEADER, LOG_HEADER, 1) {
        built.live.restore(&work);
        flip(&work.join(&log), byte as u64, bit);
        let what = format!("log header bit {byte}.{bit}");
        let (_, off) = expect_corruption(Db::open(&work, options(1)), &log, &what);
        assert_eq!(off, 0, "{what}");
        flips.0 += 1;
    }
    for (r, rec) in recs.iter().enumerate() {
        let last = r + 1 == recs.len();
        for (byte, bit) in bits(rec.len, RECORD_HEADER + 4, 7) {
            built.live.restore(&work);
            flip(&work.join(&log), (rec.off + byte) as u64, bit);
            let what = format!("record {r} at {} byte {byte} bit {bit}", rec.off);
            let opened = Db::open(&work, options(1));
            if last {
                // Indistinguishable from a torn write: dropped, and only it.
                let db = opened.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_prefix(&db, h, h.ops.len() - 1, &what);
                flips.1 += 1;
            } else {
                let (_, off) = expect_corruption(opened, &log, &what);
                assert_eq!(off, rec.off as u64, "{what}: offset of the damaged record");
                flips.0 += 1;
            }
        }
    }
    // Bits past the end of the records (the zeroed rest of the preallocated file): nothing lost.
    let end = recs.last().unwrap().off + recs.last().unwrap().len;
    for (byte, bit) in bits(bytes.len() - end, 64, 97) {
        built.live.restore(&work);
        flip(&work.join(&log), (end + byte) as u64, bit);
        let what = format!("bit {bit} of byte {} past the end", end + byte);
        let db = Db::open(&work, options(1)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_prefix(&db, h, h.ops.len(), &what);
        flips.2 += 1;
    }
    println!(
        "log flips: {} refused, {} cut the last record, {} past the end harmless",
        flips.0, flips.1, flips.2
    );
}

/// Every region a shard's checkpoint references, with how to find a flip in it.
struct Region {
    file: PathBuf,
    /// Start and length of the record or page; a problem must be reported at `start`.
    start: u64,
    len: usize,
}

fn referenced_regions(image: &Image, shard: u32) -> (Vec<Region>, Live) {
    let dir = format!("shard-{shard:05}");
    let ckpt = image.one(&dir, "checkpoint");
    let index = image.one(&dir, "index-");
    let data = image.one(&dir, "data-");
    let hot = image.one(&dir, "hot-");
    let live = live_of(&image.files[&ckpt], &image.files[&index]);
    let mut regions = Vec::new();
    for &s in &live.pages {
        regions.push(Region {
            file: index.clone(),
            start: s as u64 * PAGE_SIZE as u64,
            len: PAGE_SIZE,
        });
    }
    let mut data_recs = live.data.clone();
    data_recs.sort_unstable();
    data_recs.dedup();
    for &(off, len) in &data_recs {
        regions.push(Region {
            file: data.clone(),
            start: off,
            len,
        });
    }
    for &(off, len) in &live.hot {
        regions.push(Region {
            file: hot.clone(),
            start: off,
            len,
        });
    }
    (regions, live)
}

/// Flipped bits in referenced index pages (primary and overflow), data-file records and hot-file
/// records: `check` names each with its file and the page's or record's offset, in the running
/// process (the maps see the flip).
#[test]
fn check_reports_every_flipped_bit_of_pages_and_value_records() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 1, 4);
    let (regions, live) = referenced_regions(&built.flushed, 0);
    assert!(live.overflow_pages > 0, "no overflow pages referenced");
    assert!(!live.hot.is_empty(), "no hot records referenced");
    let work = tmp.path().join("work");
    built.flushed.restore(&work);
    let db = Db::open(&work, options(1)).unwrap();
    let clean = db.check(&NoProgress).unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for region in &regions {
        // Pages: every bit of the header, directory and first entries; values: of the checksum and
        // the first bytes; then sampled (every bit with TIERKV_CORRUPTION_EXHAUSTIVE=1).
        let (dense, stride) = if region.len == PAGE_SIZE {
            (96, 29)
        } else {
            (12, 5)
        };
        let path = work.join(&region.file);
        for (byte, bit) in bits(region.len, dense, stride) {
            let at = region.start + byte as u64;
            flip(&path, at, bit);
            let report = db.check(&NoProgress).unwrap();
            flip(&path, at, bit);
            let what = format!("{} bit {bit} of byte {at}", region.file.display());
            assert!(
                report
                    .problems
                    .iter()
                    .any(|p| p.file.ends_with(&region.file) && p.offset == region.start),
                "{what}: check reported {:?}",
                report.problems
            );
            for p in &report.problems {
                assert!(
                    p.file.ends_with(&region.file),
                    "{what}: stray problem {p:?}"
                );
            }
            *counts
                .entry(region.file.file_name().unwrap().to_str().unwrap()[..4].to_string())
                .or_default() += 1;
        }
    }
    let clean = db.check(&NoProgress).unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    println!(
        "check found every flip: {counts:?} ({} pages, {} overflow)",
        live.pages.len(),
        live.overflow_pages
    );
}

/// After a flip in a page or a value record and a reopen (pages are verified the first time a
/// process reads them), every get returns the written value or a `Corruption` naming that file.
#[test]
fn gets_after_flipped_page_or_value_bits_never_return_a_wrong_value() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 1, 5);
    let h = &built.history;
    let (regions, live) = referenced_regions(&built.flushed, 0);
    let want = h.state(built.history_flushed);
    let work = tmp.path().join("work");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (mut flips, mut errors) = (0, 0);
    let per_region = if exhaustive() { 64 } else { 3 };
    for region in &regions {
        for _ in 0..per_region {
            let at = region.start + rng.gen_range(0..region.len) as u64;
            let bit = rng.gen_range(0..8);
            built.flushed.restore(&work);
            flip(&work.join(&region.file), at, bit);
            let what = format!("{} bit {bit} of byte {at}", region.file.display());
            let db = Db::open(&work, options(1)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut failed = 0;
            for k in &h.keys {
                match db.get(k) {
                    Ok(v) => assert_eq!(v.as_ref(), want.get(k), "{what}: wrong answer for {k:?}"),
                    Err(Error::Corruption { file, .. }) => {
                        assert!(file.ends_with(&region.file), "{what}: {}", file.display());
                        failed += 1;
                    }
                    Err(e) => panic!("{what}: {e}"),
                }
            }
            // A damaged value record fails its own gets; a damaged page fails the gets of its keys.
            // Hot copies are read first, so only a damaged data record under a hot copy goes unseen.
            let data = region.file.to_str().unwrap().contains("data-");
            if !data || !live.hot_backed.contains(&region.start) {
                assert!(failed > 0, "{what}: no get noticed");
            }
            errors += failed;
            flips += 1;
        }
    }
    println!("{flips} flips reopened; {errors} gets refused, every other get exact");
}

/// Flipped bits in the headers of the index, data and hot files, and in the checkpoint: open refuses
/// with `Corruption` naming the file.
#[test]
fn flipped_header_and_checkpoint_bits_refuse_to_open() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 2, 6);
    let work = tmp.path().join("work");
    let mut flips = 0;
    for shard in 0..2 {
        let dir = format!("shard-{shard:05}");
        let mut targets: Vec<(PathBuf, usize, usize, usize)> = ["index-", "data-", "hot-"]
            .iter()
            .map(|p| (built.flushed.one(&dir, p), 32, 32, 1))
            .collect();
        let ckpt = built.flushed.one(&dir, "checkpoint");
        let len = built.flushed.files[&ckpt].len();
        targets.push((ckpt, len, 24 + 8 * CKPT_FIELDS + 64, 7));
        for (file, len, dense, stride) in targets {
            for (byte, bit) in bits(len, dense, stride) {
                built.flushed.restore(&work);
                flip(&work.join(&file), byte as u64, bit);
                let what = format!("{} bit {bit} of byte {byte}", file.display());
                expect_corruption(Db::open(&work, options(2)), &file, &what);
                flips += 1;
            }
        }
    }
    println!("{flips} header and checkpoint flips refused");
}

/// Every bit of the sync point and of the manifest: open refuses with a typed error naming the file,
/// or opens with exactly the written history (a damaged sync-point slot falls back to the older one).
#[test]
fn flipped_sync_point_and_manifest_bits_never_lose_or_invent_data() {
    let tmp = scratch();
    let built = build(&tmp.path().join("build"), 2, 7);
    let h = &built.history;
    let work = tmp.path().join("work");
    let mut outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for name in ["SYNCED", "MANIFEST"] {
        let file = PathBuf::from(name);
        let len = built.live.files[&file].len();
        for (byte, bit) in bits(len, len, 1) {
            if name == "SYNCED" && byte % 512 >= 36 {
                continue; // between and after the two slots: never read
            }
            built.live.restore(&work);
            flip(&work.join(&file), byte as u64, bit);
            let what = format!("{name} bit {bit} of byte {byte}");
            match Db::open(&work, options(2)) {
                Ok(db) => {
                    assert_prefix(&db, h, h.ops.len(), &what);
                    *outcome.entry("opened, exact").or_default() += 1;
                }
                Err(Error::Corruption { file: f, .. })
                | Err(Error::FormatVersion { file: f, .. }) => {
                    assert!(f.ends_with(&file), "{what}: named {}", f.display());
                    *outcome.entry("refused").or_default() += 1;
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }
    println!("sync point and manifest flips: {outcome:?}");
}
