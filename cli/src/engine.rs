//! The one seam between kvtool and the `tierkv` engine: every engine item the commands use is named
//! here, and the maintenance operations that a build may lack (`compact`, `rebalance`) sit behind
//! small functions so that switching them on is a one-line change.
//!
//! Until the engine's `Db` is merged, `shim` provides a stand-in with the same signatures (an in-memory
//! map saved to one file) so the command line can be built and tested; it is removed at the merge.

#[cfg(test)]
pub use tierkv::ShardStats;
pub use tierkv::{Error, Options, Stats, SyncPolicy, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN};

pub use shim::{Db, Progress};

/// Runs `compact` (all shards, or one) when this build's engine has it.
pub fn compact(
    _db: &Db,
    _shard: Option<u32>,
    _progress: &dyn Progress,
) -> anyhow::Result<serde_json::Value> {
    Err(unavailable("compact"))
}

/// Runs `rebalance` to `new_shards` shards when this build's engine has it.
pub fn rebalance(
    _db: &Db,
    _new_shards: u32,
    _progress: &dyn Progress,
) -> anyhow::Result<serde_json::Value> {
    Err(unavailable("rebalance"))
}

fn unavailable(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} is not available in this build (the engine does not provide it yet)")
}

#[allow(missing_docs, dead_code)]
mod shim {
    use std::collections::BTreeMap;
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::{Error, Options, Stats, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN};
    use tierkv::BatchOp;

    pub type Result<T> = std::result::Result<T, Error>;

    pub trait Progress: Send + Sync {
        fn start(&self, what: &str, total: u64);
        fn advance(&self, n: u64);
        fn finish(&self);
    }

    #[derive(Debug)]
    pub struct NoProgress;
    impl Progress for NoProgress {
        fn start(&self, _: &str, _: u64) {}
        fn advance(&self, _: u64) {}
        fn finish(&self) {}
    }

    #[derive(Debug, Default, serde::Serialize)]
    pub struct CheckProblem {
        pub file: PathBuf,
        pub offset: u64,
        pub reason: String,
    }

    #[derive(Debug, Default, serde::Serialize)]
    pub struct CheckReport {
        pub pages_checked: u64,
        pub log_records_checked: u64,
        pub values_checked: u64,
        pub problems: Vec<CheckProblem>,
    }

    #[derive(Debug)]
    pub struct Db {
        file: PathBuf,
        shards: u32,
        map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    }

    fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }

    fn check(key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "bad key length {}",
                key.len()
            )));
        }
        if value.is_some_and(|v| v.len() > MAX_VALUE_LEN) {
            return Err(Error::InvalidArgument("value too long".into()));
        }
        Ok(())
    }

    impl Db {
        pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
            opts.validate()?;
            let dir = path.as_ref();
            let file = dir.join("SHIM");
            let mut map = BTreeMap::new();
            if file.exists() {
                let mut data = Vec::new();
                std::fs::File::open(&file)
                    .and_then(|mut f| f.read_to_end(&mut data))
                    .map_err(|e| io(&file, e))?;
                let mut p = 0;
                let next = |p: &mut usize| -> Vec<u8> {
                    let n = u32::from_le_bytes(data[*p..*p + 4].try_into().unwrap()) as usize;
                    let v = data[*p + 4..*p + 4 + n].to_vec();
                    *p += 4 + n;
                    v
                };
                while p < data.len() {
                    let k = next(&mut p);
                    let v = next(&mut p);
                    map.insert(k, v);
                }
            } else if !opts.create_if_missing {
                return Err(Error::NoStore {
                    path: dir.to_path_buf(),
                });
            } else {
                std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            Ok(Db {
                file,
                shards: opts.shards,
                map: Mutex::new(map),
            })
        }
        pub fn put(&self, k: &[u8], v: &[u8]) -> Result<()> {
            check(k, Some(v))?;
            self.map.lock().unwrap().insert(k.to_vec(), v.to_vec());
            Ok(())
        }
        pub fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
            check(k, None)?;
            Ok(self.map.lock().unwrap().get(k).cloned())
        }
        pub fn delete(&self, k: &[u8]) -> Result<()> {
            check(k, None)?;
            self.map.lock().unwrap().remove(k);
            Ok(())
        }
        pub fn write_batch(&self, b: &WriteBatch) -> Result<()> {
            for op in b.ops() {
                match op {
                    BatchOp::Put { key, value } => self.put(key, value)?,
                    BatchOp::Delete { key } => self.delete(key)?,
                }
            }
            Ok(())
        }
        pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
            keys.iter().map(|k| self.get(k.as_ref())).collect()
        }
        pub fn sync(&self) -> Result<()> {
            let map = self.map.lock().unwrap();
            let mut out = Vec::new();
            for (k, v) in map.iter() {
                out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                out.extend_from_slice(k);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            let tmp = self.file.with_extension("tmp");
            std::fs::File::create(&tmp)
                .and_then(|mut f| f.write_all(&out))
                .map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &self.file).map_err(|e| io(&self.file, e))
        }
        pub fn flush(&self) -> Result<()> {
            self.sync()
        }
        pub fn stats(&self) -> Stats {
            let map = self.map.lock().unwrap();
            Stats {
                shards: self.shards,
                live_keys: map.len() as u64,
                ..Stats::default()
            }
        }
        pub fn scan(&self, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
            for (k, v) in self.map.lock().unwrap().iter() {
                if !f(k, v) {
                    break;
                }
            }
            Ok(())
        }
        pub fn check(&self, p: &dyn Progress) -> Result<CheckReport> {
            p.start("checking", 1);
            p.advance(1);
            p.finish();
            Ok(CheckReport::default())
        }
        pub fn close(self) -> Result<()> {
            self.sync()
        }
    }
}
