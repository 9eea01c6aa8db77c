//! Turns a workload spec (parsed and checked by [`tiersim::WorkloadSpec`]) plus command-line overrides
//! into a [`Plan`], and generates its keys and values. Owns: the load order (a seeded shuffle of the
//! key ids, so every engine loads the same keys in the same random order), the value bytes (random,
//! so compression gains nothing), and which phase is timed. Not the operation mix: that is
//! [`tiersim::workload::OpStream`], shared with `kvtool simulate validate`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tiersim::workload::{OpStream, SizeDist};
use tiersim::WorkloadSpec;

/// Command-line overrides of a spec's fields.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Keys to load (`--keys`).
    pub keys: Option<u64>,
    /// Operations in the timed run phase (`--ops`).
    pub ops: Option<u64>,
    /// Fixed value size in bytes (`--value-size`).
    pub value_size: Option<u64>,
    /// Fixed key size in bytes (`--key-size`).
    pub key_size: Option<u64>,
}

/// A resolved workload: the spec with overrides applied, and what is timed.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The spec file.
    pub path: PathBuf,
    /// The spec, overrides applied and re-checked.
    pub spec: WorkloadSpec,
    /// Keys loaded before the run phase.
    pub keys: u64,
    /// Operations in the run phase; 0 means the load itself is the timed phase.
    pub ops: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Plan {
    /// Loads `path` and applies `o`. Errors name the file and the field.
    pub fn resolve(path: &Path, o: &Overrides, seed: u64) -> Result<Plan> {
        let mut spec = WorkloadSpec::load(path).map_err(anyhow::Error::new)?;
        if spec.trace.is_some() {
            bail!(
                "{}: field `trace`: trace replay is not supported by kvbench; use a synthetic spec",
                path.display()
            );
        }
        if let Some(k) = o.keys {
            spec.keys = k;
        }
        if let Some(v) = o.value_size {
            spec.value_size = SizeDist::Fixed { bytes: v };
        }
        if let Some(k) = o.key_size {
            spec.key_size = SizeDist::Fixed { bytes: k };
        }
        // Re-check: an override may break a limit (the message then names the field it set).
        spec.check(path)
            .map_err(anyhow::Error::new)
            .context("after applying the command-line overrides")?;
        // A spec with `operations: 0` is a load workload: the load is what it times, whatever `--ops`.
        let ops = match spec.operations {
            Some(0) => 0,
            n => o.ops.or(n).unwrap_or(0),
        };
        Ok(Plan {
            path: path.to_path_buf(),
            keys: spec.keys,
            ops,
            spec,
            seed,
        })
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// True when the load is the timed phase (a load workload: no run-phase operations).
    pub fn load_is_timed(&self) -> bool {
        self.ops == 0
    }

    /// The operation stream of this plan (seeded: the same for every engine).
    pub fn stream(&self) -> OpStream {
        OpStream::new(&self.spec, self.keys, self.seed)
    }

    /// Key ids `0..keys` in a seeded random order: the load order.
    pub fn load_order(&self) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(self.seed ^ 0x005E_ED0F_10AD);
        let mut ids: Vec<u64> = (0..self.keys).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.gen_range(0..=i));
        }
        ids
    }
}

/// Random value bytes: a value of length `len` is a window of one random buffer, chosen by a salt,
/// so values differ without a per-value allocation.
#[derive(Debug)]
pub struct Values {
    buf: Vec<u8>,
}

impl Values {
    /// A buffer for values up to `max_len` bytes.
    pub fn new(max_len: usize, seed: u64) -> Values {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut buf = vec![0u8; max_len + 4096];
        rng.fill(&mut buf[..]);
        Values { buf }
    }

    /// `len` bytes, picked by `salt`.
    #[inline]
    pub fn get(&self, len: usize, salt: u64) -> &[u8] {
        let room = self.buf.len() - len;
        let start = (salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % room.max(1);
        &self.buf[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../bench-data/workloads")
            .join(name)
    }

    #[test]
    fn overrides_apply_and_load_is_a_permutation() {
        let o = Overrides {
            keys: Some(1000),
            value_size: Some(100),
            ..Default::default()
        };
        let p = Plan::resolve(&shipped("load.json"), &o, 1).unwrap();
        assert!(p.load_is_timed());
        assert_eq!(p.spec.value_size.max(), 100);
        let mut ids = p.load_order();
        assert_ne!(ids[..10], (0..10).collect::<Vec<_>>()[..]);
        ids.sort_unstable();
        assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn bad_override_names_the_field() {
        let o = Overrides {
            key_size: Some(3),
            ..Default::default()
        };
        let e = Plan::resolve(&shipped("get-uniform.json"), &o, 1).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("key_size") && msg.contains("get-uniform.json"),
            "{msg}"
        );
    }

    #[test]
    fn values_have_the_asked_length() {
        let v = Values::new(4096, 1);
        for len in [0, 1, 100, 4096] {
            assert_eq!(v.get(len, 7).len(), len);
        }
    }
}
