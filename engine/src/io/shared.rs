//! Shared 64-bit words: a small file mapped `MAP_SHARED` by the writer process (read-write) and by
//! read-only processes (read-only), whose 8-byte-aligned words are loaded and stored atomically. It
//! carries the publication board (`publish.rs`); nothing in it is durable and nothing is synced.
//!
//! The file is opened with `std::fs`, not through the storage backend: like the writer lock it is an
//! OS-level meeting point between processes, not store data (a crash image needs none of it).

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{IoContext, Result};

/// A mapped array of atomic 64-bit words.
#[derive(Debug)]
pub(crate) struct SharedWords {
    map: MmapRaw,
    words: usize,
    writable: bool,
}

impl SharedWords {
    /// Opens (creating when missing) `path` read-write with room for at least `words` words. The file
    /// only ever grows, so a map another process holds never reaches past its end.
    pub fn open_writable(path: &Path, words: usize) -> Result<SharedWords> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let want = (words * 8).next_multiple_of(4096) as u64;
        let len = file.metadata().at(path)?.len();
        if len < want {
            file.set_len(want).at(path)?;
        }
        let len = len.max(want);
        let map = MmapOptions::new()
            .len(len as usize)
            .map_raw(&file)
            .at(path)?;
        Ok(SharedWords {
            map,
            words: len as usize / 8,
            writable: true,
        })
    }

    /// Maps an existing `path` read-only; `None` when it does not exist.
    pub fn open_read_only(path: &Path) -> Result<Option<SharedWords>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::Error::io(path, e)),
        };
        let len = file.metadata().at(path)?.len() as usize / 8 * 8;
        if len == 0 {
            return Ok(None);
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .at(path)?;
        Ok(Some(SharedWords {
            map,
            words: len / 8,
            writable: false,
        }))
    }

    /// Number of words mapped.
    pub fn len(&self) -> usize {
        self.words
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words, "shared word {i} of {}", self.words);
        // SAFETY: the map is page-aligned and `i < words`, so the 8 bytes at `i * 8` are inside it and
        // 8-byte aligned; they live as long as `self`; `AtomicU64` has the layout of `u64`, and every
        // process touches these words only through atomic operations. A read-only map is only ever
        // loaded from (x86_64 and aarch64 atomic loads are plain loads that never write).
        unsafe { &*(self.map.as_ptr().add(i * 8) as *const AtomicU64) }
    }

    /// Loads word `i` (acquire: what the storer did before its release store is visible after).
    pub fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }

    /// Adds `n` to word `i` (release), wrapping.
    pub fn add(&self, i: usize, n: u64) {
        assert!(self.writable, "add into a read-only shared map");
        self.word(i).fetch_add(n, Ordering::Release);
    }

    /// Stores word `i` (release). Panics on a read-only map: a bug, never user input.
    pub fn store(&self, i: usize, value: u64) {
        assert!(self.writable, "store into a read-only shared map");
        self.word(i).store(value, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_seen_by_another_map_and_the_file_only_grows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("words");
        assert!(SharedWords::open_read_only(&p).unwrap().is_none());
        let w = SharedWords::open_writable(&p, 3).unwrap();
        assert_eq!(w.len(), 512);
        let r = SharedWords::open_read_only(&p).unwrap().unwrap();
        w.store(2, 0xDEAD_BEEF);
        assert_eq!(r.load(2), 0xDEAD_BEEF);
        drop(w);
        let w = SharedWords::open_writable(&p, 1).unwrap();
        assert_eq!(
            w.len(),
            512,
            "never shrinks below what another map may hold"
        );
        assert_eq!(w.load(2), 0xDEAD_BEEF);
        let big = SharedWords::open_writable(&p, 600).unwrap();
        assert_eq!(big.len(), 1024);
        big.store(700, 7);
        assert_eq!(r.load(2), 0xDEAD_BEEF);
    }
}
