//! The bounded cache of global-table pages that direct I/O reads instead of the kernel's page cache.
//!
//! A CLOCK cache: pages sit in a ring of frames with a referenced bit; a miss that finds the cache
//! full sweeps the hand, clearing bits, and replaces the first unreferenced frame. Keyed by
//! `(index file generation, slot)`.
//!
//! Invariant (what makes a cached page never stale): the flush writes every page it writes through
//! this cache (`insert` after the device write, before the snapshot referencing it is published),
//! and a slot is only rewritten after no published snapshot references it. An index file of a new
//! generation starts with no entries of its own.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::direct::AlignedBuf;

/// A cached page: the page's bytes in an aligned buffer (its first `PAGE_SIZE` bytes).
pub(crate) type CachedPage = Arc<AlignedBuf>;

type Key = (u64, u32);

#[derive(Debug)]
struct Frame {
    key: Key,
    page: CachedPage,
    referenced: bool,
}

#[derive(Debug, Default)]
struct Clock {
    frames: Vec<Frame>,
    index: HashMap<Key, usize>,
    hand: usize,
}

/// A shard's page cache.
#[derive(Debug)]
pub(crate) struct PageCache {
    capacity: usize,
    clock: Mutex<Clock>,
}

impl PageCache {
    /// A cache holding up to `capacity` pages (at least one).
    pub fn new(capacity: usize) -> PageCache {
        PageCache {
            capacity: capacity.max(1),
            clock: Mutex::new(Clock::default()),
        }
    }

    /// The cached page of `slot` in the index file of `generation`.
    pub fn get(&self, generation: u64, slot: u32) -> Option<CachedPage> {
        let mut c = self.clock.lock();
        let i = *c.index.get(&(generation, slot))?;
        c.frames[i].referenced = true;
        Some(c.frames[i].page.clone())
    }

    /// Caches (or replaces) the page of `slot`.
    pub fn insert(&self, generation: u64, slot: u32, page: CachedPage) {
        let key = (generation, slot);
        let mut c = self.clock.lock();
        if let Some(&i) = c.index.get(&key) {
            c.frames[i].page = page;
            c.frames[i].referenced = true;
            return;
        }
        if c.frames.len() < self.capacity {
            let i = c.frames.len();
            c.frames.push(Frame {
                key,
                page,
                referenced: false,
            });
            c.index.insert(key, i);
            return;
        }
        loop {
            let h = c.hand;
            c.hand = (h + 1) % c.frames.len();
            if c.frames[h].referenced {
                c.frames[h].referenced = false;
                continue;
            }
            let old = std::mem::replace(
                &mut c.frames[h],
                Frame {
                    key,
                    page,
                    referenced: false,
                },
            );
            c.index.remove(&old.key);
            c.index.insert(key, h);
            return;
        }
    }

    /// Most pages the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Pages cached now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.clock.lock().frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(b: u8) -> CachedPage {
        let mut p = AlignedBuf::zeroed(4096);
        p.as_mut_slice()[0] = b;
        Arc::new(p)
    }

    #[test]
    fn bounded_and_replaces_in_place() {
        let c = PageCache::new(3);
        for s in 0..10u32 {
            c.insert(1, s, page(s as u8));
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        c.insert(1, 9, page(99));
        assert_eq!(c.get(1, 9).unwrap().as_slice()[0], 99);
        assert!(
            c.get(2, 9).is_none(),
            "another generation has its own entries"
        );
    }

    #[test]
    fn referenced_pages_survive_a_sweep() {
        let c = PageCache::new(2);
        c.insert(1, 1, page(1));
        c.insert(1, 2, page(2));
        assert!(c.get(1, 1).is_some());
        c.insert(1, 3, page(3));
        assert!(c.get(1, 1).is_some(), "the referenced page stays");
        assert!(c.get(1, 2).is_none(), "the unreferenced one goes");
    }
}
