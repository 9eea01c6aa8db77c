//! Workload specs (`bench-data/workloads/*.json`): what the store holds and what clients do to it.
//! Owns the file format (shared with the benchmark harness), its checks, the key naming scheme, the
//! resolved model the simulations read ([`Workload`]), CSV traces, and the operation stream that
//! `validate` (and the harness) replays. See `docs/simulations.md` for the format.

use std::path::{Path, PathBuf};

use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::skew::{AccessCurve, RankSampler};

/// A size distribution, bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always `bytes`.
    Fixed {
        /// The size.
        bytes: u64,
    },
    /// Uniform in `min..=max`.
    Uniform {
        /// Smallest size.
        min: u64,
        /// Largest size.
        max: u64,
    },
    /// `sizes[i] = [bytes, weight]`: a discrete mix.
    Weighted {
        /// `[bytes, weight]` pairs; weights need not sum to 1.
        sizes: Vec<(u64, f64)>,
    },
}

impl SizeDist {
    /// Mean size.
    pub fn mean(&self) -> f64 {
        match self {
            SizeDist::Fixed { bytes } => *bytes as f64,
            SizeDist::Uniform { min, max } => (*min + *max) as f64 / 2.0,
            SizeDist::Weighted { sizes } => {
                let w: f64 = sizes.iter().map(|s| s.1).sum();
                sizes.iter().map(|s| s.0 as f64 * s.1).sum::<f64>() / w
            }
        }
    }

    /// Second moment `E[size²]` (for the spread of per-shard bytes).
    pub fn second_moment(&self) -> f64 {
        match self {
            SizeDist::Fixed { bytes } => (*bytes as f64).powi(2),
            SizeDist::Uniform { min, max } => {
                let (a, b) = (*min as f64, *max as f64);
                // Discrete uniform on a..=b: var = ((b−a+1)² − 1)/12.
                let var = ((b - a + 1.0).powi(2) - 1.0) / 12.0;
                var + ((a + b) / 2.0).powi(2)
            }
            SizeDist::Weighted { sizes } => {
                let w: f64 = sizes.iter().map(|s| s.1).sum();
                sizes
                    .iter()
                    .map(|s| (s.0 as f64).powi(2) * s.1)
                    .sum::<f64>()
                    / w
            }
        }
    }

    /// Largest size.
    pub fn max(&self) -> u64 {
        match self {
            SizeDist::Fixed { bytes } => *bytes,
            SizeDist::Uniform { max, .. } => *max,
            SizeDist::Weighted { sizes } => sizes.iter().map(|s| s.0).max().unwrap_or(0),
        }
    }

    /// Smallest size.
    pub fn min(&self) -> u64 {
        match self {
            SizeDist::Fixed { bytes } => *bytes,
            SizeDist::Uniform { min, .. } => *min,
            SizeDist::Weighted { sizes } => sizes.iter().map(|s| s.0).min().unwrap_or(0),
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match self {
            SizeDist::Fixed { bytes } => *bytes,
            SizeDist::Uniform { min, max } => rng.gen_range(*min..=*max),
            SizeDist::Weighted { sizes } => {
                let w: f64 = sizes.iter().map(|s| s.1).sum();
                let mut u = rng.gen::<f64>() * w;
                for s in sizes {
                    if u < s.1 {
                        return s.0;
                    }
                    u -= s.1;
                }
                sizes.last().map_or(0, |s| s.0)
            }
        }
    }

    fn check(&self, field: &str, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        match self {
            SizeDist::Uniform { min, max } if min > max => {
                Err(bad(field.into(), format!("min {min} is above max {max}")))
            }
            SizeDist::Weighted { sizes }
                if sizes.is_empty()
                    || sizes.iter().any(|s| !(s.1.is_finite() && s.1 >= 0.0))
                    || sizes.iter().map(|s| s.1).sum::<f64>() <= 0.0 =>
            {
                Err(bad(
                    format!("{field}.sizes"),
                    "needs at least one [bytes, weight] with weights ≥ 0 summing above 0".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Fractions of operations; they sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OpMix {
    /// Reads.
    #[serde(default)]
    pub get: f64,
    /// Inserts of new keys.
    #[serde(default)]
    pub put: f64,
    /// Overwrites of existing keys.
    #[serde(default)]
    pub update: f64,
    /// Deletes of existing keys.
    #[serde(default)]
    pub delete: f64,
    /// Read then overwrite the same key (YCSB-F).
    #[serde(default)]
    pub read_modify_write: f64,
    /// Short scans (YCSB-E). tierkv is a hash store: a scan of `scan_length` keys is served as a
    /// `multi_get` of `scan_length` keys drawn from the distribution.
    #[serde(default)]
    pub scan: f64,
}

/// How gets and updates pick their keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf over popularity ranks with constant `theta` (YCSB: 0.99).
    Zipf {
        /// The Zipf constant.
        theta: f64,
    },
    /// Zipf over recency: the newest keys are the most popular (YCSB-D).
    Latest {
        /// The Zipf constant.
        theta: f64,
    },
    /// `hot_fraction` of the keys get `hot_access` of the accesses.
    Hotset {
        /// Fraction of the keys that are hot.
        hot_fraction: f64,
        /// Fraction of accesses that go to them.
        hot_access: f64,
    },
}

/// A workload spec as stored in `bench-data/workloads/*.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Short name (`ycsb-a`).
    pub name: String,
    /// What it models.
    #[serde(default)]
    pub description: String,
    /// Keys loaded before the run.
    pub keys: u64,
    /// Key-count growth per day, as a fraction of `keys` (capacity planning only).
    #[serde(default)]
    pub growth_per_day: f64,
    /// Key sizes.
    pub key_size: SizeDist,
    /// Value sizes.
    pub value_size: SizeDist,
    /// Operation mix of the run phase.
    pub mix: OpMix,
    /// Keys per scan (when `mix.scan > 0`).
    #[serde(default)]
    pub scan_length: u64,
    /// Requests per second at peak (capacity planning).
    pub requests_per_sec: f64,
    /// Key choice for gets, updates and read-modify-writes.
    pub distribution: Distribution,
    /// Fraction of gets for keys that were never written.
    #[serde(default)]
    pub missing_fraction: f64,
    /// Operations in the run phase (benchmarks; `validate` scales it down).
    #[serde(default)]
    pub operations: Option<u64>,
    /// A CSV trace (`op,key,value_size`) replayed instead of the synthetic mix; relative to the spec.
    #[serde(default)]
    pub trace: Option<PathBuf>,
}

/// Shortest generated key: `k` + at least 9 digits, so ids up to 10^9 keep their length.
pub const MIN_KEY_LEN: u64 = 10;

/// The key bytes of synthetic key `id`, `len` bytes long: `k` then the id in decimal, zero-padded
/// (`k000000042`). Ids past the padding width lengthen the key. Shared with the benchmark harness.
pub fn key_for(id: u64, len: usize) -> Vec<u8> {
    let digits = len.saturating_sub(1).max(1);
    format!("k{id:0digits$}").into_bytes()
}

impl WorkloadSpec {
    /// Reads and checks a spec; a `trace` path is resolved against the spec's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<WorkloadSpec> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut spec: WorkloadSpec = serde_json::from_str(&text).map_err(|cause| Error::Json {
            path: path.to_path_buf(),
            cause,
        })?;
        if let Some(t) = &spec.trace {
            if t.is_relative() {
                spec.trace = Some(path.parent().unwrap_or(Path::new(".")).join(t));
            }
        }
        spec.check(path)?;
        Ok(spec)
    }

    /// Checks every field's range; `path` names the file in errors.
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad = |field: String, reason: String| Error::Field {
            path: path.to_path_buf(),
            field,
            reason,
        };
        if self.keys == 0 && self.trace.is_none() {
            return Err(bad("keys".into(), "must be at least 1".into()));
        }
        self.key_size.check("key_size", &bad)?;
        self.value_size.check("value_size", &bad)?;
        if self.key_size.min() < MIN_KEY_LEN || self.key_size.max() > tierkv::MAX_KEY_LEN as u64 {
            return Err(bad(
                "key_size".into(),
                format!(
                    "key sizes must lie in {MIN_KEY_LEN}..={} bytes",
                    tierkv::MAX_KEY_LEN
                ),
            ));
        }
        if self.value_size.max() > tierkv::MAX_VALUE_LEN as u64 {
            return Err(bad(
                "value_size".into(),
                format!("values above {} bytes", tierkv::MAX_VALUE_LEN),
            ));
        }
        let m = &self.mix;
        let parts = [
            ("mix.get", m.get),
            ("mix.put", m.put),
            ("mix.update", m.update),
            ("mix.delete", m.delete),
            ("mix.read_modify_write", m.read_modify_write),
            ("mix.scan", m.scan),
        ];
        for (f, v) in parts {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(bad(f.into(), format!("must be in [0, 1], got {v}")));
            }
        }
        let sum: f64 = parts.iter().map(|p| p.1).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad("mix".into(), format!("fractions sum to {sum}, not 1")));
        }
        if m.scan > 0.0 && self.scan_length == 0 {
            return Err(bad(
                "scan_length".into(),
                "must be at least 1 when mix.scan > 0".into(),
            ));
        }
        if !(self.requests_per_sec.is_finite() && self.requests_per_sec > 0.0) {
            return Err(bad(
                "requests_per_sec".into(),
                format!("must be positive, got {}", self.requests_per_sec),
            ));
        }
        if !(0.0..=1.0).contains(&self.missing_fraction) {
            return Err(bad(
                "missing_fraction".into(),
                format!("must be in [0, 1], got {}", self.missing_fraction),
            ));
        }
        if !(self.growth_per_day.is_finite() && self.growth_per_day >= 0.0) {
            return Err(bad(
                "growth_per_day".into(),
                format!("must be ≥ 0, got {}", self.growth_per_day),
            ));
        }
        match &self.distribution {
            Distribution::Zipf { theta } | Distribution::Latest { theta }
                if !(theta.is_finite() && *theta > 0.0 && *theta < 10.0) =>
            {
                Err(bad(
                    "distribution.theta".into(),
                    format!("must be in (0, 10), got {theta}"),
                ))
            }
            Distribution::Hotset {
                hot_fraction,
                hot_access,
            } if !((0.0..=1.0).contains(hot_fraction) && (0.0..=1.0).contains(hot_access)) => {
                Err(bad(
                    "distribution".into(),
                    "hot_fraction and hot_access must be in [0, 1]".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The access curve of the key choice over `n` keys.
    pub fn curve(&self, n: u64) -> AccessCurve {
        match &self.distribution {
            Distribution::Uniform => AccessCurve::Uniform,
            Distribution::Zipf { theta } | Distribution::Latest { theta } => {
                AccessCurve::Zipf { theta: *theta, n }
            }
            Distribution::Hotset {
                hot_fraction,
                hot_access,
            } => AccessCurve::HotSet {
                hot_fraction: *hot_fraction,
                hot_access: *hot_access,
            },
        }
    }

    /// The resolved model: from the spec's fields, or from the trace when one is given.
    pub fn model(&self) -> Result<Workload> {
        if let Some(trace) = &self.trace {
            let mut w = crate::trace::summarize(trace)?;
            w.requests_per_sec = self.requests_per_sec;
            w.growth_per_day = self.growth_per_day;
            w.name.clone_from(&self.name);
            return Ok(w);
        }
        let m = &self.mix;
        Ok(Workload {
            name: self.name.clone(),
            keys: self.keys,
            growth_per_day: self.growth_per_day,
            key_bytes: self.key_size.mean(),
            value_bytes: self.value_size.mean(),
            value_bytes_m2: self.value_size.second_moment(),
            gets_per_op: m.get + m.read_modify_write + m.scan * self.scan_length as f64,
            puts_per_op: m.put,
            updates_per_op: m.update + m.read_modify_write,
            deletes_per_op: m.delete,
            requests_per_sec: self.requests_per_sec,
            missing_fraction: self.missing_fraction,
            curve: self.curve(self.keys),
        })
    }
}

/// What the simulations read: sizes, per-request operation counts, skew. Built from a spec or a trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// Name.
    pub name: String,
    /// Live keys.
    pub keys: u64,
    /// Growth per day, fraction of `keys`.
    pub growth_per_day: f64,
    /// Mean key size.
    pub key_bytes: f64,
    /// Mean value size.
    pub value_bytes: f64,
    /// `E[value size²]`.
    pub value_bytes_m2: f64,
    /// Key lookups per request (a scan counts its keys, a read-modify-write one).
    pub gets_per_op: f64,
    /// New-key inserts per request.
    pub puts_per_op: f64,
    /// Overwrites per request.
    pub updates_per_op: f64,
    /// Deletes per request.
    pub deletes_per_op: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Fraction of lookups for keys never written.
    pub missing_fraction: f64,
    /// Popularity of keys for lookups and overwrites.
    pub curve: AccessCurve,
}

impl Workload {
    /// The same workload over `keys` keys (the Zipf curve follows).
    pub fn with_keys(&self, keys: u64) -> Workload {
        let mut w = self.clone();
        w.keys = keys;
        w.curve = self.curve.with_keys(keys);
        w
    }

    /// Key-lookups per second.
    pub fn gets_per_sec(&self) -> f64 {
        self.gets_per_op * self.requests_per_sec
    }

    /// New keys per second: inserts plus the growth of the key count (each adds bits to the Bloom
    /// filter that only a rebuild clears).
    pub fn new_keys_per_sec(&self) -> f64 {
        self.puts_per_op * self.requests_per_sec + self.keys as f64 * self.growth_per_day / 86400.0
    }

    /// Writes (puts, updates, deletes) per second.
    pub fn writes_per_sec(&self) -> f64 {
        (self.puts_per_op + self.updates_per_op + self.deletes_per_op) * self.requests_per_sec
    }

    /// User bytes written per second: key + value per put or update, key per delete.
    pub fn user_write_bytes_per_sec(&self) -> f64 {
        self.requests_per_sec
            * ((self.puts_per_op + self.updates_per_op) * (self.key_bytes + self.value_bytes)
                + self.deletes_per_op * self.key_bytes)
    }

    /// Bytes of live keys and values.
    pub fn live_bytes(&self) -> f64 {
        self.keys as f64 * (self.key_bytes + self.value_bytes)
    }
}

/// The load phase of a replay: every key once with its value length.
pub type LoadOps = Vec<(Vec<u8>, usize)>;

/// One operation of a replayed workload. Keys are synthetic ids (see [`key_for`]) or trace keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read a key that exists (or may: a trace does not say).
    Get(Vec<u8>),
    /// Read a key that was never written.
    GetMissing(Vec<u8>),
    /// Write `value_len` bytes under a key (new or existing).
    Put(Vec<u8>, usize),
    /// Remove a key.
    Delete(Vec<u8>),
}

/// The synthetic operation stream of a spec: a load phase (every key once, ids `0..keys`), then the
/// run phase drawn from the mix. Live keys are kept in a vector indexed by popularity rank (for
/// `latest`, the newest key is rank 0), so the rank sampler picks keys with the spec's skew.
#[derive(Debug)]
pub struct OpStream {
    spec: WorkloadSpec,
    rng: SmallRng,
    live: Vec<u64>,
    next_id: u64,
    sampler: RankSampler,
    sampler_n: u64,
    key_len: Vec<u64>,
}

impl OpStream {
    /// A stream over `spec` with `keys` keys (overriding the spec's count), seeded.
    pub fn new(spec: &WorkloadSpec, keys: u64, seed: u64) -> OpStream {
        let mut rng = SmallRng::seed_from_u64(seed);
        let key_len = (0..64).map(|_| spec.key_size.sample(&mut rng)).collect();
        OpStream {
            spec: spec.clone(),
            rng,
            live: (0..keys).collect(),
            next_id: keys,
            sampler: RankSampler::new(&spec.curve(keys.max(1)), keys.max(1)),
            sampler_n: keys.max(1),
            key_len,
        }
    }

    /// Key bytes of id `id` (its length depends on the id only, so a key is always spelled the same).
    pub fn key(&self, id: u64) -> Vec<u8> {
        key_for(id, self.key_len[(id % 64) as usize] as usize)
    }

    /// A value length drawn from the spec.
    pub fn value_len(&mut self) -> usize {
        self.spec.value_size.sample(&mut self.rng) as usize
    }

    /// The load phase: `(key, value_len)` for every initial key.
    pub fn load_ops(&mut self) -> LoadOps {
        let ids = self.live.clone();
        ids.into_iter()
            .map(|id| {
                let v = self.value_len();
                (self.key(id), v)
            })
            .collect()
    }

    fn pick_live(&mut self) -> Option<(usize, u64)> {
        if self.live.is_empty() {
            return None;
        }
        let n = self.live.len() as u64;
        if n > self.sampler_n * 2 || n * 2 < self.sampler_n {
            self.sampler = RankSampler::new(&self.spec.curve(n), n);
            self.sampler_n = n;
        }
        let r = self.sampler.sample(&mut self.rng) % n;
        let index = match self.spec.distribution {
            Distribution::Latest { .. } => (n - 1 - r) as usize,
            _ => r as usize,
        };
        Some((index, self.live[index]))
    }

    /// The next run-phase operations (a read-modify-write yields two, a scan `scan_length`).
    pub fn next_ops(&mut self) -> Vec<Op> {
        let m = self.spec.mix.clone();
        let mut u = self.rng.gen::<f64>();
        let mut pick = |p: f64| {
            let hit = u < p;
            u -= p;
            hit
        };
        let get = |s: &mut OpStream| -> Op {
            if s.rng.gen::<f64>() < s.spec.missing_fraction || s.live.is_empty() {
                // Never-written ids live above every id the stream will ever assign.
                let id = u64::MAX / 2 + s.rng.gen_range(0..u64::MAX / 4);
                Op::GetMissing(s.key(id))
            } else {
                let (_, id) = s.pick_live().expect("live is not empty");
                Op::Get(s.key(id))
            }
        };
        if pick(m.get) {
            vec![get(self)]
        } else if pick(m.put) {
            let id = self.next_id;
            self.next_id += 1;
            self.live.push(id);
            let v = self.value_len();
            vec![Op::Put(self.key(id), v)]
        } else if pick(m.update) {
            match self.pick_live() {
                Some((_, id)) => {
                    let v = self.value_len();
                    vec![Op::Put(self.key(id), v)]
                }
                None => vec![],
            }
        } else if pick(m.delete) {
            if self.live.is_empty() {
                return vec![];
            }
            // Deletes pick uniformly: a skewed delete would empty the head of the popularity order.
            let i = self.rng.gen_range(0..self.live.len());
            let id = self.live.swap_remove(i);
            vec![Op::Delete(self.key(id))]
        } else if pick(m.read_modify_write) {
            match self.pick_live() {
                Some((_, id)) => {
                    let v = self.value_len();
                    vec![Op::Get(self.key(id)), Op::Put(self.key(id), v)]
                }
                None => vec![],
            }
        } else {
            (0..self.spec.scan_length.max(1))
                .map(|_| get(self))
                .collect()
        }
    }
}

/// Loads every `*.json` spec in `dir`, sorted by file name.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<(PathBuf, WorkloadSpec)>> {
    crate::error::json_files(dir.as_ref())?
        .into_iter()
        .map(|p| WorkloadSpec::load(&p).map(|s| (p, s)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-data/workloads")
    }

    #[test]
    fn shipped_workloads_load_and_resolve() {
        let all = load_dir(shipped_dir()).unwrap();
        assert!(all.len() >= 10, "{} workloads", all.len());
        for (p, s) in &all {
            let w = s.model().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(w.keys > 0 && w.value_bytes >= 0.0, "{}", p.display());
        }
    }

    #[test]
    fn bad_specs_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.json");
        let (_, good) = load_dir(shipped_dir()).unwrap().remove(0);
        let mut s = good.clone();
        s.mix.get += 0.5;
        std::fs::write(&p, serde_json::to_string(&s).unwrap()).unwrap();
        let e = WorkloadSpec::load(&p).unwrap_err().to_string();
        assert!(e.contains("w.json") && e.contains("mix"), "{e}");
        let mut s = good.clone();
        s.distribution = Distribution::Zipf { theta: -1.0 };
        std::fs::write(&p, serde_json::to_string(&s).unwrap()).unwrap();
        let e = WorkloadSpec::load(&p).unwrap_err().to_string();
        assert!(e.contains("distribution.theta"), "{e}");
        std::fs::write(&p, r#"{"name":"x","keys":1,"bogus":2}"#).unwrap();
        let e = WorkloadSpec::load(&p).unwrap_err().to_string();
        assert!(e.contains("w.json") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn size_moments() {
        let u = SizeDist::Uniform { min: 1, max: 3 };
        assert_eq!(u.mean(), 2.0);
        assert!((u.second_moment() - (1.0 + 4.0 + 9.0) / 3.0).abs() < 1e-12);
        let w = SizeDist::Weighted {
            sizes: vec![(100, 1.0), (300, 3.0)],
        };
        assert_eq!(w.mean(), 250.0);
    }

    #[test]
    fn keys_are_stable_and_sized() {
        assert_eq!(key_for(42, 10), b"k000000042".to_vec());
        assert_eq!(key_for(42, 16).len(), 16);
    }

    #[test]
    fn op_stream_follows_mix() {
        let (_, spec) = load_dir(shipped_dir())
            .unwrap()
            .into_iter()
            .find(|(_, s)| s.name == "ycsb-a")
            .unwrap();
        let mut st = OpStream::new(&spec, 1000, 3);
        assert_eq!(st.load_ops().len(), 1000);
        let mut gets = 0;
        let mut puts = 0;
        for _ in 0..10_000 {
            for op in st.next_ops() {
                match op {
                    Op::Get(_) => gets += 1,
                    Op::Put(..) => puts += 1,
                    _ => {}
                }
            }
        }
        assert!((4700..5300).contains(&gets), "{gets}");
        assert!((4700..5300).contains(&puts), "{puts}");
    }
}
