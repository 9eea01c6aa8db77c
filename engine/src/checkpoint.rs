//! The per-shard checkpoint: everything needed to open a shard without scanning it. Written atomically
//! (temp file, fsync, rename, directory fsync) at the end of every flush and at a clean close. Format:
//! `docs/format/checkpoint.md`.
//!
//! ```text
//! magic "TKVCKPT\0" | version u32 | shard u32 | body length u64 | body | crc32 u32 (of all before it)
//! body: fixed u64 fields (see `FIELDS`), then page map (u32 × buckets), free slots (count u64 +
//!       u32 each), Bloom bytes (length u64 + bytes), free data extents (count u64 + (offset u64,
//!       length u32) each)
//! ```

use std::path::Path;

use crate::bloom::Filter;
use crate::error::{Error, Result};
use crate::io::{self, le};
use crate::manifest::FORMAT_VERSION;
use crate::stats::TIERS;

const MAGIC: &[u8; 8] = b"TKVCKPT\0";

/// A shard's durable state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Checkpoint {
    /// Flush generation (increments with every flush).
    pub generation: u64,
    /// Generation number of the current index file.
    pub index_file: u64,
    /// Slots in the index file (slot 0 is its header).
    pub index_slots: u32,
    /// Buckets of the global table (the page map's length).
    pub buckets: u32,
    /// End of the valid data in the data file.
    pub data_end: u64,
    /// End of the valid data in the hot file.
    pub hot_end: u64,
    /// Log segments with a sequence number ≤ this are flushed.
    pub log_flushed_seq: u64,
    /// Largest global record sequence number flushed into the table.
    pub max_seq: u64,
    /// Generation number of the current data file.
    pub data_file: u64,
    /// Generation number of the current hot file.
    pub hot_file: u64,
    pub table_keys: u64,
    /// Bytes of keys and values of the table's entries.
    pub table_live_bytes: u64,
    /// Bytes of encoded entries in pages.
    pub entry_bytes: u64,
    pub overflow_pages: u64,
    pub data_dead_bytes: u64,
    pub hot_dead_bytes: u64,
    pub bloom_capacity: u64,
    pub bloom_inserted: u64,
    pub bloom_removed: u64,
    /// Bytes written per tier since the store was created.
    pub written_total: [u64; TIERS],
    /// Primary slot of each bucket.
    pub page_map: Vec<u32>,
    /// Index slots not referenced by this checkpoint.
    pub free_slots: Vec<u32>,
    /// Dead extents of the data file `(offset, length)` that values of a page or more reuse.
    pub data_free: Vec<(u64, u32)>,
    pub bloom: Vec<u8>,
}

impl Checkpoint {
    fn fixed(&self) -> Vec<u64> {
        let mut v = vec![
            self.generation,
            self.index_file,
            self.index_slots as u64,
            self.buckets as u64,
            self.data_end,
            self.hot_end,
            self.log_flushed_seq,
            self.table_keys,
            self.table_live_bytes,
            self.entry_bytes,
            self.overflow_pages,
            self.data_dead_bytes,
            self.hot_dead_bytes,
            self.bloom_capacity,
            self.bloom_inserted,
            self.bloom_removed,
            self.max_seq,
            self.data_file,
            self.hot_file,
        ];
        v.extend_from_slice(&self.written_total);
        v
    }

    const FIXED_FIELDS: usize = 19 + TIERS;

    pub fn encode(&self, shard: u32) -> Vec<u8> {
        let mut body = Vec::with_capacity(
            Self::FIXED_FIELDS * 8
                + self.page_map.len() * 4
                + self.free_slots.len() * 4
                + self.bloom.len()
                + 16,
        );
        for f in self.fixed() {
            body.extend_from_slice(&f.to_le_bytes());
        }
        for s in &self.page_map {
            body.extend_from_slice(&s.to_le_bytes());
        }
        body.extend_from_slice(&(self.free_slots.len() as u64).to_le_bytes());
        for s in &self.free_slots {
            body.extend_from_slice(&s.to_le_bytes());
        }
        body.extend_from_slice(&(self.bloom.len() as u64).to_le_bytes());
        body.extend_from_slice(&self.bloom);
        body.extend_from_slice(&(self.data_free.len() as u64).to_le_bytes());
        for (off, len) in &self.data_free {
            body.extend_from_slice(&off.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
        }
        let mut out = Vec::with_capacity(body.len() + 28);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&shard.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8], path: &Path, shard: u32) -> Result<Checkpoint> {
        let bad = |offset: usize, reason: &str| {
            Error::corruption(path, offset as u64, reason.to_string())
        };
        if bytes.len() < 28 || &bytes[..8] != MAGIC {
            return Err(bad(0, "not a tierkv checkpoint (bad magic)"));
        }
        // The checksum first: a flipped bit in the version field is corruption, not another version.
        // Checked: a damaged length field near 2^64 must not overflow the comparison.
        let body_len = le::u64_at(bytes, 16);
        if body_len.checked_add(28) != Some(bytes.len() as u64) {
            return Err(bad(16, "checkpoint length does not match its header"));
        }
        let crc_at = 24 + body_len as usize;
        if crc32fast::hash(&bytes[..crc_at]) != le::u32_at(bytes, crc_at) {
            return Err(bad(crc_at, "checkpoint checksum mismatch"));
        }
        let version = le::u32_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(Error::FormatVersion {
                file: path.to_path_buf(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        if le::u32_at(bytes, 12) != shard {
            return Err(bad(
                12,
                &format!("checkpoint belongs to shard {}", le::u32_at(bytes, 12)),
            ));
        }
        let body = &bytes[24..crc_at];
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            // `at <= body.len()` always; a count read from the body may be near 2^64.
            if n > body.len() - at {
                return Err(bad(24 + at, "checkpoint body cut short"));
            }
            let s = &body[at..at + n];
            at += n;
            Ok(s)
        };
        let mut fixed = [0u64; Checkpoint::FIXED_FIELDS];
        for f in fixed.iter_mut() {
            *f = le::u64_at(take(8)?, 0);
        }
        let buckets = fixed[3];
        if buckets == 0 || buckets > u32::MAX as u64 || buckets * 4 > body.len() as u64 {
            return Err(bad(24, "checkpoint bucket count out of range"));
        }
        let buckets = buckets as u32;
        let mut page_map = Vec::with_capacity(buckets as usize);
        for _ in 0..buckets {
            page_map.push(le::u32_at(take(4)?, 0));
        }
        let free = le::u64_at(take(8)?, 0) as usize;
        let mut free_slots = Vec::with_capacity(free.min(1 << 24));
        for _ in 0..free {
            free_slots.push(le::u32_at(take(4)?, 0));
        }
        let bloom_len = le::u64_at(take(8)?, 0) as usize;
        let bloom = take(bloom_len)?.to_vec();
        let extents = le::u64_at(take(8)?, 0) as usize;
        let mut data_free = Vec::with_capacity(extents.min(1 << 20));
        for _ in 0..extents {
            let e = take(12)?;
            data_free.push((le::u64_at(e, 0), le::u32_at(e, 8)));
        }
        Ok(Checkpoint::from_fields(
            &fixed, page_map, free_slots, data_free, bloom,
        ))
    }

    /// A checkpoint from its fixed fields in body order (`FIELDS`) and its lists; the bucket count
    /// is the page map's length (the decoder has checked it against the stored one).
    pub fn from_fields(
        fixed: &[u64],
        page_map: Vec<u32>,
        free_slots: Vec<u32>,
        data_free: Vec<(u64, u32)>,
        bloom: Vec<u8>,
    ) -> Checkpoint {
        let mut written_total = [0u64; TIERS];
        written_total.copy_from_slice(&fixed[19..19 + TIERS]);
        Checkpoint {
            generation: fixed[0],
            index_file: fixed[1],
            index_slots: fixed[2] as u32,
            buckets: page_map.len() as u32,
            data_end: fixed[4],
            hot_end: fixed[5],
            log_flushed_seq: fixed[6],
            table_keys: fixed[7],
            table_live_bytes: fixed[8],
            entry_bytes: fixed[9],
            overflow_pages: fixed[10],
            data_dead_bytes: fixed[11],
            hot_dead_bytes: fixed[12],
            bloom_capacity: fixed[13],
            bloom_inserted: fixed[14],
            bloom_removed: fixed[15],
            max_seq: fixed[16],
            data_file: fixed[17],
            hot_file: fixed[18],
            written_total,
            page_map,
            free_slots,
            data_free,
            bloom,
        }
    }

    /// Writes the checkpoint atomically; returns the bytes written.
    pub fn store(&self, path: &Path, shard: u32) -> Result<u64> {
        let bytes = self.encode(shard);
        io::atomic_write(path, &bytes)?;
        Ok(bytes.len() as u64)
    }

    /// The Bloom filter this checkpoint carries (an empty one sized for 1024 keys at `fpr` when it
    /// carries none); `path` names the checkpoint in the error when its bytes are unreadable.
    pub fn filter(&self, path: &Path, fpr: f64) -> Result<Filter> {
        if self.bloom.is_empty() {
            return Ok(Filter::new(1024, fpr));
        }
        Filter::from_bytes(
            &self.bloom,
            self.bloom_capacity,
            self.bloom_inserted,
            self.bloom_removed,
        )
        .map_err(|reason| Error::corruption(path, 0, reason))
    }

    /// A shard that has never been flushed: one bucket with no page, value files holding only headers.
    pub fn empty() -> Checkpoint {
        Checkpoint {
            index_slots: 1,
            buckets: 1,
            page_map: vec![0],
            data_end: crate::data::VALUE_FILE_HEADER,
            hot_end: crate::data::VALUE_FILE_HEADER,
            ..Checkpoint::default()
        }
    }

    /// Reads the checkpoint at `path`, `Ok(None)` when there is none.
    pub fn load(path: &Path, shard: u32) -> Result<Option<Checkpoint>> {
        match io::read_file(path)? {
            Some(bytes) => Checkpoint::decode(&bytes, path, shard).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_detected() {
        let c = Checkpoint {
            generation: 3,
            buckets: 4,
            page_map: vec![1, 2, 3, 4],
            free_slots: vec![9, 10],
            data_free: vec![(4096, 8192)],
            bloom: vec![7; 20],
            written_total: [1, 2, 3, 4, 5],
            data_end: 999,
            ..Checkpoint::default()
        };
        let bytes = c.encode(4);
        let p = Path::new("ckpt");
        assert_eq!(Checkpoint::decode(&bytes, p, 4).unwrap(), c);
        assert!(Checkpoint::decode(&bytes, p, 5).is_err());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(Checkpoint::decode(&b, p, 4).is_err(), "flip at {i}");
        }
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1], p, 4).is_err());
    }

    /// Found by the `log_recovery` fuzz target: a length field near 2^64 overflowed the length
    /// check (a panic with overflow checks), and a checksummed body whose Bloom length is near 2^64
    /// overflowed the bounds check of the body reader.
    #[test]
    fn huge_lengths_are_corruption() {
        let c = Checkpoint {
            buckets: 1,
            page_map: vec![0],
            ..Checkpoint::default()
        };
        let p = Path::new("ckpt");
        let mut bytes = c.encode(0);
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = Checkpoint::decode(&bytes, p, 0).unwrap_err();
        assert!(matches!(e, Error::Corruption { offset: 16, .. }), "{e}");
        // Bloom length field: after 24 fixed fields, one page-map slot and the free-slot count.
        let mut bytes = c.encode(0);
        let at = 24 + Checkpoint::FIXED_FIELDS * 8 + 4 + 8;
        bytes[at..at + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        let end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        let e = Checkpoint::decode(&bytes, p, 0).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }
}
