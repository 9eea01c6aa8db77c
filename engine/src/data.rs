//! Value files: the HDD data file (every flushed value) and the SSD hot file (hot copies). Both hold
//! value records appended sequentially by the flush and read at offsets recorded in global-table
//! entries. Format: `docs/format/data.md`.
//!
//! ```text
//! header (32 bytes): magic "TKVDATA\0" or "TKVHOT\0\0" | version u32 | shard u32 | reserved 12 | crc32 u32
//! value record:      crc32 u32 of (key hash u64 LE ‖ value) | value
//! ```
//! The key hash in the CRC ties a record to its key: an entry that points at another key's record, or
//! at a record that was never completely written, fails the check and is reported, never returned.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{self, le, StorageFile};
use crate::manifest::FORMAT_VERSION;

/// Bytes of a value file's header; the first record starts here.
pub const VALUE_FILE_HEADER: u64 = 32;
/// Bytes of a value record's header.
pub const VALUE_RECORD_HEADER: u64 = 4;
const WRITE_CHUNK: usize = 4 << 20;

/// Which value file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueFileKind {
    Data,
    Hot,
}

impl ValueFileKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            ValueFileKind::Data => b"TKVDATA\0",
            ValueFileKind::Hot => b"TKVHOT\0\0",
        }
    }
}

/// CRC of a value record.
#[inline]
pub(crate) fn value_crc(hash: u64, value: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&hash.to_le_bytes());
    h.update(value);
    h.finalize()
}

/// The append side of a value file: buffers records and writes them sequentially.
#[derive(Debug)]
pub(crate) struct ValueWriter {
    pub path: PathBuf,
    file: StorageFile,
    /// Logical end: where the next record goes.
    end: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Bytes and writes issued since the last `take_io`.
    written: (u64, u64),
}

impl ValueWriter {
    /// Opens the value file, creating it with its header when missing. `end` is the checkpointed end
    /// (0 for a new file); bytes past it are garbage from an interrupted flush and get overwritten.
    pub fn open(path: PathBuf, kind: ValueFileKind, shard: u32, end: u64) -> Result<ValueWriter> {
        let exists = path.exists();
        if !exists && end > VALUE_FILE_HEADER {
            // A checkpoint names records in this file: a fresh empty file would be mapped to `end`
            // and a read past its real end would fault (SIGBUS) instead of reporting the loss.
            return Err(Error::corruption(
                &path,
                0,
                format!("file is missing but the checkpoint says data runs to {end}"),
            ));
        }
        let file = if exists {
            io::open_rw(&path)?
        } else {
            let f = io::create_rw(&path)?;
            // The new entry must be durable before a checkpoint can name the file. Hot files share
            // the checkpoint's directory (its atomic replace syncs it); data files sit on the HDD
            // tier, whose directory nothing else syncs.
            if let Some(dir) = path.parent() {
                io::sync_dir(dir)?;
            }
            f
        };
        let (h, header_ok, len) = read_header(&file, kind)?;
        let header_ok = exists && header_ok;
        // A file no checkpoint references past its header may hold a torn header from a crash
        // during its creation: start it afresh (nothing durable can be lost).
        let end = if !exists || (!header_ok && end <= VALUE_FILE_HEADER) {
            let mut h = [0u8; VALUE_FILE_HEADER as usize];
            h[..8].copy_from_slice(kind.magic());
            h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
            h[12..16].copy_from_slice(&shard.to_le_bytes());
            let crc = crc32fast::hash(&h[..28]);
            h[28..].copy_from_slice(&crc.to_le_bytes());
            file.write_all_at(&h, 0)?;
            VALUE_FILE_HEADER.max(end)
        } else {
            check_existing(&path, &h, header_ok, len, shard, end)?;
            end.max(VALUE_FILE_HEADER)
        };
        Ok(ValueWriter {
            path,
            file,
            end,
            buf: Vec::new(),
            buf_start: end,
            written: (0, 0),
        })
    }

    /// Logical end of the file.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends a value record; returns its offset.
    pub fn append(&mut self, hash: u64, value: &[u8]) -> Result<u64> {
        let at = self.end;
        self.buf
            .extend_from_slice(&value_crc(hash, value).to_le_bytes());
        self.buf.extend_from_slice(value);
        self.end += VALUE_RECORD_HEADER + value.len() as u64;
        if self.buf.len() >= WRITE_CHUNK {
            self.write_buffer()?;
        }
        Ok(at)
    }

    fn write_buffer(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.buf_start)?;
            self.written.0 += self.buf.len() as u64;
            self.written.1 += 1;
            self.buf_start += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes a value record at `off`, inside the file's valid part (a reused dead extent).
    pub fn write_at(&mut self, off: u64, hash: u64, value: &[u8]) -> Result<()> {
        debug_assert!(off + VALUE_RECORD_HEADER + value.len() as u64 <= self.buf_start);
        let mut rec = Vec::with_capacity(4 + value.len());
        rec.extend_from_slice(&value_crc(hash, value).to_le_bytes());
        rec.extend_from_slice(value);
        self.file.write_all_at(&rec, off)?;
        self.written.0 += rec.len() as u64;
        self.written.1 += 1;
        Ok(())
    }

    /// Writes buffered records and syncs the file.
    pub fn sync(&mut self) -> Result<()> {
        self.write_buffer()?;
        self.file.sync_data()
    }

    /// `(bytes, writes)` issued since the last call.
    pub fn take_io(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.written)
    }

    /// The file, for mapping.
    pub fn file(&self) -> &StorageFile {
        &self.file
    }
}

/// Reads the header of an existing value file: the header bytes and whether magic and checksum hold.
fn read_header(file: &StorageFile, kind: ValueFileKind) -> Result<([u8; 32], bool, u64)> {
    let len = file.len()?;
    let mut h = [0u8; VALUE_FILE_HEADER as usize];
    let ok = len >= VALUE_FILE_HEADER
        && file.read_exact_at(&mut h, 0).is_ok()
        && &h[..8] == kind.magic()
        && crc32fast::hash(&h[..28]) == le::u32_at(&h, 28);
    Ok((h, ok, len))
}

/// Checks an existing value file against what a checkpoint says of it: a sound header of this format
/// version and shard, and at least `end` bytes.
fn check_existing(
    path: &Path,
    h: &[u8; 32],
    header_ok: bool,
    len: u64,
    shard: u32,
    end: u64,
) -> Result<()> {
    let short = || {
        Error::corruption(
            path,
            len,
            format!("file is {len} bytes but the checkpoint says data runs to {end}"),
        )
    };
    if len < VALUE_FILE_HEADER {
        return Err(short());
    }
    if !header_ok {
        return Err(Error::corruption(path, 0, "bad value-file header"));
    }
    let version = le::u32_at(h, 8);
    if version != FORMAT_VERSION {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if le::u32_at(h, 12) != shard {
        return Err(Error::corruption(
            path,
            12,
            "value file belongs to another shard",
        ));
    }
    if len < end {
        return Err(short());
    }
    Ok(())
}

/// Opens an existing value file read-only (a read-only handle's snapshot), checked like the writer
/// checks it: the map of its first `end` bytes can then never reach past the file's end.
pub(crate) fn open_for_reading(
    path: &Path,
    kind: ValueFileKind,
    shard: u32,
    end: u64,
) -> Result<StorageFile> {
    let file = io::open(path, io::OpenHow::READ)?;
    let (h, ok, len) = read_header(&file, kind)?;
    check_existing(path, &h, ok, len, shard, end)?;
    Ok(file)
}

/// Reads and checks the value record at `off` from a mapped value file. The value is copied out of
/// the map first and the checksum computed on the copy, so a record another process rewrites meanwhile
/// (a reused extent, see `reader.rs`) is returned whole or fails the check, never torn.
#[inline]
pub(crate) fn read_value(
    map: &[u8],
    path: &Path,
    off: u64,
    len: u32,
    hash: u64,
) -> Result<Vec<u8>> {
    check_record_bounds(map.len() as u64, path, off, len)?;
    let start = off as usize;
    let value_start = start + VALUE_RECORD_HEADER as usize;
    let stored_crc = le::u32_at(map, start);
    let value = map[value_start..value_start + len as usize].to_vec();
    if value_crc(hash, &value) != stored_crc {
        return Err(crc_mismatch(path, off));
    }
    Ok(value)
}

fn crc_mismatch(path: &Path, off: u64) -> Error {
    Error::corruption(path, off, "value record checksum mismatch")
}

/// Bytes of the value record of a `len`-byte value.
#[inline]
pub(crate) fn record_bytes(len: u32) -> usize {
    VALUE_RECORD_HEADER as usize + len as usize
}

/// Checks that the record of a `len`-byte value at `off` lies inside a file of `file_end` bytes.
#[inline]
pub(crate) fn check_record_bounds(file_end: u64, path: &Path, off: u64, len: u32) -> Result<()> {
    if off < VALUE_FILE_HEADER || off + record_bytes(len) as u64 > file_end {
        return Err(Error::corruption(
            path,
            off,
            format!("value record of {len} bytes lies outside the file"),
        ));
    }
    Ok(())
}

/// The value in `record` (the record's bytes, read from `off`) once its checksum binds it to `hash`.
#[inline]
pub(crate) fn checked_value<'r>(
    record: &'r [u8],
    path: &Path,
    off: u64,
    hash: u64,
) -> Result<&'r [u8]> {
    let value = &record[VALUE_RECORD_HEADER as usize..];
    if value_crc(hash, value) != le::u32_at(record, 0) {
        return Err(crc_mismatch(path, off));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_sync_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        let mut w = ValueWriter::open(p.clone(), ValueFileKind::Data, 2, 0).unwrap();
        let a = w.append(11, b"hello").unwrap();
        let b = w.append(12, &[7u8; 5000]).unwrap();
        w.sync().unwrap();
        let end = w.end();
        let map = std::fs::read(&p).unwrap();
        assert_eq!(read_value(&map, &p, a, 5, 11).unwrap(), b"hello");
        assert_eq!(read_value(&map, &p, b, 5000, 12).unwrap(), vec![7u8; 5000]);
        // Wrong key hash: the record does not belong to that key.
        assert!(read_value(&map, &p, a, 5, 99).is_err());
        // Out of bounds.
        assert!(read_value(&map, &p, end, 5, 11).is_err());
        drop(w);
        let w = ValueWriter::open(p.clone(), ValueFileKind::Data, 2, end).unwrap();
        assert_eq!(w.end(), end);
        assert!(ValueWriter::open(p.clone(), ValueFileKind::Hot, 2, end).is_err());
        assert!(ValueWriter::open(p, ValueFileKind::Data, 3, end).is_err());
    }

    /// Found by the `log_recovery` fuzz target: a store whose data file was deleted reopened with an
    /// empty new file mapped to the checkpointed end, and the first read faulted with SIGBUS.
    #[test]
    fn missing_file_with_checkpointed_records_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        let e = ValueWriter::open(p.clone(), ValueFileKind::Data, 0, 100).unwrap_err();
        assert!(matches!(e, Error::Corruption { offset: 0, .. }), "{e}");
        assert!(!p.exists(), "no empty file may be left in its place");
        // Nothing checkpointed past the header: a missing file is simply created.
        let w = ValueWriter::open(p, ValueFileKind::Hot, 0, VALUE_FILE_HEADER).unwrap();
        assert_eq!(w.end(), VALUE_FILE_HEADER);
    }
}
