//! # tierkv — a tiered SSD/HDD key-value storage engine
//!
//! A key lives in one of `2^s` shards chosen by its hash. Each shard owns: a Robin Hood log table in
//! DRAM over an append-only log file on the SSD; a Bloom filter in DRAM; a global hash table on the SSD
//! whose buckets are 4 KiB pages holding full keys and value locations; a hot file on the SSD; and a
//! data file on the HDD holding every value. Writes go to the log; a full log is flushed: values are
//! appended to the data file, keys merged into the global table page by page.
//!
//! Start reading at [`Db`] (`db.rs`), then `shard.rs` (read/write paths) and `flush.rs`.
//! `docs/architecture.md` walks the paths step by step; `docs/format/` has every file's byte layout.
//!
//! ```no_run
//! let mut opts = tierkv::Options::default();
//! opts.shards = 8;
//! let db = tierkv::Db::open("/tmp/store", opts)?;
//! db.put(b"key", b"value")?;
//! assert_eq!(db.get(b"key")?.as_deref(), Some(&b"value"[..]));
//! db.sync()?;
//! # Ok::<(), tierkv::Error>(())
//! ```

#![warn(missing_docs)]

mod batch;
mod bloom;
mod checkpoint;
mod compaction;
mod data;
mod db;
mod error;
mod flush;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
mod hot;
mod io;
mod layout;
mod log;
pub mod log_table;
mod manifest;
mod options;
mod page;
mod publish;
mod reader;
mod rebalance;
mod shard;
mod stats;
mod syncpoint;

pub use batch::{BatchOp, WriteBatch};

/// The storage layer every file access of the engine goes through: the [`storage::StorageBackend`]
/// and [`storage::FileBackend`] traits, the operating-system implementation, and
/// [`storage::register_storage`], which routes a directory's files to another backend (a
/// fault-injecting one in tests).
pub mod storage {
    pub use crate::io::{
        register_storage, storage_for, FileBackend, OpenHow, OsStorage, StorageBackend,
        StorageRegistration,
    };
    /// The fault-injecting backend: crash images (unsynced data dropped whole, in part or torn per
    /// sector; unsynced directory entries lost) and injected `EIO`/`ENOSPC`.
    pub mod fault {
        pub use crate::io::fault::{CrashMode, FailRule, Fault, FaultStorage, OpKind, SECTOR};
    }
}

/// On-disk format constants, for tools that model the engine (the simulations).
pub mod format {
    pub use crate::data::{VALUE_FILE_HEADER, VALUE_RECORD_HEADER};
    pub use crate::flush::{BLOOM_HEADROOM, FPR_SLACK};
    pub use crate::log::{LOG_HEADER, RECORD_HEADER};
    pub use crate::page::{DIR_BYTES, ENTRY_HEADER, PAGE_HEADER, PAGE_PAYLOAD, PAGE_SIZE};
    /// Bytes of a hot-file offset in a page entry (present only when the entry has a hot copy).
    pub const HOT_OFFSET_BYTES: usize = 6;
}
pub use compaction::{CompactReport, ShardCompaction};
pub use db::{CheckProblem, CheckReport, Db, NoProgress, Progress};
pub use error::{Error, Result};
pub use manifest::FORMAT_VERSION;
pub use options::{DirectIo, IoEngine, Options, SyncPolicy, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use page::PAGE_SIZE;
pub use reader::ReadOnlyDb;
pub use rebalance::{RebalanceChoice, RebalancePolicy, RebalanceReport};
pub use stats::{DiskBytes, GetStats, ReadOnlyStats, ShardStats, Stats, TierStats, TiersStats};
