//! The log table: a DRAM hash table with open addressing and Robin Hood displacement, mapping a key's
//! 64-bit hash to a `u64` payload (for the engine: where the key's newest record sits in the log).
//!
//! The table stores hashes, not keys: equal hashes are told apart by an equality callback the caller
//! supplies (the engine compares the key against the record in the log). Robin Hood insertion keeps
//! probe sequences short at load ≥ 0.9 by letting the entry farther from its home slot take a contested
//! slot; deletion shifts the following run back by one ("backward-shift deletion"), so the table needs
//! no tombstones. Home slot = low bits of the hash. Owns no I/O.

/// One slot: `hash == EMPTY` marks a free slot (a real hash of 0 is stored as 1, see [`stored_hash`]).
#[derive(Clone, Copy, Debug)]
struct Slot {
    hash: u64,
    value: u64,
}

const EMPTY: u64 = 0;

/// The stored form of a hash: 0 is reserved for empty slots.
#[inline]
fn stored_hash(hash: u64) -> u64 {
    if hash == EMPTY {
        1
    } else {
        hash
    }
}

/// Probe-length statistics (the probe length of an entry is its distance from its home slot).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProbeStats {
    /// Entries in the table.
    pub entries: usize,
    /// Slots in the table.
    pub slots: usize,
    /// `entries / slots`.
    pub load_factor: f64,
    /// Mean distance from the home slot.
    pub mean_probe: f64,
    /// Largest distance from the home slot.
    pub max_probe: usize,
    /// `histogram[d]` = entries at distance `d`.
    pub histogram: Vec<usize>,
}

/// Robin Hood hash table from 64-bit hashes to `u64` payloads.
#[derive(Clone, Debug)]
pub struct RobinHoodTable {
    slots: Vec<Slot>,
    len: usize,
    mask: usize,
    max_load: f64,
}

impl Default for RobinHoodTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl RobinHoodTable {
    /// Default maximum load factor before the table doubles.
    pub const DEFAULT_MAX_LOAD: f64 = 0.9;

    /// A table that holds `entries` without growing, at the default maximum load.
    pub fn with_capacity(entries: usize) -> Self {
        Self::with_capacity_and_load(entries, Self::DEFAULT_MAX_LOAD)
    }

    /// A table that holds `entries` without growing and doubles past `max_load` (in `(0, 1)`; values
    /// outside are clamped to `[0.5, 0.98]`).
    pub fn with_capacity_and_load(entries: usize, max_load: f64) -> Self {
        let max_load = if max_load.is_finite() {
            max_load.clamp(0.5, 0.98)
        } else {
            Self::DEFAULT_MAX_LOAD
        };
        let slots = ((entries as f64 / max_load).ceil() as usize + 1)
            .next_power_of_two()
            .max(16);
        RobinHoodTable {
            slots: vec![
                Slot {
                    hash: EMPTY,
                    value: 0
                };
                slots
            ],
            len: 0,
            mask: slots - 1,
            max_load,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// `len / capacity`.
    pub fn load_factor(&self) -> f64 {
        self.len as f64 / self.slots.len() as f64
    }

    /// DRAM held by the slot array.
    pub fn dram_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    #[inline]
    fn distance(&self, index: usize, hash: u64) -> usize {
        index.wrapping_sub(hash as usize) & self.mask
    }

    /// The payload of the entry whose hash is `hash` and for which `eq(payload)` holds.
    #[inline]
    pub fn get(&self, hash: u64, mut eq: impl FnMut(u64) -> bool) -> Option<u64> {
        let hash = stored_hash(hash);
        let mut index = hash as usize & self.mask;
        let mut dist = 0usize;
        loop {
            let slot = self.slots[index];
            if slot.hash == EMPTY || self.distance(index, slot.hash) < dist {
                return None;
            }
            if slot.hash == hash && eq(slot.value) {
                return Some(slot.value);
            }
            index = (index + 1) & self.mask;
            dist += 1;
        }
    }

    /// Starts loading the home slot of `hash` into the cache (a hint: lets a caller that knows its next
    /// keys overlap their cache misses).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::io::prefetch(std::slice::from_ref(
            &self.slots[stored_hash(hash) as usize & self.mask],
        ));
    }

    /// Inserts `value` under `hash`, replacing the entry for which `eq(payload)` holds; returns the
    /// replaced payload.
    pub fn insert(&mut self, hash: u64, value: u64, eq: impl FnMut(u64) -> bool) -> Option<u64> {
        self.insert_with(hash, eq, |_| value)
    }

    /// Inserts the payload `make(old)` under `hash`, where `old` is the payload of the entry for which
    /// `eq` holds (replaced) or `None`; one probe sequence either way. Returns the replaced payload.
    pub fn insert_with(
        &mut self,
        hash: u64,
        mut eq: impl FnMut(u64) -> bool,
        make: impl FnOnce(Option<u64>) -> u64,
    ) -> Option<u64> {
        let hash = stored_hash(hash);
        // Look for an existing entry first (Robin Hood order bounds the search).
        {
            let mut index = hash as usize & self.mask;
            let mut dist = 0usize;
            loop {
                let slot = &mut self.slots[index];
                if slot.hash == EMPTY {
                    break;
                }
                let slot_dist = index.wrapping_sub(slot.hash as usize) & self.mask;
                if slot_dist < dist {
                    break;
                }
                if slot.hash == hash && eq(slot.value) {
                    let old = slot.value;
                    slot.value = make(Some(old));
                    return Some(old);
                }
                index = (index + 1) & self.mask;
                dist += 1;
            }
        }
        if (self.len + 1) as f64 > self.max_load * self.slots.len() as f64 {
            self.grow();
        }
        self.place(Slot {
            hash,
            value: make(None),
        });
        self.len += 1;
        None
    }

    /// Places a slot known not to be present, displacing richer entries.
    fn place(&mut self, mut carried: Slot) {
        let mut index = carried.hash as usize & self.mask;
        let mut dist = 0usize;
        loop {
            let slot = self.slots[index];
            if slot.hash == EMPTY {
                self.slots[index] = carried;
                return;
            }
            let slot_dist = self.distance(index, slot.hash);
            if slot_dist < dist {
                self.slots[index] = carried;
                carried = slot;
                dist = slot_dist;
            }
            index = (index + 1) & self.mask;
            dist += 1;
        }
    }

    fn grow(&mut self) {
        let new_slots = self.slots.len() * 2;
        let old = std::mem::replace(
            &mut self.slots,
            vec![
                Slot {
                    hash: EMPTY,
                    value: 0
                };
                new_slots
            ],
        );
        self.mask = new_slots - 1;
        for slot in old.into_iter().filter(|s| s.hash != EMPTY) {
            self.place(slot);
        }
    }

    /// Removes the entry under `hash` for which `eq(payload)` holds; returns its payload.
    pub fn remove(&mut self, hash: u64, mut eq: impl FnMut(u64) -> bool) -> Option<u64> {
        let hash = stored_hash(hash);
        let mut index = hash as usize & self.mask;
        let mut dist = 0usize;
        loop {
            let slot = self.slots[index];
            if slot.hash == EMPTY || self.distance(index, slot.hash) < dist {
                return None;
            }
            if slot.hash == hash && eq(slot.value) {
                break;
            }
            index = (index + 1) & self.mask;
            dist += 1;
        }
        let removed = self.slots[index].value;
        // Backward-shift: pull the following run back until an empty slot or an entry at home.
        loop {
            let next = (index + 1) & self.mask;
            let slot = self.slots[next];
            if slot.hash == EMPTY || self.distance(next, slot.hash) == 0 {
                self.slots[index] = Slot {
                    hash: EMPTY,
                    value: 0,
                };
                break;
            }
            self.slots[index] = slot;
            index = next;
        }
        self.len -= 1;
        Some(removed)
    }

    /// Removes every entry, keeping the slot array.
    pub fn clear(&mut self) {
        self.slots.fill(Slot {
            hash: EMPTY,
            value: 0,
        });
        self.len = 0;
    }

    /// Every `(stored hash, payload)` in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.hash != EMPTY)
            .map(|s| (s.hash, s.value))
    }

    /// Probe-length statistics over the current entries.
    pub fn probe_stats(&self) -> ProbeStats {
        let mut histogram = Vec::new();
        let mut total = 0usize;
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.hash == EMPTY {
                continue;
            }
            let d = self.distance(index, slot.hash);
            if histogram.len() <= d {
                histogram.resize(d + 1, 0);
            }
            histogram[d] += 1;
            total += d;
        }
        ProbeStats {
            entries: self.len,
            slots: self.slots.len(),
            load_factor: self.load_factor(),
            mean_probe: if self.len == 0 {
                0.0
            } else {
                total as f64 / self.len as f64
            },
            max_probe: histogram.len().saturating_sub(1),
            histogram,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A tiny hash that collides on purpose so equality callbacks and long runs are exercised.
    fn weak_hash(key: u32) -> u64 {
        ((key % 97) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 4099
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u64),
        Remove(u32),
        Get(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..500, any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u32..500).prop_map(Op::Remove),
            (0u32..500).prop_map(Op::Get),
        ]
    }

    /// The payload encodes the key in its high half so `eq` can recognise it.
    fn payload(key: u32, v: u64) -> u64 {
        ((key as u64) << 32) | (v & 0xFFFF_FFFF)
    }

    proptest! {
        #[test]
        fn matches_hashmap(ops in proptest::collection::vec(op(), 1..2000)) {
            let mut table = RobinHoodTable::with_capacity(8);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let p = payload(k, v);
                        let old = table.insert(weak_hash(k), p, |x| (x >> 32) as u32 == k);
                        prop_assert_eq!(old, model.insert(k, p));
                    }
                    Op::Remove(k) => {
                        let old = table.remove(weak_hash(k), |x| (x >> 32) as u32 == k);
                        prop_assert_eq!(old, model.remove(&k));
                    }
                    Op::Get(k) => {
                        let got = table.get(weak_hash(k), |x| (x >> 32) as u32 == k);
                        prop_assert_eq!(got, model.get(&k).copied());
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(table.get(weak_hash(*k), |x| (x >> 32) as u32 == *k), Some(*v));
            }
        }
    }

    #[test]
    fn high_load_keeps_probes_short() {
        let n = 90_000;
        let mut table = RobinHoodTable::with_capacity_and_load(n, 0.95);
        let slots = table.capacity();
        let mut rng_state = 0x1234_5678u64;
        let mut keys = Vec::new();
        while (table.len() as f64) < 0.9 * slots as f64 {
            rng_state = rng_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let h = xxhash_rust::xxh3::xxh3_64(&rng_state.to_le_bytes());
            let v = table.len() as u64;
            table.insert(h, v, |_| false);
            keys.push(h);
        }
        assert_eq!(table.capacity(), slots, "table grew before load 0.9");
        let stats = table.probe_stats();
        assert!(stats.load_factor >= 0.9);
        assert!(stats.mean_probe < 6.0, "mean probe {}", stats.mean_probe);
        for (i, h) in keys.iter().enumerate() {
            assert_eq!(table.get(*h, |v| v == i as u64), Some(i as u64));
        }
        // Delete half, everything else is still found.
        for (i, h) in keys.iter().enumerate().step_by(2) {
            assert_eq!(table.remove(*h, |v| v == i as u64), Some(i as u64));
        }
        for (i, h) in keys.iter().enumerate() {
            let expect = if i % 2 == 0 { None } else { Some(i as u64) };
            assert_eq!(table.get(*h, |v| v == i as u64), expect);
        }
    }

    #[test]
    fn zero_hash_is_storable() {
        let mut t = RobinHoodTable::default();
        assert_eq!(t.insert(0, 7, |_| true), None);
        assert_eq!(t.get(0, |_| true), Some(7));
        assert_eq!(t.remove(0, |_| true), Some(7));
        assert!(t.is_empty());
    }
}
