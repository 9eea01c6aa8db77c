//! Device profiles (`bench-data/devices/*.json`): what a drive can do and cost. Owns loading and checking
//! the profile and the device-level models that need only the profile: rated endurance in bytes, the
//! M/M/c queue that turns a latency target into a read rate, and the SSD's internal write
//! amplification at a fill level. It knows nothing of the engine.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Solid-state or spinning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Flash: wears out with bytes written.
    Ssd,
    /// Spinning disk: random reads are expensive.
    Hdd,
}

/// Rated endurance: either terabytes written or drive writes per day, over the warranty.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Endurance {
    /// Rated terabytes written (10^12 bytes) over the warranty.
    #[serde(default)]
    pub tbw: Option<f64>,
    /// Rated drive writes per day over the warranty.
    #[serde(default)]
    pub dwpd: Option<f64>,
    /// Warranty, years.
    pub warranty_years: f64,
    /// HDDs: rated workload (read + written) per year, TB.
    #[serde(default)]
    pub workload_tb_per_year: Option<f64>,
}

/// One drive model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Short name (`gen4-nvme`).
    pub name: String,
    /// The model the numbers come from.
    pub model: String,
    /// SSD or HDD.
    pub kind: DeviceKind,
    /// Usable capacity, GB (10^9 bytes).
    pub capacity_gb: f64,
    /// Random 4 KiB read IOPS (the datasheet's, at its queue depth).
    pub random_read_iops: f64,
    /// Random 4 KiB read latency at queue depth 1, microseconds.
    pub random_read_latency_us: f64,
    /// Random 4 KiB write IOPS.
    pub random_write_iops: f64,
    /// Sequential read bandwidth, MB/s.
    pub seq_read_mb_s: f64,
    /// Sequential write bandwidth, MB/s.
    pub seq_write_mb_s: f64,
    /// Rated endurance.
    pub endurance: Endurance,
    /// Factory over-provisioning: spare flash as a fraction of the usable capacity (SSDs; 0 for HDDs).
    #[serde(default)]
    pub over_provisioning: f64,
    /// Price, US dollars per GB.
    pub price_per_gb: f64,
    /// Annualised failure rate (0.005 = 0.5 % per year).
    pub annual_failure_rate: f64,
    /// Where the numbers come from.
    pub source: String,
}

const GB: f64 = 1e9;

impl DeviceProfile {
    /// Reads and checks a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<DeviceProfile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let p: DeviceProfile = serde_json::from_str(&text).map_err(|cause| Error::Json {
            path: path.to_path_buf(),
            cause,
        })?;
        p.check(path)?;
        Ok(p)
    }

    /// Checks every field's range; `path` names the file in the error.
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| Error::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let positive = [
            ("capacity_gb", self.capacity_gb),
            ("random_read_iops", self.random_read_iops),
            ("random_read_latency_us", self.random_read_latency_us),
            ("random_write_iops", self.random_write_iops),
            ("seq_read_mb_s", self.seq_read_mb_s),
            ("seq_write_mb_s", self.seq_write_mb_s),
            ("price_per_gb", self.price_per_gb),
            ("endurance.warranty_years", self.endurance.warranty_years),
        ];
        for (f, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(f, format!("must be a positive number, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&self.annual_failure_rate) {
            return Err(bad(
                "annual_failure_rate",
                format!("must be in [0, 1), got {}", self.annual_failure_rate),
            ));
        }
        if !(0.0..=10.0).contains(&self.over_provisioning) {
            return Err(bad(
                "over_provisioning",
                format!("must be in [0, 10], got {}", self.over_provisioning),
            ));
        }
        if self.kind == DeviceKind::Ssd {
            match (self.endurance.tbw, self.endurance.dwpd) {
                (None, None) => {
                    return Err(bad("endurance", "an SSD needs `tbw` or `dwpd`".to_string()))
                }
                (Some(v), _) | (None, Some(v)) if !(v.is_finite() && v > 0.0) => {
                    return Err(bad(
                        "endurance",
                        format!("tbw/dwpd must be positive, got {v}"),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Usable capacity in bytes.
    pub fn capacity_bytes(&self) -> f64 {
        self.capacity_gb * GB
    }

    /// Rated bytes written over the warranty (`tbw`, else `dwpd × capacity × 365 × years`).
    pub fn rated_bytes_written(&self) -> f64 {
        match (self.endurance.tbw, self.endurance.dwpd) {
            (Some(tbw), _) => tbw * 1e12,
            (None, Some(dwpd)) => {
                dwpd * self.capacity_bytes() * 365.0 * self.endurance.warranty_years
            }
            (None, None) => f64::INFINITY,
        }
    }

    /// The rated drive writes per day implied by the endurance figure.
    pub fn rated_dwpd(&self) -> f64 {
        self.rated_bytes_written() / (self.capacity_bytes() * 365.0 * self.endurance.warranty_years)
    }

    /// Service time of one random 4 KiB read, seconds: the QD1 latency.
    pub fn read_service_s(&self) -> f64 {
        self.random_read_latency_us * 1e-6
    }

    /// Requests the drive serves in parallel, as an M/M/c queue: `c = ⌊IOPS × s⌋ ≥ 1`, where `s` is
    /// the QD1 latency. A drive whose data-sheet IOPS exceed `1/s` has internal parallelism (flash
    /// channels; an HDD's command reordering): c ≈ 85 for a Gen4 NVMe SSD, 2 for a 7200 rpm HDD. Each
    /// server then serves at `IOPS / c`.
    pub fn read_servers(&self) -> f64 {
        (self.random_read_iops * self.read_service_s())
            .floor()
            .max(1.0)
    }

    /// Mean random-read response time at `rate` reads/s, M/M/c (Erlang C):
    /// `R = 1/μ + C(c, a) / (c μ − λ)` with `μ = IOPS / c`, `a = λ/μ`; infinite at or past saturation.
    pub fn read_response_s(&self, rate: f64) -> f64 {
        let c = self.read_servers();
        let mu = self.random_read_iops / c;
        let a = rate.max(0.0) / mu;
        if a >= c {
            return f64::INFINITY;
        }
        // Erlang B by its stable recursion, then C = B / (1 − ρ (1 − B)).
        let mut b = 1.0;
        for k in 1..=(c as u64) {
            b = a * b / (k as f64 + a * b);
        }
        let rho = a / c;
        let erlang_c = b / (1.0 - rho * (1.0 - b));
        1.0 / mu + erlang_c / (c * mu - rate)
    }

    /// Highest read rate with mean response ≤ `target_s` and utilisation ≤ `cap` (of the data-sheet
    /// IOPS); `0` when even an idle drive is slower than the target. Bisection on the monotone
    /// [`Self::read_response_s`].
    pub fn max_read_rate(&self, target_s: f64, cap: f64) -> f64 {
        let top = self.random_read_iops * cap.clamp(0.0, 1.0);
        if self.read_response_s(0.0) > target_s {
            return 0.0;
        }
        if self.read_response_s(top) <= target_s {
            return top;
        }
        let (mut lo, mut hi) = (0.0, top);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.read_response_s(mid) <= target_s {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The SSD's internal write amplification for small random writes at `fill` (fraction of the
    /// usable capacity holding live data), greedy garbage collection with uniform overwrites:
    /// `WA ≈ 1 / (2 (1 − u))` where `u = fill / (1 + over_provisioning)` is the live fraction of the
    /// raw flash (Desnoyers 2012; Hu et al. 2009). Floored at 1: below `u = 0.5` the approximation
    /// undershoots and a drive never writes less than it is given. Sequential, trimmed writes (log
    /// segments) see WA ≈ 1 regardless; callers apply this only to random page writes.
    pub fn internal_wa(&self, fill: f64) -> f64 {
        let u = (fill / (1.0 + self.over_provisioning)).clamp(0.0, 0.99);
        (1.0 / (2.0 * (1.0 - u))).max(1.0)
    }
}

/// Loads every `*.json` profile in `dir`, sorted by name.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<DeviceProfile>> {
    crate::error::json_files(dir.as_ref())?
        .iter()
        .map(DeviceProfile::load)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A round-numbered SSD for hand-computed answers.
    pub(crate) fn toy_ssd() -> DeviceProfile {
        DeviceProfile {
            name: "toy-ssd".into(),
            model: "toy".into(),
            kind: DeviceKind::Ssd,
            capacity_gb: 1000.0,
            random_read_iops: 100_000.0,
            random_read_latency_us: 100.0,
            random_write_iops: 50_000.0,
            seq_read_mb_s: 2000.0,
            seq_write_mb_s: 1000.0,
            endurance: Endurance {
                tbw: Some(600.0),
                dwpd: None,
                warranty_years: 5.0,
                workload_tb_per_year: None,
            },
            over_provisioning: 0.0,
            price_per_gb: 0.1,
            annual_failure_rate: 0.005,
            source: "test".into(),
        }
    }

    pub(crate) fn toy_hdd() -> DeviceProfile {
        DeviceProfile {
            name: "toy-hdd".into(),
            model: "toy".into(),
            kind: DeviceKind::Hdd,
            capacity_gb: 10_000.0,
            random_read_iops: 200.0,
            random_read_latency_us: 10_000.0,
            random_write_iops: 200.0,
            seq_read_mb_s: 200.0,
            seq_write_mb_s: 200.0,
            endurance: Endurance {
                tbw: None,
                dwpd: None,
                warranty_years: 5.0,
                workload_tb_per_year: Some(550.0),
            },
            over_provisioning: 0.0,
            price_per_gb: 0.02,
            annual_failure_rate: 0.01,
            source: "test".into(),
        }
    }

    #[test]
    fn endurance_from_tbw_and_dwpd() {
        let mut d = toy_ssd();
        assert_eq!(d.rated_bytes_written(), 600e12);
        // 600 TB over 5 years on 1 TB = 600 / 1825 DWPD.
        assert!((d.rated_dwpd() - 600.0 / 1825.0).abs() < 1e-9);
        d.endurance.tbw = None;
        d.endurance.dwpd = Some(1.0);
        assert!((d.rated_bytes_written() - 1e12 * 365.0 * 5.0).abs() < 1.0);
    }

    #[test]
    fn queueing_known_answers() {
        // One server (IOPS × s = 1): M/M/1, R = s / (1 − ρ).
        let mut d = toy_hdd();
        d.random_read_iops = 100.0;
        assert_eq!(d.read_servers(), 1.0);
        assert!((d.read_response_s(50.0) - 0.010 / 0.5).abs() < 1e-12);
        // Target 40 ms: ρ ≤ 0.75 → 75 reads/s; the cap wins when lower.
        assert!((d.max_read_rate(0.040, 1.0) - 75.0).abs() < 1e-6);
        assert!((d.max_read_rate(0.040, 0.5) - 50.0).abs() < 1e-9);
        assert_eq!(d.max_read_rate(0.005, 1.0), 0.0);
        // Two servers (200 IOPS, s = 10 ms): a = 1 → Erlang C = 1/3, R = s + (1/3) s / (2 − 1).
        let d = toy_hdd();
        assert_eq!(d.read_servers(), 2.0);
        assert!((d.read_response_s(100.0) - 0.010 * (1.0 + 1.0 / 3.0)).abs() < 1e-12);
        assert!(d.read_response_s(200.0).is_infinite());
    }

    #[test]
    fn internal_wa_grows_with_fill() {
        let d = toy_ssd();
        assert_eq!(d.internal_wa(0.3), 1.0);
        assert!((d.internal_wa(0.9) - 5.0).abs() < 1e-9);
        assert!(d.internal_wa(0.95) > d.internal_wa(0.9));
    }

    #[test]
    fn bad_profile_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        let mut d = toy_ssd();
        d.capacity_gb = -1.0;
        std::fs::write(&p, serde_json::to_string(&d).unwrap()).unwrap();
        let e = DeviceProfile::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("capacity_gb"), "{e}");
        std::fs::write(&p, r#"{"name": "x"}"#).unwrap();
        let e = DeviceProfile::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("missing field"), "{e}");
    }

    #[test]
    fn shipped_profiles_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-data/devices");
        let all = load_dir(dir).unwrap();
        assert!(all.len() >= 4);
        assert!(all.iter().any(|d| d.kind == DeviceKind::Hdd));
    }
}
