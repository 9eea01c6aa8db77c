//! Where every file of a store lives. File names are built here and nowhere else.
//!
//! ```text
//! <store>/MANIFEST                          store-level: format version, shard count, tier dirs
//! <store>/LOCK                              writer lock (flock)
//! <ssd>/L<layout>/shard-<id>/checkpoint.tkv  per-shard durable state (page map, Bloom, offsets)
//! <ssd>/L<layout>/shard-<id>/log-<seq>.tkv   log segments (append-only records)
//! <ssd>/L<layout>/shard-<id>/index-<gen>.tkv global-table pages
//! <ssd>/L<layout>/shard-<id>/hot-<gen>.tkv   hot copies of values (a hot-set rebuild writes the next)
//! <hdd>/L<layout>/shard-<id>/data-<gen>.tkv  every value (a compaction writes the next generation)
//! ```
//! `layout` numbers a shard layout; a rebalance builds the next one beside the current one and switches
//! the manifest to it atomically.

use std::path::{Path, PathBuf};

/// Paths of one shard's files.
#[derive(Clone, Debug)]
pub(crate) struct ShardPaths {
    pub ssd: PathBuf,
    pub hdd: PathBuf,
}

impl ShardPaths {
    pub fn new(ssd_root: &Path, hdd_root: &Path, layout: u64, shard: u32) -> ShardPaths {
        let rel = Path::new(&format!("L{layout:04}")).join(format!("shard-{shard:05}"));
        ShardPaths {
            ssd: ssd_root.join(&rel),
            hdd: hdd_root.join(&rel),
        }
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.ssd.join("checkpoint.tkv")
    }

    pub fn log(&self, seq: u64) -> PathBuf {
        self.ssd.join(format!("log-{seq:012}.tkv"))
    }

    /// Parses a log segment's sequence number from its file name.
    pub fn log_seq(name: &str) -> Option<u64> {
        name.strip_prefix("log-")?
            .strip_suffix(".tkv")?
            .parse()
            .ok()
    }

    pub fn index(&self, generation: u64) -> PathBuf {
        self.ssd.join(format!("index-{generation:012}.tkv"))
    }

    /// Parses an index file's generation from its file name.
    pub fn index_generation(name: &str) -> Option<u64> {
        name.strip_prefix("index-")?
            .strip_suffix(".tkv")?
            .parse()
            .ok()
    }

    pub fn hot(&self, generation: u64) -> PathBuf {
        self.ssd.join(format!("hot-{generation:012}.tkv"))
    }

    /// Parses a hot file's generation from its file name.
    pub fn hot_generation(name: &str) -> Option<u64> {
        name.strip_prefix("hot-")?
            .strip_suffix(".tkv")?
            .parse()
            .ok()
    }

    pub fn data(&self, generation: u64) -> PathBuf {
        self.hdd.join(format!("data-{generation:012}.tkv"))
    }

    /// Parses a data file's generation from its file name.
    pub fn data_generation(name: &str) -> Option<u64> {
        name.strip_prefix("data-")?
            .strip_suffix(".tkv")?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = ShardPaths::new(Path::new("/s"), Path::new("/h"), 1, 3);
        let log = p.log(42);
        assert_eq!(log, Path::new("/s/L0001/shard-00003/log-000000000042.tkv"));
        assert_eq!(
            ShardPaths::log_seq(log.file_name().unwrap().to_str().unwrap()),
            Some(42)
        );
        let idx = p.index(7);
        assert_eq!(
            ShardPaths::index_generation(idx.file_name().unwrap().to_str().unwrap()),
            Some(7)
        );
        assert_eq!(
            p.data(2),
            Path::new("/h/L0001/shard-00003/data-000000000002.tkv")
        );
        assert_eq!(
            ShardPaths::data_generation("data-000000000002.tkv"),
            Some(2)
        );
    }
}
