//! The per-shard Bloom filter over the keys of the shard's global table (`bloomfilter` crate, fixed
//! seed so a persisted filter reads back identically). The filter stores the key's 64-bit hash.
//! Deletes cannot clear bits: the filter counts insertions and removals since it was built so its
//! false-positive rate can be estimated and a rebuild scheduled.

use bloomfilter::Bloom;

/// Fixed seed: the filter is persisted, so its hash functions must not change between runs.
const SEED: [u8; 32] = *b"tierkv-bloom-seed-v1-0123456789a";

/// A Bloom filter with bookkeeping for its false-positive estimate.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    bloom: Bloom<u64>,
    /// Keys the filter was sized for.
    pub capacity: u64,
    /// Keys added since the filter was built (stale ones included).
    pub inserted: u64,
    /// Keys removed from the table since the filter was built (their bits stay set).
    pub removed: u64,
}

impl Filter {
    /// An empty filter sized for `capacity` keys at false-positive rate `fpr`.
    pub fn new(capacity: u64, fpr: f64) -> Filter {
        let capacity = capacity.max(1024);
        let bloom = Bloom::new_for_fp_rate_with_seed(capacity as usize, fpr, &SEED)
            .expect("capacity ≥ 1024 and fpr in (0, 0.5) are validated by Options");
        Filter {
            bloom,
            capacity,
            inserted: 0,
            removed: 0,
        }
    }

    #[inline]
    pub fn insert(&mut self, hash: u64) {
        self.bloom.set(&hash);
        self.inserted += 1;
    }

    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        self.bloom.check(&hash)
    }

    /// Bytes of the bit array (the DRAM the filter holds).
    pub fn dram_bytes(&self) -> u64 {
        self.bloom.len() / 8
    }

    /// Estimated false-positive rate: `(1 - e^(-k·n/m))^k` with `n` = keys inserted (stale included).
    pub fn estimated_fpr(&self) -> f64 {
        let k = self.bloom.number_of_hash_functions() as f64;
        let m = self.bloom.len() as f64;
        (1.0 - (-k * self.inserted as f64 / m).exp()).powf(k)
    }

    /// Serialized form (the crate's own bytes: header with k and seed, then the bits).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bloom.to_bytes()
    }

    /// Reads a filter written by [`Self::to_bytes`].
    pub fn from_bytes(
        bytes: &[u8],
        capacity: u64,
        inserted: u64,
        removed: u64,
    ) -> Result<Filter, String> {
        let bloom = Bloom::from_slice(bytes).map_err(|e| format!("bad Bloom filter: {e}"))?;
        if bloom.seed() != SEED {
            return Err("Bloom filter seed differs from this build's".into());
        }
        Ok(Filter {
            bloom,
            capacity,
            inserted,
            removed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_fpr_near_target() {
        let mut f = Filter::new(100_000, 0.01);
        for i in 0..100_000u64 {
            f.insert(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()));
        }
        for i in 0..100_000u64 {
            assert!(f.may_contain(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())));
        }
        let fp = (100_000..200_000u64)
            .filter(|i| f.may_contain(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())))
            .count();
        let rate = fp as f64 / 100_000.0;
        assert!(rate < 0.015, "measured fpr {rate}");
        assert!(
            (f.estimated_fpr() - 0.01).abs() < 0.003,
            "estimate {}",
            f.estimated_fpr()
        );
        // ≈ 9.6 bits per key.
        assert!(f.dram_bytes() < 125_000);
    }

    #[test]
    fn round_trip() {
        let mut f = Filter::new(5000, 0.01);
        f.insert(42);
        let g = Filter::from_bytes(&f.to_bytes(), f.capacity, 1, 0).unwrap();
        assert!(g.may_contain(42));
        assert!(Filter::from_bytes(&[1, 2, 3], 1, 0, 0).is_err());
    }
}
