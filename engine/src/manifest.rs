//! The store manifest (`<store>/MANIFEST`): what layout the store has. Format: `docs/format/manifest.md`.
//!
//! A text file: the magic line `TIERKV-MANIFEST`, one JSON object, and a `CRC32` line over both.
//! Replaced atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::io;

/// The on-disk format version this build reads and writes. Every file header carries it.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC_LINE: &str = "TIERKV-MANIFEST\n";
/// `CRC32 ` + 8 hex digits + newline.
const CRC_LINE_LEN: usize = 15;

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
    /// The shards when they are not `shards` uniform ones (after a split), in routing order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<ShardSpec>,
}

/// A shard that owns the keys whose hash begins with the `depth` bits `prefix` (hash-bit sharding:
/// splitting a shard gives each half one more bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardSpec {
    pub id: u32,
    pub prefix: u32,
    pub depth: u8,
}

impl Manifest {
    pub fn path(store: &Path) -> PathBuf {
        store.join("MANIFEST")
    }

    /// Reads the manifest, or `Ok(None)` when the store has none.
    pub fn load(store: &Path) -> Result<Option<Manifest>> {
        let path = Self::path(store);
        let Some(text) = crate::io::read_file(&path)? else {
            return Ok(None);
        };
        let Some(body) = text.strip_prefix(MAGIC_LINE.as_bytes()) else {
            return Err(Error::corruption(
                &path,
                0,
                "missing TIERKV-MANIFEST magic line",
            ));
        };
        // The last line is `CRC32 <8 hex digits>` over everything before it: a flipped bit in the
        // JSON (a layout number, a directory) must not open another layout, or none.
        let crc_at = text.len().saturating_sub(CRC_LINE_LEN);
        let crc_line = &text[crc_at..];
        let stored = std::str::from_utf8(crc_line)
            .ok()
            .and_then(|l| l.strip_prefix("CRC32 "))
            .and_then(|l| l.strip_suffix('\n'))
            .filter(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok());
        let Some(stored) = stored.filter(|_| crc_at >= MAGIC_LINE.len()) else {
            return Err(Error::corruption(
                &path,
                crc_at as u64,
                "missing or unreadable CRC32 line",
            ));
        };
        if crc32fast::hash(&text[..crc_at]) != stored {
            return Err(Error::corruption(&path, 0, "manifest checksum mismatch"));
        }
        let body = &body[..crc_at - MAGIC_LINE.len()];
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
        let crc = crc32fast::hash(&text);
        text.extend_from_slice(format!("CRC32 {crc:08x}\n").as_bytes());
        io::atomic_write(&Self::path(store), &text)
    }

    /// The shards in routing order: the split list, or `shards` uniform shards.
    pub fn shard_specs(&self) -> Vec<ShardSpec> {
        if !self.split.is_empty() {
            return self.split.clone();
        }
        let depth = self.shards.trailing_zeros() as u8;
        (0..self.shards)
            .map(|i| ShardSpec {
                id: i,
                prefix: i,
                depth,
            })
            .collect()
    }

    /// The routing table: entry `p` is the index (in [`Self::shard_specs`] order) of the shard owning
    /// hashes whose top `bits` bits are `p`. Fails when the shards do not tile the hash space.
    pub fn routing(&self, store: &Path) -> Result<(u32, Vec<u32>)> {
        let bad = |reason: String| Error::corruption(Manifest::path(store), 0, reason);
        // A uniform layout is a power of two of at most 2^16 shards. Checked before `shard_specs`
        // builds one spec per shard: a damaged count must be an error, not a 4-billion-entry list.
        if self.split.is_empty() && !(self.shards.is_power_of_two() && self.shards <= 1 << 16) {
            return Err(bad(format!(
                "{} uniform shards do not form a valid layout",
                self.shards
            )));
        }
        let specs = self.shard_specs();
        let bits = specs.iter().map(|s| s.depth as u32).max().unwrap_or(0);
        if bits > 16 || specs.is_empty() || specs.len() != self.shards as usize {
            return Err(bad(format!(
                "{} shards of depth ≤ {bits} do not form a valid layout",
                specs.len()
            )));
        }
        let mut route = vec![u32::MAX; 1 << bits];
        for (i, spec) in specs.iter().enumerate() {
            let d = spec.depth as u32;
            if d > bits || (spec.prefix as u64) >= 1u64 << d {
                return Err(bad(format!(
                    "shard {} has prefix {} at depth {d}",
                    spec.id, spec.prefix
                )));
            }
            let span = 1usize << (bits - d);
            for slot in route
                .iter_mut()
                .skip(spec.prefix as usize * span)
                .take(span)
            {
                if *slot != u32::MAX {
                    return Err(bad(format!("shard {} overlaps another shard", spec.id)));
                }
                *slot = i as u32;
            }
        }
        if route.contains(&u32::MAX) {
            return Err(bad("the shards leave part of the hash space unowned".into()));
        }
        Ok((bits, route))
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
            split: Vec::new(),
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
    fn routing_of_uniform_and_split_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest {
            format_version: FORMAT_VERSION,
            layout: 1,
            shards: 4,
            ssd_dir: "ssd".into(),
            hdd_dir: "hdd".into(),
            split: Vec::new(),
        };
        assert_eq!(m.routing(dir.path()).unwrap(), (2, vec![0, 1, 2, 3]));
        // Shard 1 split in two: prefixes 0 (depth 2), 10 and 11 (depth 3), 2 and 3 (depth 2).
        m.shards = 5;
        m.split = vec![
            ShardSpec {
                id: 0,
                prefix: 0,
                depth: 2,
            },
            ShardSpec {
                id: 4,
                prefix: 2,
                depth: 3,
            },
            ShardSpec {
                id: 5,
                prefix: 3,
                depth: 3,
            },
            ShardSpec {
                id: 2,
                prefix: 2,
                depth: 2,
            },
            ShardSpec {
                id: 3,
                prefix: 3,
                depth: 2,
            },
        ];
        assert_eq!(
            m.routing(dir.path()).unwrap(),
            (3, vec![0, 0, 1, 2, 3, 3, 4, 4])
        );
        m.split[2].prefix = 2; // overlap
        assert!(m.routing(dir.path()).is_err());
    }

    /// Found by the `roundtrip` fuzz target: a manifest naming 4 billion uniform shards made
    /// `routing` allocate a spec per shard (an abort) before it checked the layout.
    #[test]
    fn huge_or_odd_uniform_shard_counts_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        for shards in [0, 3, 1 << 17, u32::MAX, 1 << 31] {
            let m = Manifest {
                format_version: FORMAT_VERSION,
                layout: 1,
                shards,
                ssd_dir: "ssd".into(),
                hdd_dir: "hdd".into(),
                split: Vec::new(),
            };
            let e = m.routing(dir.path()).unwrap_err();
            assert!(matches!(e, Error::Corruption { .. }), "{shards}: {e}");
        }
    }

    #[test]
    fn every_flipped_bit_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest {
            format_version: FORMAT_VERSION,
            layout: 3,
            shards: 2,
            ssd_dir: "ssd".into(),
            hdd_dir: "hdd".into(),
            split: Vec::new(),
        };
        m.store(dir.path()).unwrap();
        let path = Manifest::path(dir.path());
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                std::fs::write(&path, &bad).unwrap();
                match Manifest::load(dir.path()) {
                    Err(Error::Corruption { .. }) => {}
                    other => panic!("byte {at} bit {bit}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn garbage_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Manifest::path(dir.path()), b"hello").unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("MANIFEST"), "{e}");
    }
}
