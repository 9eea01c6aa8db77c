//! Global flags resolved into a validated configuration before any command runs: the store path and
//! the engine `Options` (creation options apply only when the store does not exist yet), plus the
//! reporting switches every command shares. Commands receive a [`Global`], never raw flags.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::engine::{Db, DirectIo, Error, IoEngine, Options, ReadOnlyDb, Reader, SyncPolicy};

/// Engine options given on the command line (before the subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Store options (layout ones apply when the store is created)")]
pub struct StoreArgs {
    /// Directory for the SSD tier (logs, index, hot file) [default: DIR/ssd].
    #[arg(long, value_name = "DIR")]
    pub ssd: Option<PathBuf>,
    /// Directory for the HDD tier (data files) [default: DIR/hdd].
    #[arg(long, value_name = "DIR")]
    pub hdd: Option<PathBuf>,
    /// Number of shards, a power of two [default: 8].
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Per-shard log capacity in bytes [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    pub log_capacity: Option<u64>,
    /// Per-shard hot-file capacity in bytes [default: 0 = no hot copies].
    #[arg(long, value_name = "BYTES")]
    pub hot_capacity: Option<u64>,
    /// Target false-positive rate of each Bloom filter [default: 0.01].
    #[arg(long, value_name = "RATE")]
    pub bloom_fpr: Option<f64>,
    /// Index load past which the table grows [default: 0.75].
    #[arg(long, value_name = "LOAD")]
    pub table_max_load: Option<f64>,
    /// Dead fraction of a data file past which `compact` rewrites it [default: 0.25].
    #[arg(long, value_name = "FRACTION")]
    pub compact_dead_fraction: Option<f64>,
    /// Sync every write before it returns (slow; loads sync at the end anyway).
    #[arg(long)]
    pub sync_every_write: bool,
    /// Flush full logs on the writing thread instead of a background thread.
    #[arg(long)]
    pub no_background_flush: bool,
    /// How batched reads and flush page writes are issued [default: auto = io_uring when available].
    #[arg(long, value_name = "ENGINE")]
    pub io_engine: Option<IoEngineArg>,
    /// Tiers read with direct I/O (O_DIRECT), bypassing the kernel page cache: a comma-separated
    /// list of index, hot, data, or `all` / `none` [default: none].
    #[arg(long, value_name = "TIERS", value_parser = parse_direct_io)]
    pub direct_io: Option<DirectIo>,
    /// Bytes of index pages the engine caches in DRAM when the index uses direct I/O [default: 0].
    #[arg(long, value_name = "BYTES")]
    pub page_cache: Option<u64>,
}

/// `--io-engine` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum IoEngineArg {
    /// io_uring when this process can create a ring, positioned calls otherwise.
    Auto,
    /// io_uring; opening fails when it is unavailable.
    IoUring,
    /// Positioned pread/pwrite calls.
    Pread,
}

impl From<IoEngineArg> for IoEngine {
    fn from(a: IoEngineArg) -> IoEngine {
        match a {
            IoEngineArg::Auto => IoEngine::Auto,
            IoEngineArg::IoUring => IoEngine::IoUring,
            IoEngineArg::Pread => IoEngine::Pread,
        }
    }
}

/// Parses `--direct-io`: `all`, `none`, or a comma-separated list of tiers.
fn parse_direct_io(s: &str) -> Result<DirectIo, String> {
    let mut d = DirectIo::default();
    for tier in s.split(',').map(str::trim) {
        match tier {
            "all" => d = DirectIo::ALL,
            "none" | "" => {}
            "index" => d.index = true,
            "hot" => d.hot = true,
            "data" => d.data = true,
            other => {
                return Err(format!(
                    "unknown tier `{other}` (expected index, hot, data, all or none)"
                ))
            }
        }
    }
    Ok(d)
}

/// What every command gets: where the store is, how to open it, how to report.
#[derive(Debug, Clone)]
pub struct Global {
    /// The store directory.
    pub db: Option<PathBuf>,
    /// Engine options for opening (and, if needed, creating) the store.
    pub options: Options,
    /// No progress bars or summaries; errors only.
    pub quiet: bool,
    /// Machine-readable output on stdout.
    pub json: bool,
}

impl Global {
    /// Resolves and validates the global flags.
    pub fn resolve(
        db: Option<PathBuf>,
        store: &StoreArgs,
        quiet: bool,
        json: bool,
    ) -> anyhow::Result<Global> {
        let mut o = Options::default();
        if let Some(v) = store.shards {
            o.shards = v;
        }
        if let Some(v) = store.log_capacity {
            o.log_capacity_bytes = v;
        }
        if let Some(v) = store.hot_capacity {
            o.hot_capacity_bytes = v;
        }
        if let Some(v) = store.bloom_fpr {
            o.bloom_fpr = v;
        }
        if let Some(v) = store.table_max_load {
            o.table_max_load = v;
        }
        if let Some(v) = store.compact_dead_fraction {
            o.compact_dead_fraction = v;
        }
        o.ssd_dir = store.ssd.clone();
        o.hdd_dir = store.hdd.clone();
        if store.sync_every_write {
            o.sync = SyncPolicy::EveryWrite;
        }
        o.background_flush = !store.no_background_flush;
        if let Some(v) = store.io_engine {
            o.io_engine = v.into();
        }
        if let Some(v) = store.direct_io {
            o.direct_io = v;
        }
        if let Some(v) = store.page_cache {
            o.page_cache_bytes = v;
        }
        o.validate().context("invalid store option")?;
        Ok(Global {
            db,
            options: o,
            quiet,
            json,
        })
    }

    /// The store directory, or a usage error naming `--db` and `KVTOOL_DB`.
    pub fn db_path(&self) -> anyhow::Result<&PathBuf> {
        match &self.db {
            Some(p) => Ok(p),
            None => bail!("no store given: pass --db DIR or set KVTOOL_DB"),
        }
    }

    /// Opens an existing store for a command that only reads: as its writer, or — when another
    /// process holds the writer lock — read-only beside it, saying so on stderr (unless `--quiet`).
    pub fn open_for_reading(&self) -> anyhow::Result<Reader> {
        match self.open(false) {
            Ok(db) => Ok(Reader::Writer(db)),
            Err(e) => match e.downcast_ref::<Error>() {
                Some(Error::Locked { lock_file, .. }) => {
                    let path = self.db_path()?;
                    if !self.quiet {
                        let holder = std::fs::read_to_string(lock_file)
                            .ok()
                            .and_then(|s| s.trim().parse::<u32>().ok())
                            .map_or(String::new(), |pid| format!(" (pid {pid})"));
                        eprintln!(
                            "kvtool: {} is held by a writer{holder}: reading it read-only, as of \
                             the writer's latest flush",
                            path.display()
                        );
                    }
                    let db = ReadOnlyDb::open(path).with_context(|| {
                        format!("cannot open store {} read-only", path.display())
                    })?;
                    Ok(Reader::ReadOnly(db))
                }
                _ => Err(e),
            },
        }
    }

    /// Opens the store; `create` allows creating it when it does not exist.
    pub fn open(&self, create: bool) -> anyhow::Result<Db> {
        let path = self.db_path()?;
        let mut o = self.options.clone();
        o.create_if_missing = create;
        match Db::open(path, o) {
            Ok(db) => Ok(db),
            Err(e @ Error::NoStore { .. }) => Err(anyhow::Error::new(e).context(format!(
                "cannot open {} (commands that write create it: load, put, batch)",
                path.display()
            ))),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("cannot open store {}", path.display())))
            }
        }
    }
}
