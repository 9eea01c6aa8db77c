//! All file-system access of the engine: opening, positioned reads and writes, preallocation, syncing,
//! atomic replacement, directory syncs, memory maps and the writer lock. Every other module goes through
//! these helpers so that errors always carry the file's path and so that a fault-injecting layer has
//! one place to hook (see `docs/architecture.md`).
//!
//! `unsafe` lives here only: memory maps (whose files this process alone writes, see the SAFETY notes).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, IoContext, Result};

/// Opens an existing file for reading and writing.
pub(crate) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)
}

/// Opens a file for reading and writing, creating it empty when missing (never truncating).
pub(crate) fn open_or_create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)
}

/// Creates (or truncates) a file for reading and writing.
pub(crate) fn create_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .at(path)
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corruption(
                path,
                offset,
                format!("file ends before {} bytes at this offset", buf.len()),
            )
        } else {
            Error::io(path, e)
        }
    })
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, path: &Path, buf: &[u8], offset: u64) -> Result<()> {
    file.write_all_at(buf, offset).at(path)
}

/// `fdatasync`.
pub(crate) fn sync_data(file: &File, path: &Path) -> Result<()> {
    file.sync_data().at(path)
}

/// Reserves `len` bytes of disk blocks for `file` so later writes through a map cannot hit ENOSPC
/// (which would be a SIGBUS, not an error).
pub(crate) fn preallocate(file: &File, path: &Path, len: u64) -> Result<()> {
    // SAFETY: plain syscall on an open descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // File systems without fallocate: fall back to set_len (blocks allocated lazily).
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len).at(path),
        err => Err(Error::io(path, std::io::Error::from_raw_os_error(err))),
    }
}

/// Syncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Creates `dir` and its parents, syncing the parent of each created directory.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_dir_durable(parent)?;
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Replaces `path` atomically with `bytes`: write `path.tmp`, fsync, rename over `path`, fsync the
/// directory. A crash leaves either the old or the new file, never a mix.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = create_rw(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)?;
    sync_dir(parent_of(path))
}

/// `path` with `.tmp` appended.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes a file if it exists.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A read-only map of the first `len` bytes of `file` (`None` when `len == 0`).
pub(crate) fn map_read(file: &File, path: &Path, len: u64) -> Result<Option<Mmap>> {
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the engine's files are written only by this process (the writer lock guarantees it) and
    // only past the bytes that readers of this map look at, or in slots no published state references
    // (see the out-of-place page rule in `index.rs`); the file is never truncated below `len` while the map
    // lives.
    let map = unsafe { MmapOptions::new().len(len as usize).map(file) }.at(path)?;
    Ok(Some(map))
}

/// Asks the CPU to start loading the cache line holding `value` (a hint: no effect on results).
#[inline]
pub(crate) fn prefetch<T>(value: &[T]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache and never faults; the pointer comes from a live slice.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(value.as_ptr().cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The store's writer lock: an exclusive `flock` on `<store>/LOCK`, held while the value lives.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock or returns [`Error::Locked`].
    pub(crate) fn acquire(store: &Path) -> Result<WriterLock> {
        let path = store.join("LOCK");
        let file = open_or_create(&path)?;
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Locked {
                    store: store.to_path_buf(),
                    lock_file: path,
                });
            }
            return Err(Error::io(&path, err));
        }
        let _ = file.set_len(0);
        let _ = (&file).write_all(format!("{}\n", std::process::id()).as_bytes());
        Ok(WriterLock { _file: file })
    }
}

/// Little-endian encoding helpers shared by the on-disk formats.
pub(crate) mod le {
    #[inline]
    pub fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    #[inline]
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
    }
    #[inline]
    pub fn u48_at(b: &[u8], at: usize) -> u64 {
        let mut x = [0u8; 8];
        x[..6].copy_from_slice(&b[at..at + 6]);
        u64::from_le_bytes(x)
    }
    #[inline]
    pub fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
    }
    #[inline]
    pub fn put_u48(out: &mut Vec<u8>, v: u64) {
        debug_assert!(v < 1 << 48);
        out.extend_from_slice(&v.to_le_bytes()[..6]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _a = WriterLock::acquire(dir.path()).unwrap();
        let b = WriterLock::acquire(dir.path());
        assert!(matches!(b, Err(Error::Locked { .. })), "{b:?}");
    }

    #[test]
    fn short_read_is_corruption_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let f = open_rw(&p).unwrap();
        let mut buf = [0u8; 8];
        let e = read_exact_at(&f, &p, &mut buf, 0).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }
}
