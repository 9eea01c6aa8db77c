//! Entry points into the engine's internal decoders and encoders for the fuzz targets in `fuzz/`
//! (see `docs/fuzzing.md`). **Not a stable API**: hidden from the docs, it exists only so that the
//! fuzz crate can reach `pub(crate)` code, and may change with any commit.
//!
//! Each wrapper calls the engine's own decode or encode function and converts its crate-private
//! types into plain ones; none re-implements a format, except the `seal_*` helpers, which recompute
//! a checksum as the format documents it so a fuzzer can reach the checks that come after it.
//! File-based decoders (log replay, manifest, sync point, value-file headers, index header) read
//! real files: the caller passes a [`Scratch`] directory to write them into.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bloom::Filter;
use crate::checkpoint::Checkpoint;
use crate::data::{self, ValueFileKind, ValueWriter};
use crate::error::Result;
use crate::hash::KeyHash;
use crate::log::{LogSegment, RecordKind, LOG_HEADER, RECORD_HEADER};
use crate::manifest::{Manifest, ShardSpec};
use crate::options::{MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::page::{self, Loc, PAGE_SIZE};
use crate::syncpoint::SyncPoint;

/// A private directory for the files a file-based decoder reads; removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh directory under `/dev/shm` when it exists (no disk I/O per execution), else under
    /// the system temp directory.
    pub fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "tierkv-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the fuzz scratch directory");
        Scratch { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as file `name` in the directory; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).expect("write a fuzz scratch file");
        p
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Limits the decoders enforce, for generators that want valid input.
pub const KEY_LIMIT: usize = MAX_KEY_LEN;
/// The value-length limit.
pub const VALUE_LIMIT: usize = MAX_VALUE_LEN;
/// Bytes of a log segment header.
pub const LOG_HEADER_BYTES: usize = LOG_HEADER;
/// Bytes of an index page.
pub const PAGE_BYTES: usize = PAGE_SIZE;

// ---------------------------------------------------------------------------------------------
// Log segments (`log.rs`, docs/format/log.md)

/// One log record, decoded or to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Put (true) or delete.
    pub put: bool,
    /// Global sequence number.
    pub seq: u64,
    /// The key (1..=1024 bytes for an encodable record).
    pub key: Vec<u8>,
    /// The value (empty for a delete).
    pub value: Vec<u8>,
}

/// What replaying a segment returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReplay {
    /// `(offset, record)` for every record replay visited, in order.
    pub records: Vec<(u32, LogRecord)>,
    /// Valid bytes, header included.
    pub valid_len: u64,
    /// Bytes of a torn tail after the valid prefix.
    pub torn_bytes: u64,
    /// The header's `prev_len`.
    pub prev_len: u32,
}

/// Writes `bytes` as segment file `name` and replays it with [`LogSegment::replay`]; every visited
/// record is also read back through [`LogSegment::record`] and must equal what replay visited.
pub fn log_replay(
    scratch: &Scratch,
    bytes: &[u8],
    shard: u32,
    seq: u64,
    durable: u64,
) -> Result<LogReplay> {
    let path = scratch.write("log.tkv", bytes);
    let mut records = Vec::new();
    let (segment, end) = LogSegment::replay(path, shard, seq, durable, |at, r| {
        records.push((at, record_of(r)));
        Ok(())
    })?;
    for (at, r) in &records {
        assert_eq!(
            &record_of(segment.record(*at)),
            r,
            "a replayed record reads back differently at offset {at}"
        );
    }
    Ok(LogReplay {
        records,
        valid_len: end.valid_len,
        torn_bytes: end.torn_bytes,
        prev_len: end.prev_len,
    })
}

fn record_of(r: crate::log::RecordRef<'_>) -> LogRecord {
    LogRecord {
        put: r.kind == RecordKind::Put,
        seq: r.seq,
        key: r.key.to_vec(),
        value: r.value.to_vec(),
    }
}

/// Encodes `records` with the engine's writer ([`LogSegment::create`] + `append`) into a segment
/// of `capacity` bytes and returns the file's bytes. Records that do not fit are left out; the
/// second value is how many were written.
pub fn log_encode(
    scratch: &Scratch,
    records: &[LogRecord],
    shard: u32,
    seq: u64,
    prev_len: u32,
    capacity: u64,
) -> Result<(Vec<u8>, usize)> {
    let path = scratch.path().join("log-encoded.tkv");
    let _ = std::fs::remove_file(&path);
    let mut segment = LogSegment::create(path.clone(), shard, seq, capacity, prev_len)?;
    let mut written = 0;
    for r in records {
        if !segment.fits(crate::log::record_len(&r.key, &r.value)) {
            break;
        }
        let kind = if r.put {
            RecordKind::Put
        } else {
            RecordKind::Delete
        };
        segment.append(kind, &r.key, &r.value, r.seq)?;
        written += 1;
    }
    segment.write_out()?;
    drop(segment);
    let bytes = std::fs::read(&path).expect("read back the encoded segment");
    Ok((bytes, written))
}

/// Recomputes the segment header's CRC and, walking records from the header on, the CRC of each
/// record whose kind and lengths are plausible (the walk stops at the first that is not), as the
/// format documents them: so a fuzzer's edits reach the checks behind the checksums.
pub fn seal_log(bytes: &mut [u8], seq: u64) {
    if bytes.len() < LOG_HEADER {
        return;
    }
    let crc = crc32fast::hash(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    let mut at = LOG_HEADER;
    while at + RECORD_HEADER <= bytes.len() {
        let h = &bytes[at..at + RECORD_HEADER];
        let key_len = u16::from_le_bytes([h[5], h[6]]) as usize;
        let value_len = u32::from_le_bytes([h[7], h[8], h[9], h[10]]) as usize;
        let total = RECORD_HEADER + key_len + value_len;
        if !matches!(h[4], 1 | 2)
            || key_len == 0
            || key_len > MAX_KEY_LEN
            || value_len > MAX_VALUE_LEN
            || at + total > bytes.len()
        {
            return;
        }
        let mut c = crc32fast::Hasher::new();
        c.update(&seq.to_le_bytes());
        c.update(&bytes[at + 4..at + total]);
        bytes[at..at + 4].copy_from_slice(&c.finalize().to_le_bytes());
        at += total;
    }
}

// ---------------------------------------------------------------------------------------------
// Global-table pages (`page.rs`, docs/format/index.md) and the index-file header (`flush.rs`)

/// One page entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageEntry {
    /// The full key.
    pub key: Vec<u8>,
    /// Value length.
    pub value_len: u32,
    /// Data-file offset (48 bits on disk).
    pub data_off: u64,
    /// Hot-file offset (48 bits on disk), when the key has a hot copy.
    pub hot_off: Option<u64>,
}

impl PageEntry {
    fn loc(&self) -> Loc {
        Loc {
            value_len: self.value_len,
            data_off: self.data_off,
            hot_off: self.hot_off,
        }
    }
}

/// A page's header fields, as [`page::validate`] returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    /// Bucket the page belongs to.
    pub bucket: u32,
    /// Next slot of the chain (0 = end).
    pub next: u32,
    /// The flush that wrote it.
    pub generation: u64,
    /// Entry count.
    pub count: u16,
    /// Entry bytes.
    pub used: u16,
    /// Own slot.
    pub slot: u32,
}

/// The directory fingerprint the engine stores for `key`.
pub fn key_fingerprint(key: &[u8]) -> u8 {
    page::fingerprint(KeyHash::of(key).0)
}

/// [`page::validate`]: the page's header, or why it is bad.
pub fn page_validate(page: &[u8], slot: u32, bucket: Option<u32>) -> Result<PageInfo, String> {
    page::validate(page, slot, bucket).map(|h| PageInfo {
        bucket: h.bucket,
        next: h.next,
        generation: h.generation,
        count: h.count,
        used: h.used,
        slot: h.slot,
    })
}

/// [`page::entries`]: `(entry, fingerprint)` in directory order. `page` must be [`PAGE_BYTES`]
/// long (the engine only hands it whole pages).
pub fn page_entries(page: &[u8]) -> Vec<(PageEntry, u8)> {
    page::entries(page)
        .map(|(k, loc, fp)| (entry_of(k, loc), fp))
        .collect()
}

/// [`page::find`] with the key's own hash.
pub fn page_find(page: &[u8], key: &[u8]) -> Option<PageEntry> {
    page::find(page, key, KeyHash::of(key).0).map(|loc| entry_of(key, loc))
}

fn entry_of(key: &[u8], loc: Loc) -> PageEntry {
    PageEntry {
        key: key.to_vec(),
        value_len: loc.value_len,
        data_off: loc.data_off,
        hot_off: loc.hot_off,
    }
}

/// [`page::encode_bucket`] with each key's real fingerprint and slots `first_slot`, `first_slot + 1`,
/// …: `(slot, page)` in chain order.
pub fn page_encode_bucket(
    bucket: u32,
    generation: u64,
    entries: &[PageEntry],
    first_slot: u32,
) -> Vec<(u32, Vec<u8>)> {
    let mut next = first_slot;
    let mut out = Vec::new();
    page::encode_bucket(
        bucket,
        generation,
        entries
            .iter()
            .map(|e| (&e.key[..], e.loc(), key_fingerprint(&e.key))),
        || {
            let s = next;
            next = next.wrapping_add(1);
            s
        },
        &mut out,
    );
    out.into_iter().map(|(s, p)| (s, p.to_vec())).collect()
}

/// Recomputes a page's CRC (bytes 0..4 over 4..4096).
pub fn seal_page(page: &mut [u8]) {
    if page.len() == PAGE_SIZE {
        let crc = crc32fast::hash(&page[4..]);
        page[..4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Writes `bytes` as an index file and opens it with the engine's header check.
pub fn index_open(
    scratch: &Scratch,
    bytes: &[u8],
    shard: u32,
    generation: u64,
    slots: u32,
) -> Result<()> {
    let path = scratch.write("index.tkv", bytes);
    crate::flush::open_index(&path, shard, generation, slots).map(drop)
}

/// Creates an index file with the engine's writer and returns its bytes.
pub fn index_create(scratch: &Scratch, shard: u32, generation: u64) -> Result<Vec<u8>> {
    let path = scratch.path().join("index-created.tkv");
    let _ = std::fs::remove_file(&path);
    drop(crate::flush::create_index(&path, shard, generation)?);
    Ok(std::fs::read(&path).expect("read back the index file"))
}

/// Recomputes an index or value-file header's CRC (bytes 28..32 over 0..28).
pub fn seal_header32(bytes: &mut [u8]) {
    if bytes.len() >= 32 {
        let crc = crc32fast::hash(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint (`checkpoint.rs`, docs/format/checkpoint.md) and the Bloom bytes it carries (`bloom.rs`)

/// A decoded checkpoint, opaque except for its encoding and its Bloom filter.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointImage(Checkpoint);

/// Number of fixed `u64` fields of a checkpoint body.
pub const CHECKPOINT_FIXED_FIELDS: usize = 24;

impl CheckpointImage {
    /// A checkpoint from its fields, in body order (see the format doc); the bucket count is
    /// `page_map.len()` and the index slot count `fixed[2]` truncated to 32 bits, as on disk.
    pub fn new(
        fixed: [u64; CHECKPOINT_FIXED_FIELDS],
        page_map: Vec<u32>,
        free_slots: Vec<u32>,
        data_free: Vec<(u64, u32)>,
        bloom: Vec<u8>,
    ) -> CheckpointImage {
        CheckpointImage(Checkpoint::from_fields(
            &fixed, page_map, free_slots, data_free, bloom,
        ))
    }

    /// [`Checkpoint::decode`].
    pub fn decode(bytes: &[u8], shard: u32) -> Result<CheckpointImage> {
        Checkpoint::decode(bytes, Path::new("checkpoint.tkv"), shard).map(CheckpointImage)
    }

    /// [`Checkpoint::encode`].
    pub fn encode(&self, shard: u32) -> Vec<u8> {
        self.0.encode(shard)
    }

    /// Decodes the carried Bloom bytes as recovery does ([`Filter::from_bytes`]) and, when they
    /// decode, asks the filter about a few hashes.
    pub fn check_bloom(&self) -> Result<(), String> {
        bloom_check(
            &self.0.bloom,
            self.0.bloom_capacity,
            self.0.bloom_inserted,
            self.0.bloom_removed,
        )
    }
}

/// [`Filter::from_bytes`] on `bytes`, then a few membership queries and a re-serialization, which
/// must give back the same bytes.
pub fn bloom_check(bytes: &[u8], capacity: u64, inserted: u64, removed: u64) -> Result<(), String> {
    let f = Filter::from_bytes(bytes, capacity, inserted, removed)?;
    for h in [0u64, 1, u64::MAX, 0x9E37_79B9_7F4A_7C15] {
        let _ = f.may_contain(h);
    }
    let _ = f.estimated_fpr();
    assert_eq!(
        f.to_bytes(),
        bytes,
        "an accepted Bloom filter re-serializes differently"
    );
    Ok(())
}

/// A filter built by the engine, serialized: `(bytes, capacity)`; `hashes` are inserted.
pub fn bloom_build(capacity: u64, hashes: &[u64]) -> Vec<u8> {
    let mut f = Filter::new(capacity.max(1), 0.01);
    for &h in hashes {
        f.insert(h);
    }
    f.to_bytes()
}

/// Makes a checkpoint's length field match `bytes` and recomputes its trailing CRC.
pub fn seal_checkpoint(bytes: &mut [u8]) {
    if bytes.len() >= 28 {
        let body = (bytes.len() - 28) as u64;
        bytes[16..24].copy_from_slice(&body.to_le_bytes());
        let at = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Manifest (`manifest.rs`, docs/format/manifest.md)

/// A decoded manifest, opaque except for its routing and its encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestImage(Manifest);

impl ManifestImage {
    /// A manifest from its fields; `split` is `(id, prefix, depth)` per shard.
    pub fn new(
        layout: u64,
        shards: u32,
        ssd_dir: PathBuf,
        hdd_dir: PathBuf,
        split: Vec<(u32, u32, u8)>,
    ) -> ManifestImage {
        ManifestImage(Manifest {
            format_version: crate::manifest::FORMAT_VERSION,
            layout,
            shards,
            ssd_dir,
            hdd_dir,
            split: split
                .into_iter()
                .map(|(id, prefix, depth)| ShardSpec { id, prefix, depth })
                .collect(),
        })
    }

    /// Writes `bytes` as the MANIFEST of the scratch directory and loads it ([`Manifest::load`]).
    pub fn load(scratch: &Scratch, bytes: &[u8]) -> Result<Option<ManifestImage>> {
        scratch.write("MANIFEST", bytes);
        Manifest::load(scratch.path()).map(|m| m.map(ManifestImage))
    }

    /// Stores the manifest in the scratch directory ([`Manifest::store`]); returns the file's bytes.
    pub fn store(&self, scratch: &Scratch) -> Result<Vec<u8>> {
        self.0.store(scratch.path())?;
        Ok(std::fs::read(Manifest::path(scratch.path())).expect("read back the manifest"))
    }

    /// [`Manifest::routing`]: the routing bits and table, or a corruption error.
    pub fn routing(&self, scratch: &Scratch) -> Result<(u32, Vec<u32>)> {
        self.0.routing(scratch.path())
    }

    /// The shard specs in routing order, `(id, prefix, depth)`.
    pub fn shard_specs(&self) -> Vec<(u32, u32, u8)> {
        self.0
            .shard_specs()
            .into_iter()
            .map(|s| (s.id, s.prefix, s.depth))
            .collect()
    }
}

/// The manifest text around `json`: magic line, `json`, CRC line, as the format documents it.
pub fn seal_manifest(json: &[u8]) -> Vec<u8> {
    let mut text = b"TIERKV-MANIFEST\n".to_vec();
    text.extend_from_slice(json);
    let crc = crc32fast::hash(&text);
    text.extend_from_slice(format!("CRC32 {crc:08x}\n").as_bytes());
    text
}

// ---------------------------------------------------------------------------------------------
// Sync point (`syncpoint.rs`, docs/format/syncpoint.md)

/// Writes `bytes` as the scratch directory's SYNCED file (none when `None`) and opens it
/// ([`SyncPoint::open`]); returns the sync point `G`.
pub fn syncpoint_open(scratch: &Scratch, bytes: Option<&[u8]>) -> Result<u64> {
    let path = scratch.path().join("SYNCED");
    match bytes {
        Some(b) => {
            scratch.write("SYNCED", b);
        }
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    SyncPoint::open(scratch.path()).map(|s| s.value)
}

/// Opens the scratch directory's sync point and stores each of `values` in turn
/// ([`SyncPoint::store`]).
pub fn syncpoint_store(scratch: &Scratch, values: &[u64]) -> Result<()> {
    let mut sp = SyncPoint::open(scratch.path())?;
    for &v in values {
        sp.store(v)?;
    }
    Ok(())
}

/// Recomputes the CRC of both sync-point slots (offsets 0 and 512, 36 bytes each) that `bytes`
/// holds in full.
pub fn seal_syncpoint(bytes: &mut [u8]) {
    for off in [0usize, 512] {
        if bytes.len() >= off + 36 {
            let crc = crc32fast::hash(&bytes[off..off + 32]);
            bytes[off + 32..off + 36].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Value files: data file and hot file (`data.rs`, docs/format/data.md)

/// Writes `bytes` as a value file (data file, or hot file when `hot`) and opens it with the
/// engine's header checks ([`ValueWriter::open`]) at checkpointed end `end`; returns the end the
/// writer will append at.
pub fn value_file_open(
    scratch: &Scratch,
    bytes: &[u8],
    hot: bool,
    shard: u32,
    end: u64,
) -> Result<u64> {
    let path = scratch.write("values.tkv", bytes);
    ValueWriter::open(path, kind(hot), shard, end).map(|w| w.end())
}

fn kind(hot: bool) -> ValueFileKind {
    if hot {
        ValueFileKind::Hot
    } else {
        ValueFileKind::Data
    }
}

/// Creates a value file with the engine's writer, appends `(key hash, value)` records and returns
/// the record offsets and the file's bytes.
pub fn value_file_write(
    scratch: &Scratch,
    hot: bool,
    shard: u32,
    values: &[(u64, Vec<u8>)],
) -> Result<(Vec<u64>, Vec<u8>)> {
    let path = scratch.path().join("values-written.tkv");
    let _ = std::fs::remove_file(&path);
    let mut w = ValueWriter::open(path.clone(), kind(hot), shard, 0)?;
    let mut offs = Vec::with_capacity(values.len());
    for (h, v) in values {
        offs.push(w.append(*h, v)?);
    }
    w.sync()?;
    drop(w);
    Ok((
        offs,
        std::fs::read(&path).expect("read back the value file"),
    ))
}

/// [`data::read_value`]: the value record of a `len`-byte value at `off` in the mapped bytes
/// `file`, checked against the key hash `hash`. Offsets are 48-bit on disk (page entries), so
/// `off` is taken modulo 2^48.
pub fn value_read(file: &[u8], off: u64, len: u32, hash: u64) -> Result<Vec<u8>> {
    data::read_value(
        file,
        Path::new("values.tkv"),
        off & ((1 << 48) - 1),
        len,
        hash,
    )
}
