//! Log segments: the SSD file every write lands in first. Format: `docs/format/log.md`.
//!
//! A segment is preallocated to its capacity and written through a shared memory map, so an append is a
//! copy into the page cache (no system call) and a read of a logged value is a slice of the map. `sync`
//! makes every appended byte durable with `msync`. Records are never rewritten; a segment is deleted once
//! a checkpoint records that it was flushed.
//!
//! ```text
//! header (32 bytes): magic "TKVLOG\0\0" | version u32 | shard u32 | seq u64 | prev_len u32 | crc32 u32
//! record:            crc32 u32 | kind u8 | key_len u16 | value_len u32 | seq u64 | key | value
//! ```
//! The record CRC covers the segment's number (so a record from another segment never validates) and
//! the record from `kind` to the end of the value. `seq` is the record's global sequence number (see
//! `syncpoint.rs`). `prev_len` is the final length of the previous segment
//! of the shard when this one was started: recovery compares it with what it could read of that
//! segment, so a lost tail of an older segment is noticed even when a newer segment survived.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::io::{self, le, StorageFile};
use crate::manifest::FORMAT_VERSION;
use crate::options::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Bytes of the segment header.
pub const LOG_HEADER: usize = 32;
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 19;
const MAGIC: &[u8; 8] = b"TKVLOG\0\0";

/// What a record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    Put = 1,
    Delete = 2,
}

impl RecordKind {
    fn from_u8(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Put),
            2 => Some(RecordKind::Delete),
            _ => None,
        }
    }
}

/// A record as stored in a segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordRef<'a> {
    pub kind: RecordKind,
    pub seq: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Size of a record with this key and value.
#[inline]
pub(crate) fn record_len(key: &[u8], value: &[u8]) -> usize {
    RECORD_HEADER + key.len() + value.len()
}

fn record_crc(seq: u64, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// One log segment file. Appends go to a small buffer written out with `pwrite` (full pages, so the
/// kernel never zero-fills a page it is about to overwrite); reads come from the buffer or from a
/// read-only map of the file.
#[derive(Debug)]
pub(crate) struct LogSegment {
    pub seq: u64,
    pub path: PathBuf,
    file: Arc<StorageFile>,
    map: Mmap,
    /// Append position (bytes used, header included).
    len: usize,
    /// Records at `buf_start..len` are still in `buf`.
    buf: Vec<u8>,
    buf_start: usize,
    /// Bytes known durable (shared with syncs that run outside the shard lock).
    synced: Arc<AtomicUsize>,
}

/// Buffered bytes past which an append writes the buffer out.
const WRITE_OUT_BYTES: usize = 256 << 10;

/// How replay of a segment ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ReplayEnd {
    /// Valid bytes (header included).
    pub valid_len: u64,
    /// Bytes after the valid prefix that held a torn record (0 when the segment ended cleanly).
    pub torn_bytes: u64,
    /// The previous segment's final length, as recorded in this segment's header.
    pub prev_len: u32,
}

impl LogSegment {
    /// Creates segment `seq` of `capacity` bytes (preallocated).
    pub fn create(
        path: PathBuf,
        shard: u32,
        seq: u64,
        capacity: u64,
        prev_len: u32,
    ) -> Result<LogSegment> {
        let file = io::create_rw(&path)?;
        file.preallocate(capacity)?;
        let map = io::map_read(&file, capacity)?.expect("capacity > 0");
        let mut header = [0u8; LOG_HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&shard.to_le_bytes());
        header[16..24].copy_from_slice(&seq.to_le_bytes());
        header[24..28].copy_from_slice(&prev_len.to_le_bytes());
        let crc = crc32fast::hash(&header[..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        let mut buf = Vec::with_capacity(WRITE_OUT_BYTES + 4096);
        buf.extend_from_slice(&header);
        Ok(LogSegment {
            seq,
            path,
            file: Arc::new(file),
            map,
            len: LOG_HEADER,
            buf,
            buf_start: 0,
            synced: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// True when the segment's header never became durable (a crash soon after the file was
    /// created): the header is missing, all zero, or damaged while no record in the file validates
    /// with a number below `durable` (the sync point). Such a segment holds no acknowledged record.
    /// A damaged header before a durable record is not this: replay reports it as corruption.
    pub fn header_never_durable(path: &Path, shard: u32, seq: u64, durable: u64) -> Result<bool> {
        let file = io::open(path, io::OpenHow::READ)?;
        let len = file.len()?;
        if len < LOG_HEADER as u64 {
            return Ok(true);
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        if bytes[..LOG_HEADER].iter().all(|&b| b == 0) {
            return Ok(true);
        }
        // A sound header, or one of another format version (replay reports that), is durable.
        if !matches!(
            check_header(&bytes, path, shard, seq),
            Err(Error::Corruption { .. })
        ) {
            return Ok(false);
        }
        let mut at = LOG_HEADER;
        while let Parsed::Valid(rec, n) = parse_record(&bytes, at, seq) {
            if rec.seq < durable {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }

    /// Opens an existing segment and calls `visit(offset, record)` for every valid record in order.
    /// A torn tail ends replay; a bad record followed by a valid record numbered below `durable` (the
    /// sync point: that record, and so everything before it in the segment, was durable) is
    /// corruption in the middle and an error naming the file and offset. A bad record followed only
    /// by records at or above `durable` is an unsynced stretch whose sectors a crash kept in part, in
    /// any order: a torn tail too.
    pub fn replay(
        path: PathBuf,
        shard: u32,
        seq: u64,
        durable: u64,
        mut visit: impl FnMut(u32, RecordRef<'_>) -> Result<()>,
    ) -> Result<(LogSegment, ReplayEnd)> {
        let file = io::open_rw(&path)?;
        let file_len = file.len()?;
        if file_len < LOG_HEADER as u64 {
            return Err(Error::corruption(
                &path,
                0,
                "log segment shorter than its header",
            ));
        }
        let map = io::map_read(&file, file_len)?.expect("length checked above");
        check_header(&map, &path, shard, seq)?;
        let mut at = LOG_HEADER;
        let end = loop {
            match parse_record(&map, at, seq) {
                Parsed::Valid(rec, len) => {
                    visit(at as u32, rec)?;
                    at += len;
                }
                Parsed::End => {
                    // A zeroed header ends the log only if nothing durable follows it: zeros in the
                    // middle of synced records (a lost sector, a misdirected zero write) are damage,
                    // like any other bad record there.
                    if durable_record_after(&map, at, seq, durable) {
                        return Err(Error::corruption(
                            &path,
                            at as u64,
                            "zeroed record header before durable records",
                        ));
                    }
                    break ReplayEnd {
                        valid_len: at as u64,
                        torn_bytes: 0,
                        prev_len: le::u32_at(&map, 24),
                    };
                }
                Parsed::Bad { reason, .. } => {
                    if durable_record_after(&map, at, seq, durable) {
                        return Err(Error::corruption(&path, at as u64, reason));
                    }
                    let torn = map[at..].iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    break ReplayEnd {
                        valid_len: at as u64,
                        torn_bytes: torn as u64,
                        prev_len: le::u32_at(&map, 24),
                    };
                }
            }
        };
        let len = end.valid_len as usize;
        Ok((
            LogSegment {
                seq,
                path,
                file: Arc::new(file),
                map,
                len,
                buf: Vec::new(),
                buf_start: len,
                synced: Arc::new(AtomicUsize::new(len)),
            },
            end,
        ))
    }

    /// Bytes used (header included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.len == LOG_HEADER
    }

    /// True when a record of `rec_len` bytes fits.
    #[inline]
    pub fn fits(&self, rec_len: usize) -> bool {
        self.len + rec_len <= self.map.len()
    }

    /// Appends a record; the caller has checked [`Self::fits`]. Returns the record's offset.
    #[inline]
    pub fn append(&mut self, kind: RecordKind, key: &[u8], value: &[u8], seq: u64) -> Result<u32> {
        let at = self.len;
        debug_assert!(self.fits(record_len(key, value)));
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0, kind as u8]);
        self.buf
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        let crc = record_crc(self.seq, &self.buf[start + 4..]);
        self.buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        self.len += self.buf.len() - start;
        if self.buf.len() >= WRITE_OUT_BYTES {
            self.write_out()?;
        }
        Ok(at as u32)
    }

    /// Writes buffered records to the file (not yet durable: see [`Self::sync`]).
    pub fn write_out(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.buf_start as u64)?;
            self.buf_start = self.len;
            self.buf.clear();
        }
        Ok(())
    }

    /// The bytes from `at` to the end of the region (buffer or file) holding `at`.
    #[inline]
    fn bytes_from(&self, at: usize) -> &[u8] {
        if at >= self.buf_start {
            &self.buf[at - self.buf_start..]
        } else {
            &self.map[at..self.buf_start]
        }
    }

    /// The record at `offset` (an offset returned by `append` or visited by `replay`).
    #[inline]
    pub fn record(&self, offset: u32) -> RecordRef<'_> {
        let b = self.bytes_from(offset as usize);
        let key_len = le::u16_at(b, 5) as usize;
        let value_len = le::u32_at(b, 7) as usize;
        RecordRef {
            kind: RecordKind::from_u8(b[4]).unwrap_or(RecordKind::Delete),
            seq: le::u64_at(b, 11),
            key: &b[RECORD_HEADER..RECORD_HEADER + key_len],
            value: &b[RECORD_HEADER + key_len..RECORD_HEADER + key_len + value_len],
        }
    }

    /// The key of the record at `offset`.
    #[inline]
    pub fn key_at(&self, offset: u32) -> &[u8] {
        let b = self.bytes_from(offset as usize);
        let key_len = le::u16_at(b, 5) as usize;
        &b[RECORD_HEADER..RECORD_HEADER + key_len]
    }

    /// The file, for syncing without holding the shard lock.
    pub fn file(&self) -> Arc<StorageFile> {
        self.file.clone()
    }

    /// Bytes written out to the file (buffered bytes excluded).
    pub fn written_len(&self) -> usize {
        self.buf_start
    }

    /// Makes every byte written out before the call durable (`fdatasync`); call [`Self::write_out`]
    /// first. Returns the bytes newly made durable.
    pub fn sync_file(file: &StorageFile, synced: &AtomicUsize, written: usize) -> Result<usize> {
        let before = synced.load(Ordering::Acquire);
        if before >= written {
            return Ok(0);
        }
        file.sync_data()?;
        synced.fetch_max(written, Ordering::AcqRel);
        Ok(written - before)
    }

    /// Writes out and syncs everything appended.
    #[cfg(test)]
    pub fn sync(&mut self) -> Result<usize> {
        self.write_out()?;
        Self::sync_file(&self.file, &self.synced, self.len)
    }

    /// The durable-bytes mark, shared with syncs that run outside the shard lock.
    pub fn synced_mark(&self) -> Arc<AtomicUsize> {
        self.synced.clone()
    }

    /// Re-reads every record up to the append position and checks its checksum; returns the offset
    /// and reason of the first bad one (records after it cannot be framed).
    pub fn verify(&self) -> (u64, Option<(u64, String)>) {
        let mut records = 0u64;
        // The written region, then the buffered one (which starts at a record boundary).
        let header_in_buf = self.buf_start == 0;
        let regions: [(&[u8], usize, usize); 2] = [
            (
                &self.map[..self.buf_start],
                LOG_HEADER.min(self.buf_start),
                0,
            ),
            (
                &self.buf,
                if header_in_buf {
                    LOG_HEADER.min(self.buf.len())
                } else {
                    0
                },
                self.buf_start,
            ),
        ];
        for (bytes, mut at, base) in regions {
            while at < bytes.len() {
                let offset = (base + at) as u64;
                match parse_record(bytes, at, self.seq) {
                    Parsed::Valid(_, len) => {
                        at += len;
                        records += 1;
                    }
                    Parsed::End => {
                        return (
                            records,
                            Some((offset, "zeroed record inside the log".into())),
                        )
                    }
                    Parsed::Bad { reason, .. } => return (records, Some((offset, reason))),
                }
            }
        }
        (records, None)
    }

    /// Discards every record from `offset` on (a suffix past the durable prefix found by recovery):
    /// zeroes the bytes up to `end` and syncs. Only for replayed segments (nothing buffered).
    pub fn discard_from(&mut self, offset: u32, end: u64) -> Result<()> {
        debug_assert!(self.buf.is_empty());
        let offset = offset as u64;
        if end > offset {
            let zeros = vec![0u8; (end - offset) as usize];
            self.file.write_all_at(&zeros, offset)?;
            self.file.sync_data()?;
        }
        self.len = offset as usize;
        self.buf_start = self.len;
        Ok(())
    }

    /// Path of the file (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_header(map: &[u8], path: &Path, shard: u32, seq: u64) -> Result<()> {
    if &map[..8] != MAGIC {
        return Err(Error::corruption(
            path,
            0,
            "not a tierkv log segment (bad magic)",
        ));
    }
    let version = le::u32_at(map, 8);
    if crc32fast::hash(&map[..28]) != le::u32_at(map, 28) {
        return Err(Error::corruption(
            path,
            0,
            "log segment header checksum mismatch",
        ));
    }
    if version != FORMAT_VERSION {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if le::u32_at(map, 12) != shard || le::u64_at(map, 16) != seq {
        return Err(Error::corruption(
            path,
            0,
            format!(
                "log segment header names shard {} seq {}, expected shard {shard} seq {seq}",
                le::u32_at(map, 12),
                le::u64_at(map, 16)
            ),
        ));
    }
    Ok(())
}

/// Whether a valid record numbered below `durable` starts anywhere after the damaged record at
/// `bad` (every byte offset is tried: damage may have hidden where the next record starts). Cheap
/// field checks come before the checksum, so a torn tail of unsynced records costs one pass.
fn durable_record_after(map: &[u8], bad: usize, seq: u64, durable: u64) -> bool {
    let end = map.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    (bad + 1..end.saturating_sub(RECORD_HEADER - 1)).any(|at| {
        let h = &map[at..at + RECORD_HEADER];
        let plausible = RecordKind::from_u8(h[4]).is_some()
            && le::u64_at(h, 11) < durable
            && (1..=MAX_KEY_LEN).contains(&(le::u16_at(h, 5) as usize))
            && le::u32_at(h, 7) as usize <= map.len() - at;
        plausible && matches!(parse_record(map, at, seq), Parsed::Valid(r, _) if r.seq < durable)
    })
}

enum Parsed<'a> {
    Valid(RecordRef<'a>, usize),
    /// Clean end: no room for a header, or an all-zero header.
    End,
    Bad {
        reason: String,
    },
}

fn parse_record(map: &[u8], at: usize, seq: u64) -> Parsed<'_> {
    if at + RECORD_HEADER > map.len() {
        return if map[at.min(map.len())..].iter().all(|&b| b == 0) {
            Parsed::End
        } else {
            Parsed::Bad {
                reason: "record header cut short by the end of the file".into(),
            }
        };
    }
    let h = &map[at..at + RECORD_HEADER];
    if h.iter().all(|&b| b == 0) {
        return Parsed::End;
    }
    let key_len = le::u16_at(h, 5) as usize;
    let value_len = le::u32_at(h, 7) as usize;
    let Some(kind) = RecordKind::from_u8(h[4]) else {
        return Parsed::Bad {
            reason: format!("unknown record kind {}", h[4]),
        };
    };
    if key_len == 0 || key_len > MAX_KEY_LEN || value_len > MAX_VALUE_LEN {
        return Parsed::Bad {
            reason: format!("implausible record lengths (key {key_len}, value {value_len})"),
        };
    }
    let total = RECORD_HEADER + key_len + value_len;
    if at + total > map.len() {
        return Parsed::Bad {
            reason: "record runs past the end of the file".into(),
        };
    }
    let body = &map[at + 4..at + total];
    if record_crc(seq, body) != le::u32_at(h, 0) {
        return Parsed::Bad {
            reason: "record checksum mismatch".into(),
        };
    }
    Parsed::Valid(
        RecordRef {
            kind,
            seq: le::u64_at(h, 11),
            key: &map[at + RECORD_HEADER..at + RECORD_HEADER + key_len],
            value: &map[at + RECORD_HEADER + key_len..at + total],
        },
        total,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type Replayed = Vec<(u32, Vec<u8>, Vec<u8>)>;

    fn collect(path: &Path, seq: u64) -> Result<(Replayed, ReplayEnd)> {
        collect_synced_below(path, seq, u64::MAX)
    }

    /// Replays with the sync point at `durable`.
    fn collect_synced_below(path: &Path, seq: u64, durable: u64) -> Result<(Replayed, ReplayEnd)> {
        let mut out = Vec::new();
        let (_, end) = LogSegment::replay(path.to_path_buf(), 0, seq, durable, |off, r| {
            out.push((off, r.key.to_vec(), r.value.to_vec()));
            Ok(())
        })?;
        Ok((out, end))
    }

    #[test]
    fn append_read_replay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut seg = LogSegment::create(p.clone(), 0, 5, 4096, 0).unwrap();
        let a = seg.append(RecordKind::Put, b"k1", b"v1", 1).unwrap();
        let b = seg.append(RecordKind::Delete, b"k2", b"", 2).unwrap();
        assert_eq!(seg.record(a).value, b"v1");
        assert_eq!(seg.record(b).kind, RecordKind::Delete);
        assert_eq!(seg.key_at(b), b"k2");
        seg.sync().unwrap();
        drop(seg);
        let (recs, end) = collect(&p, 5).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], (a, b"k1".to_vec(), b"v1".to_vec()));
        assert_eq!(end.torn_bytes, 0);
        // Wrong sequence number: the header is refused.
        assert!(collect(&p, 6).is_err());
    }

    #[test]
    fn every_truncation_recovers_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut seg = LogSegment::create(p.clone(), 0, 1, 4096, 0).unwrap();
        let mut ends = vec![];
        for i in 0..10u8 {
            // Every byte of these records is non-zero, so zeroing any byte damages the record.
            let seq = 0x0101_0101_0101_0101u64 * (i as u64 + 1);
            seg.append(
                RecordKind::Put,
                &[b'k', i + 1],
                &vec![i + 1; i as usize * 7],
                seq,
            )
            .unwrap();
            ends.push(seg.len());
        }
        seg.sync().unwrap();
        drop(seg);
        let full = std::fs::read(&p).unwrap();
        for cut in LOG_HEADER..ends[9] {
            // Zero everything from `cut` on (what a crash before writeback leaves in a preallocated file).
            let mut bytes = full.clone();
            bytes[cut..].iter_mut().for_each(|b| *b = 0);
            std::fs::write(&p, &bytes).unwrap();
            let (recs, end) = collect(&p, 1).unwrap();
            let expect = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(recs.len(), expect, "cut at {cut}");
            assert_eq!(
                end.valid_len as usize,
                if expect == 0 {
                    LOG_HEADER
                } else {
                    ends[expect - 1]
                }
            );
        }
    }

    #[test]
    fn flipped_bit_in_the_middle_is_an_error_with_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (p, second) = three_synced_records(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[second as usize + RECORD_HEADER + 2] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        let e = collect(&p, 1).unwrap_err();
        match e {
            Error::Corruption { offset, file, .. } => {
                assert_eq!(offset, second as u64);
                assert_eq!(file, p);
            }
            other => panic!("expected corruption, got {other}"),
        }
    }

    /// A segment of three synced records (sequence numbers 1, 2, 3); returns it and the second's offset.
    fn three_synced_records(dir: &Path) -> (std::path::PathBuf, u32) {
        let p = dir.join("log");
        let mut seg = LogSegment::create(p.clone(), 0, 1, 4096, 0).unwrap();
        seg.append(RecordKind::Put, b"a", b"first", 1).unwrap();
        let second = seg.append(RecordKind::Put, b"b", b"second", 2).unwrap();
        seg.append(RecordKind::Put, b"c", b"third", 3).unwrap();
        seg.sync().unwrap();
        (p, second)
    }

    /// Found by the `decoders` fuzz target: a zeroed record header in the middle of synced records
    /// silently ended the log there.
    #[test]
    fn zeroed_header_before_synced_records_is_an_error_with_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (p, second) = three_synced_records(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        let at = second as usize;
        bytes[at..at + RECORD_HEADER].fill(0);
        std::fs::write(&p, &bytes).unwrap();
        match collect(&p, 1).unwrap_err() {
            Error::Corruption { offset, file, .. } => {
                assert_eq!(offset, second as u64);
                assert_eq!(file, p);
            }
            other => panic!("expected corruption, got {other}"),
        }
        // The same zeros before records that were never synced are a torn tail.
        let (recs, end) = collect_synced_below(&p, 1, 2).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(end.valid_len, second as u64);
    }

    #[test]
    fn damage_before_unsynced_records_only_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (p, second) = three_synced_records(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[second as usize + RECORD_HEADER + 2] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        // Records 2 and 3 were never synced (the sync point is 2): a crash may keep the third
        // record's sector and lose the second's, so the damage is a torn tail.
        let (recs, end) = collect_synced_below(&p, 1, 2).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(end.valid_len, second as u64);
        assert!(end.torn_bytes > 0);
        // With record 3 synced, the same damage is corruption in the middle.
        assert!(matches!(
            collect_synced_below(&p, 1, 4),
            Err(Error::Corruption { .. })
        ));
    }
}
