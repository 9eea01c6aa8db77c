//! The publication board: how the writer process tells read-only processes (`reader.rs`) that a
//! shard has a new durable checkpoint, without any lock or message. Format: `docs/format/published.md`.
//!
//! ```text
//! <store>/PUBLISHED, 64-bit little-endian words, mapped shared (io/shared.rs):
//!   word 0 magic "TKVPUB\0\0" | 1 version | 2 layout epoch (0 while being rewritten) | 3 shard count n
//!   word 4 + i, i < n: publication count of the shard at position i of the layout (routing order)
//! ```
//!
//! Protocol. The writer stores a shard's checkpoint (temp file, fsync, rename, directory fsync), then
//! adds one to the shard's word (release). A reader loads the word (acquire) *before* it reads the
//! checkpoint file and remembers the value; when a later load differs, a newer checkpoint exists and
//! the reader reloads. So a reader that checks the board before a get answers from a state no older
//! than the checkpoint stored before its check. At open the writer sets the epoch to 0, bumps every
//! shard's word, then stores the layout's epoch (a hash of the manifest): a reader whose epoch differs
//! reloads the manifest and every shard (a rebalance or split happened).
//!
//! While a shard's count stays where it was when a reader read its checkpoint, nothing that checkpoint
//! references is being rewritten (the writer reuses a page or extent only in the flush after the next
//! one): a reader may then read the pages in place, checking the count again after the read (a seqlock
//! on the count). Otherwise the board is advisory: it says *when* to look, never *what* is valid. A reader that loads a stale
//! word only reloads later (it still validates every page and value it reads), and a reader of a store
//! without a board (or with a damaged one) just never reloads by itself.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::io::shared::SharedWords;
use crate::manifest::Manifest;

const MAGIC: u64 = u64::from_le_bytes(*b"TKVPUB\0\0");
const VERSION: u64 = 1;
const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_EPOCH: usize = 2;
const W_SHARDS: usize = 3;
const HEADER_WORDS: usize = 4;

/// The board's file.
pub(crate) fn path(store: &Path) -> PathBuf {
    store.join("PUBLISHED")
}

/// The layout epoch of a manifest: nonzero, and different for every layout a store goes through
/// (layout number, shard list and tier directories all enter it).
pub(crate) fn epoch(manifest: &Manifest) -> u64 {
    let bytes = serde_json::to_vec(manifest).unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&bytes) | 1
}

/// A store's publication board.
#[derive(Debug)]
pub(crate) struct Board {
    words: SharedWords,
}

impl Board {
    /// The writer's side, at open: announces the layout `epoch` for `shards` shards and bumps every
    /// shard's count (so readers of the previous writer reload once).
    pub fn announce(store: &Path, epoch: u64, shards: usize) -> Result<Board> {
        let words = SharedWords::open_writable(&path(store), HEADER_WORDS + shards)?;
        words.store(W_EPOCH, 0);
        words.store(W_MAGIC, MAGIC);
        words.store(W_VERSION, VERSION);
        words.store(W_SHARDS, shards as u64);
        for i in 0..shards {
            words.add(HEADER_WORDS + i, 1);
        }
        words.store(W_EPOCH, epoch);
        Ok(Board { words })
    }

    /// The writer's side: the shard at `position` has stored a new checkpoint.
    pub fn publish(&self, position: usize) {
        self.words.add(HEADER_WORDS + position, 1);
        // No write of a later flush (the one that may reuse what a reader's older checkpoint
        // references) may become visible before the new count: readers that find the count
        // unchanged after reading in place rely on it (`reader.rs`, `read_in_place`).
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// A reader's side: the store's board, or `None` when it has none (or not one of this version).
    pub fn open(store: &Path) -> Result<Option<Board>> {
        let Some(words) = SharedWords::open_read_only(&path(store))? else {
            return Ok(None);
        };
        if words.len() < HEADER_WORDS
            || words.load(W_MAGIC) != MAGIC
            || words.load(W_VERSION) != VERSION
        {
            return Ok(None);
        }
        Ok(Some(Board { words }))
    }

    /// The layout epoch now on the board (0 while a writer rewrites it).
    pub fn epoch(&self) -> u64 {
        self.words.load(W_EPOCH)
    }

    /// The publication count of the shard at `position` (0 when the board has no such word).
    #[inline]
    pub fn count(&self, position: usize) -> u64 {
        let i = HEADER_WORDS + position;
        if i < self.words.len() {
            self.words.load(i)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_announcements_and_publications() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Board::open(dir.path()).unwrap().is_none());
        let w = Board::announce(dir.path(), 77, 4).unwrap();
        let r = Board::open(dir.path()).unwrap().unwrap();
        assert_eq!(r.epoch(), 77);
        let before = r.count(3);
        w.publish(3);
        assert_eq!(r.count(3), before + 1);
        assert_eq!(r.count(100_000), 0, "a position past the board reads 0");
        // A new writer: new epoch, every count moves.
        let c0 = r.count(0);
        let _w2 = Board::announce(dir.path(), 99, 2).unwrap();
        assert_eq!(r.epoch(), 99);
        assert_ne!(r.count(0), c0);
    }
}
