//! The key hash and how it is split. The on-disk layout depends on it, so it never changes silently:
//! a change is a new format version.
//!
//! `h = XXH3-64(key)` (seedless). Fields of `h`, most significant bit first:
//!
//! ```text
//!  63            64-s   47                 16 15            0
//! +----------------+-----+-------------------+--------------+
//! | shard (s bits) |     | bucket (≤32 bits) | fingerprint  |
//! +----------------+-----+-------------------+--------------+
//! ```
//!
//! * shard selector: the top `s = log2(shards)` bits (`s ≤ 16`), so splitting one shard in two uses one
//!   more bit and leaves the others untouched;
//! * bucket selector: bits 16..48 as a 32-bit number `x`, mapped to `x · buckets / 2^32` (multiply-
//!   shift range reduction), so a table may have any bucket count and is sized to its keys, not to the
//!   next power of two;
//! * fingerprint: the low 16 bits; the Robin Hood log table uses the low bits of `h` for home slots.

/// Largest supported shard count (the shard selector is at most 16 bits).
pub const MAX_SHARDS: u32 = 1 << 16;

/// A key's 64-bit hash, with accessors for its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// Hashes `key` with XXH3-64 (no seed).
    #[inline]
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_64(key))
    }

    /// The shard this key belongs to among `2^shard_bits` shards.
    #[inline]
    pub fn shard(self, shard_bits: u32) -> u32 {
        if shard_bits == 0 {
            0
        } else {
            (self.0 >> (64 - shard_bits)) as u32
        }
    }

    /// The bucket among `buckets` buckets of a shard's global table.
    #[inline]
    pub fn bucket(self, buckets: u32) -> u32 {
        (((self.0 >> 16) as u32 as u64 * buckets as u64) >> 32) as u32
    }

    /// The low 16 bits.
    #[inline]
    pub fn fingerprint(self) -> u16 {
        self.0 as u16
    }
}

/// `log2(n)` for a power of two `n`, or `None`.
pub fn exact_log2(n: u64) -> Option<u32> {
    if n.is_power_of_two() {
        Some(n.trailing_zeros())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed_xxh3() {
        // Pinned values: a change here changes the on-disk layout of every store.
        assert_eq!(KeyHash::of(b"").0, 0x2d06800538d394c2);
        assert_eq!(
            KeyHash::of(b"hello").0,
            xxhash_rust::xxh3::xxh3_64(b"hello")
        );
    }

    #[test]
    fn shard_uses_top_bits() {
        let h = KeyHash(0xF000_0000_0000_0000);
        assert_eq!(h.shard(0), 0);
        assert_eq!(h.shard(1), 1);
        assert_eq!(h.shard(4), 15);
        assert_eq!(KeyHash(0x7FFF_FFFF_FFFF_FFFF).shard(1), 0);
    }

    #[test]
    fn buckets_of_any_count_are_even() {
        for buckets in [1u32, 3, 100, 1000] {
            let mut counts = vec![0u32; buckets as usize];
            for k in 0..100_000u32 {
                let b = KeyHash::of(&k.to_le_bytes()).bucket(buckets);
                counts[b as usize] += 1;
            }
            let mean = 100_000.0 / buckets as f64;
            for c in counts {
                assert!(
                    (c as f64 - mean).abs() < 6.0 * mean.sqrt() + 1.0,
                    "{buckets} buckets: {c} vs {mean}"
                );
            }
        }
    }

    #[test]
    fn shards_are_balanced() {
        let mut counts = [0u32; 8];
        for k in 0..80_000u32 {
            counts[KeyHash::of(format!("key{k}").as_bytes()).shard(3) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "shard count {c}");
        }
    }
}
