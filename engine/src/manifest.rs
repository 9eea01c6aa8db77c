//! The store manifest (`<store>/MANIFEST`): what layout the store has. Format: `docs/format/manifest.md`.
//!
//! A text file: the magic line `TIERKV-MANIFEST`, then one JSON object. Replaced atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::io;

/// The on-disk format version this build reads and writes. Every file header carries it.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC_LINE: &str = "TIERKV-MANIFEST\n";

/// The store-level layout record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format_version: u32,
    /// Current shard layout number (see `layout.rs`).
    pub layout: u64,
    pub shards: u32,
    /// SSD tier root; relative paths are relative to the store directory.
    pub ssd_dir: PathBuf,
    /// HDD tier root; relative paths are relative to the store directory.
    pub hdd_dir: PathBuf,
}

impl Manifest {
    pub fn path(store: &Path) -> PathBuf {
        store.join("MANIFEST")
    }

    /// Reads the manifest, or `Ok(None)` when the store has none.
    pub fn load(store: &Path) -> Result<Option<Manifest>> {
        let path = Self::path(store);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let Some(body) = text.strip_prefix(MAGIC_LINE.as_bytes()) else {
            return Err(Error::corruption(
                &path,
                0,
                "missing TIERKV-MANIFEST magic line",
            ));
        };
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            Error::corruption(
                &path,
                MAGIC_LINE.len() as u64,
                format!("manifest is not valid JSON: {e}"),
            )
        })?;
        let found = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(Error::FormatVersion {
                file: path,
                found,
                expected: FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_value(value).map_err(|e| {
            Error::corruption(&path, MAGIC_LINE.len() as u64, format!("bad manifest: {e}"))
        })?;
        Ok(Some(m))
    }

    /// Writes the manifest atomically.
    pub fn store(&self, store: &Path) -> Result<()> {
        let mut text = MAGIC_LINE.as_bytes().to_vec();
        serde_json::to_writer_pretty(&mut text, self)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        text.push(b'\n');
        io::atomic_write(&Self::path(store), &text)
    }

    /// The SSD root, resolved against the store directory.
    pub fn ssd_root(&self, store: &Path) -> PathBuf {
        store.join(&self.ssd_dir)
    }

    /// The HDD root, resolved against the store directory.
    pub fn hdd_root(&self, store: &Path) -> PathBuf {
        store.join(&self.hdd_dir)
    }
}

/// Makes a user-supplied tier directory absolute (so the manifest does not depend on the cwd).
pub(crate) fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        Ok(dir.to_path_buf())
    } else {
        Ok(std::env::current_dir().at(dir)?.join(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let m = Manifest {
            format_version: FORMAT_VERSION,
            layout: 1,
            shards: 4,
            ssd_dir: "ssd".into(),
            hdd_dir: "/mnt/hdd".into(),
        };
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m.clone()));
        let other = Manifest {
            format_version: 99,
            ..m
        };
        other.store(dir.path()).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(e, Error::FormatVersion { found: 99, .. }), "{e}");
    }

    #[test]
    fn garbage_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Manifest::path(dir.path()), b"hello").unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("MANIFEST"), "{e}");
    }
}
