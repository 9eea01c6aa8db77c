//! The store's sync point (`<store>/SYNCED`): the global sequence number `G` below which every logged
//! record of every shard is durable. Format: `docs/format/syncpoint.md`.
//!
//! Every record carries a global sequence number, assigned under its shard's lock, so the write
//! history is one sequence across shards. After a crash, records below `G` are kept; above it, the
//! sequence numbers found in all shards' logs are kept up to the first missing one, and everything
//! after that gap is discarded: the store comes back as a prefix of the history, never with holes.
//!
//! Two 32-byte slots at offsets 0 and 512 (different sectors) are written alternately, each
//! `magic "TKVSYNC\0" | version u32 | reserved u32 | generation u64 | G u64`... with a CRC in the last
//! 4 bytes; the valid slot with the higher generation wins, so a torn write loses at most the newest
//! update.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{self, le, StorageFile};
use crate::manifest::FORMAT_VERSION;

const MAGIC: &[u8; 8] = b"TKVSYNC\0";
const SLOT: usize = 36;
const SLOT_OFFSETS: [u64; 2] = [0, 512];

/// The sync-point file, open for updates.
#[derive(Debug)]
pub(crate) struct SyncPoint {
    file: StorageFile,
    generation: u64,
    /// The persisted `G`.
    pub value: u64,
}

fn encode(generation: u64, value: u64) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[24..32].copy_from_slice(&value.to_le_bytes());
    let crc = crc32fast::hash(&b[..32]);
    b[32..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8], path: &Path) -> Result<Option<(u64, u64)>> {
    if b.len() < SLOT || &b[..8] != MAGIC || crc32fast::hash(&b[..32]) != le::u32_at(b, 32) {
        return Ok(None);
    }
    let version = le::u32_at(b, 8);
    if version != FORMAT_VERSION {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    Ok(Some((le::u64_at(b, 16), le::u64_at(b, 24))))
}

impl SyncPoint {
    /// Opens (or creates, with `G = 0`) the sync point of the store at `store`.
    pub fn open(store: &Path) -> Result<SyncPoint> {
        let path = store.join("SYNCED");
        let existed = path.exists();
        let file = io::open_or_create(&path)?;
        let bytes = io::read_file(&path)?.unwrap_or_default();
        let mut best: Option<(u64, u64)> = None;
        for off in SLOT_OFFSETS {
            let off = off as usize;
            if bytes.len() >= off + SLOT {
                if let Some(s) = decode(&bytes[off..off + SLOT], &path)? {
                    if best.is_none_or(|b| s.0 > b.0) {
                        best = Some(s);
                    }
                }
            }
        }
        if existed && best.is_none() && bytes.iter().any(|&b| b != 0) {
            return Err(Error::corruption(
                &path,
                0,
                "both sync-point slots are damaged",
            ));
        }
        let (generation, value) = best.unwrap_or((0, 0));
        let mut sp = SyncPoint {
            file,
            generation,
            value,
        };
        if !existed {
            sp.store(0)?;
            io::sync_dir(store)?;
        }
        Ok(sp)
    }

    /// Durably records `value` as the new `G`.
    pub fn store(&mut self, value: u64) -> Result<()> {
        let generation = self.generation + 1;
        let slot = SLOT_OFFSETS[(generation % 2) as usize];
        self.file.write_all_at(&encode(generation, value), slot)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.value = value;
        Ok(())
    }
}

/// The first sequence number `≥ start` missing from `seqs` (sorted ascending, may hold values < start).
pub(crate) fn first_gap(seqs: &[u64], start: u64) -> u64 {
    let mut expect = start;
    for &s in seqs.iter().filter(|&&s| s >= start) {
        if s != expect {
            return expect;
        }
        expect += 1;
    }
    expect
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_survives_a_torn_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut sp = SyncPoint::open(dir.path()).unwrap();
        assert_eq!(sp.value, 0);
        sp.store(10).unwrap();
        sp.store(20).unwrap();
        drop(sp);
        assert_eq!(SyncPoint::open(dir.path()).unwrap().value, 20);
        // Tear the newest slot: the previous value is still there.
        let p = dir.path().join("SYNCED");
        let mut bytes = std::fs::read(&p).unwrap();
        let newest = SLOT_OFFSETS[0] as usize; // generation 3 (20) is in slot 1 % 2... find it
        let idx = if decode(&bytes[newest..newest + SLOT], &p)
            .unwrap()
            .unwrap()
            .1
            == 20
        {
            newest
        } else {
            512
        };
        bytes[idx + 25] ^= 0xFF;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(SyncPoint::open(dir.path()).unwrap().value, 10);
    }

    #[test]
    fn gaps() {
        assert_eq!(first_gap(&[], 5), 5);
        assert_eq!(first_gap(&[1, 2, 5, 6, 7, 9], 5), 8);
        assert_eq!(first_gap(&[5, 6, 7], 5), 8);
        assert_eq!(first_gap(&[6, 7], 5), 5);
    }
}
