//! Options of a store: the plain [`Options`] struct users fill in, and its validation.
//!
//! Layout options (`shards`, the tier directories) are fixed when a store is created and recorded in its
//! manifest; when an existing store is opened the stored layout wins over what `Options` says.
//! Tuning options (log capacity, sync policy, Bloom target, …) apply to the session that opens the store.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hash::{exact_log2, MAX_SHARDS};

/// Largest key, in bytes. A global-table entry must fit in one 4 KiB page with its header.
pub const MAX_KEY_LEN: usize = 1024;
/// Largest value, in bytes (64 MiB).
pub const MAX_VALUE_LEN: usize = 64 << 20;

/// When writes become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Writes are durable after [`crate::Db::sync`], a flush, or a clean close (the default: fastest).
    #[default]
    Manual,
    /// Every `put`, `delete` and `write_batch` is synced before it returns.
    EveryWrite,
}

/// How batched reads and writes (`multi_get`, the flush's page writes) reach the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoEngine {
    /// io_uring when this process can create a ring, positioned calls otherwise (the default).
    #[default]
    Auto,
    /// io_uring; opening fails when it is unavailable.
    IoUring,
    /// Positioned `pread`/`pwrite` calls, one after another.
    Pread,
}

/// Which tiers' files `get` and `multi_get` read with direct I/O (`O_DIRECT`), bypassing the kernel's
/// page cache. A tier without it is read through a memory map. Writes stay buffered and are synced
/// as always; maintenance scans (`check`, `compact`, `rebalance`, table growth) read through maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct DirectIo {
    /// The global-table (index) pages on the SSD: served from the engine's own bounded page cache
    /// ([`Options::page_cache_bytes`]) or read from the device.
    pub index: bool,
    /// The hot file on the SSD.
    pub hot: bool,
    /// The data file on the HDD.
    pub data: bool,
}

impl DirectIo {
    /// Direct I/O on every tier.
    pub const ALL: DirectIo = DirectIo {
        index: true,
        hot: true,
        data: true,
    };

    /// True when any tier uses it.
    pub fn any(&self) -> bool {
        self.index || self.hot || self.data
    }
}

/// Options for [`crate::Db::open`]. A plain struct: set the fields you need on `Options::default()`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Number of shards, a power of two in `1..=65536` (default 8). Layout: fixed at creation.
    pub shards: u32,
    /// Per-shard log capacity in bytes (default 64 MiB): a full log is flushed into the global table.
    pub log_capacity_bytes: u64,
    /// Directory for the SSD tier (logs, global table, hot file). `None` = `<path>/ssd`.
    pub ssd_dir: Option<PathBuf>,
    /// Directory for the HDD tier (data files). `None` = `<path>/hdd`.
    pub hdd_dir: Option<PathBuf>,
    /// Per-shard hot-file capacity in bytes (default 0 = no hot copies).
    pub hot_capacity_bytes: u64,
    /// Target false-positive rate of each shard's Bloom filter (default 0.01).
    pub bloom_fpr: f64,
    /// Global-table load (bytes used ÷ page bytes, averaged over primary pages) past which a flush
    /// rebuilds the table with twice the buckets (default 0.75).
    pub table_max_load: f64,
    /// When writes become durable (default [`SyncPolicy::Manual`]).
    pub sync: SyncPolicy,
    /// `compact` rewrites a shard whose data file is at least this fraction dead (default 0.25).
    pub compact_dead_fraction: f64,
    /// The automatic rebalancing policy: [`crate::Db::maintain`] — run by `Db::open` too — splits the
    /// largest shard while its key count passes the mean by more than this fraction and the shards hold
    /// at least 10 000 keys on average (default 0 = off).
    pub auto_split_deviation: f64,
    /// Flush a full log on a background thread while a second log takes writes (default true).
    /// When false, the writer that fills a log flushes it itself.
    pub background_flush: bool,
    /// Create the store when `path` holds none (default true).
    pub create_if_missing: bool,
    /// How batched I/O is issued (default [`IoEngine::Auto`]; `stats().io_engine` says which runs).
    pub io_engine: IoEngine,
    /// Tiers read with direct I/O (default none).
    pub direct_io: DirectIo,
    /// Bytes of global-table pages cached in DRAM when the index is read with direct I/O, split
    /// evenly over the shards (default 0: every page read goes to the device).
    pub page_cache_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shards: 8,
            log_capacity_bytes: 64 << 20,
            ssd_dir: None,
            hdd_dir: None,
            hot_capacity_bytes: 0,
            bloom_fpr: 0.01,
            table_max_load: 0.75,
            sync: SyncPolicy::Manual,
            compact_dead_fraction: 0.25,
            auto_split_deviation: 0.0,
            background_flush: true,
            create_if_missing: true,
            io_engine: IoEngine::Auto,
            direct_io: DirectIo::default(),
            page_cache_bytes: 0,
        }
    }
}

/// Smallest accepted per-shard log capacity.
pub const MIN_LOG_CAPACITY: u64 = 4096;

impl Options {
    /// Checks every field; returns `InvalidArgument` naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.shards == 0 || self.shards > MAX_SHARDS || exact_log2(self.shards as u64).is_none()
        {
            return Err(Error::InvalidArgument(format!(
                "shards must be a power of two between 1 and {MAX_SHARDS}, got {}",
                self.shards
            )));
        }
        if self.log_capacity_bytes < MIN_LOG_CAPACITY || self.log_capacity_bytes > u32::MAX as u64 {
            return Err(Error::InvalidArgument(format!(
                "log_capacity_bytes must be between {MIN_LOG_CAPACITY} and {}, got {}",
                u32::MAX,
                self.log_capacity_bytes
            )));
        }
        if !(self.bloom_fpr > 0.0 && self.bloom_fpr < 0.5) {
            return Err(Error::InvalidArgument(format!(
                "bloom_fpr must be in (0, 0.5), got {}",
                self.bloom_fpr
            )));
        }
        if !(self.table_max_load > 0.1 && self.table_max_load <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "table_max_load must be in (0.1, 1.0], got {}",
                self.table_max_load
            )));
        }
        if !(self.compact_dead_fraction >= 0.0 && self.compact_dead_fraction <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "compact_dead_fraction must be in [0, 1], got {}",
                self.compact_dead_fraction
            )));
        }
        Ok(())
    }
}

/// Checks a key and value against the limits.
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("empty key".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against the limit.
pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes exceeds the limit of {MAX_VALUE_LEN} bytes",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn bad_options_are_named() {
        let o = Options {
            shards: 6,
            ..Options::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("shards"), "{e}");
        let o = Options {
            log_capacity_bytes: 10,
            ..Options::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log_capacity_bytes"));
    }

    #[test]
    fn key_limits() {
        assert!(check_key(b"").is_err());
        assert!(check_key(&[0u8; MAX_KEY_LEN]).is_ok());
        assert!(check_key(&[0u8; MAX_KEY_LEN + 1]).is_err());
        assert!(check_value(&[]).is_ok());
    }
}
