//! The result file format: one [`RunFile`] per `kvbench run` (`bench-data/results/*.json`), holding the
//! machine and one [`BenchResult`] per engine and workload. Owns the serde shape only.

use serde::{Deserialize, Serialize};

/// The machine a run was measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Physical memory, bytes.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// File system type of the benchmark directory.
    pub file_system: String,
    /// Block device (or source) of that file system.
    pub device: String,
    /// The benchmark directory.
    pub dir: String,
    /// `git rev-parse HEAD` of the tree that was measured, when known.
    pub git_commit: String,
    /// Start of the run, seconds since the Unix epoch.
    pub started_unix: u64,
}

/// One engine on one workload (the median of its repeats, by ops/s).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BenchResult {
    /// Engine name (`tierkv`, `rocksdb`, ...).
    pub engine: String,
    /// Workload name (the spec's `name`).
    pub workload: String,
    /// Keys loaded.
    pub keys: u64,
    /// Mean key size, bytes.
    pub key_bytes: f64,
    /// Mean value size, bytes.
    pub value_bytes: f64,
    /// Client threads.
    pub threads: usize,
    /// Operations in the timed phase.
    pub ops: u64,
    /// Timed operations per second.
    pub ops_per_sec: f64,
    /// Median latency, µs (`None` when the tool does not report it).
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    pub p99_us: Option<f64>,
    /// 99.9th percentile, µs.
    pub p999_us: Option<f64>,
    /// Load rate of the untimed load phase of a get or mixed workload, keys/s.
    pub load_ops_per_sec: Option<f64>,
    /// Bytes the process caused to be written to storage (kernel I/O accounting), load and run.
    pub bytes_written: u64,
    /// User bytes put (keys + values), load and run.
    pub user_bytes_written: u64,
    /// `bytes_written / user_bytes_written`.
    pub write_amplification: f64,
    /// Bytes on disk after the run (allocated blocks of the store directory).
    pub disk_bytes: u64,
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: u64,
    /// DRAM per key of the engine's in-memory indexes, where the engine reports it.
    pub dram_bytes_per_key: Option<f64>,
    /// Gets that found their key / gets issued (sanity check).
    pub gets_found: u64,
    /// Gets issued.
    pub gets: u64,
    /// Engine-specific counters (tierkv: reads per get, write amplification per tier, ...).
    pub engine_counters: Option<serde_json::Value>,
    /// How this engine's run differs from the spec (flag mappings of external tools).
    pub notes: String,
    /// ops/s of every repeat, in run order.
    pub repeats_ops_per_sec: Vec<f64>,
}

/// One `kvbench run`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunFile {
    /// Where it ran.
    pub machine: Machine,
    /// The command line that produced it.
    pub command: String,
    /// One per engine and workload.
    pub results: Vec<BenchResult>,
    /// Engine and workload pairs that did not run, and why.
    #[serde(default)]
    pub skipped: Vec<String>,
}
