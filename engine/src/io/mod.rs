//! All file-system access of the engine: opening, positioned reads and writes, preallocation, syncing,
//! atomic replacement, directory syncs, memory maps and the writer lock. Every other module goes through
//! these helpers so that errors always carry the file's path and so that a fault-injecting backend has
//! one place to hook (`backend.rs`: the storage trait and its registry). Batched reads and writes
//! (io_uring, or positioned calls where it is unavailable) are in `uring.rs`; direct I/O with aligned
//! buffers in `direct.rs`; the bounded cache of index pages read with direct I/O in `page_cache.rs`;
//! the fault-injecting backend tests put behind the trait in `fault.rs`.
//!
//! `unsafe` lives in this module only: memory maps (see the SAFETY notes on who writes their files),
//! the shared words of the publication board (`shared.rs`), aligned allocations and io_uring
//! submissions.

mod backend;
pub(crate) mod direct;
pub mod fault;
pub(crate) mod page_cache;
pub(crate) mod shared;
pub(crate) mod uring;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

pub use backend::{
    register_storage, storage_for, FileBackend, OpenHow, OsStorage, StorageBackend, StorageFile,
    StorageRegistration,
};

use crate::error::{Error, IoContext, Result};
use crate::options::{DirectIo, IoEngine, Options};
use page_cache::PageCache;
use uring::BatchIo;

/// How one shard reads and writes: the batched-I/O path, the tiers read directly, and the shard's
/// page cache (present when the index is read directly and a cache size is set).
#[derive(Clone, Debug)]
pub(crate) struct IoSetup {
    pub batch: BatchIo,
    pub direct: DirectIo,
    pub cache: Option<Arc<PageCache>>,
}

impl IoSetup {
    /// The setup of one of `shards` shards under `opts`. Fails when io_uring is asked for and
    /// unavailable.
    pub fn for_shard(opts: &Options, shards: u32) -> Result<IoSetup> {
        let batch = match opts.io_engine {
            IoEngine::Pread => BatchIo::Positioned,
            IoEngine::Auto if uring::uring_available() => BatchIo::Uring,
            IoEngine::Auto => BatchIo::Positioned,
            IoEngine::IoUring if uring::uring_available() => BatchIo::Uring,
            IoEngine::IoUring => {
                return Err(Error::Unsupported(
                    "io_engine = io_uring, but this process cannot create an io_uring \
                     (old kernel, seccomp or io_uring_disabled); use auto or pread"
                        .into(),
                ))
            }
        };
        let pages = opts.page_cache_bytes / shards.max(1) as u64 / direct::ALIGN as u64;
        Ok(IoSetup {
            batch,
            direct: opts.direct_io,
            cache: (opts.direct_io.index && pages > 0)
                .then(|| Arc::new(PageCache::new(pages as usize))),
        })
    }
}

impl IoSetup {
    /// Reads through memory maps only, batches by positioned calls, no page cache: the setup of a
    /// read-only handle (`reader.rs`), which must not cache pages the writer may rewrite.
    pub fn mapped() -> IoSetup {
        IoSetup {
            batch: BatchIo::Positioned,
            direct: DirectIo::default(),
            cache: None,
        }
    }
}

/// Opens `path` the way `how` says, through the backend registered for it.
pub(crate) fn open(path: &Path, how: OpenHow) -> Result<StorageFile> {
    let backend = storage_for(path).open(path, how).map_err(|e| {
        if how.direct && e.raw_os_error() == Some(libc::EINVAL) {
            Error::io(
                path,
                std::io::Error::new(
                    e.kind(),
                    format!("{e} (the file system does not support direct I/O; turn it off)"),
                ),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    Ok(StorageFile {
        backend,
        path: path.to_path_buf(),
    })
}

/// Opens an existing file for reading and writing.
pub(crate) fn open_rw(path: &Path) -> Result<StorageFile> {
    open(path, OpenHow::READ_WRITE)
}

/// Opens a file for reading and writing, creating it empty when missing (never truncating).
pub(crate) fn open_or_create(path: &Path) -> Result<StorageFile> {
    open(path, OpenHow::OPEN_OR_CREATE)
}

/// Creates (or truncates) a file for reading and writing.
pub(crate) fn create_rw(path: &Path) -> Result<StorageFile> {
    open(path, OpenHow::CREATE)
}

impl StorageFile {
    /// Reads exactly `buf.len()` bytes at `offset`; a file that ends first is corruption.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let need = buf.len();
        self.read_at_least(buf, offset, 0, need).map(|_| ())
    }

    /// Reads into `buf` at `offset` until at least `need` bytes are in (`done` already are); returns
    /// the bytes in. Reading stops early at the end of the file, so a direct-I/O read may ask for an
    /// aligned range that passes the end. A file that ends before `need` bytes is corruption.
    pub(crate) fn read_at_least(
        &self,
        buf: &mut [u8],
        offset: u64,
        mut done: usize,
        need: usize,
    ) -> Result<usize> {
        while done < need {
            match self.backend.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(Error::corruption(
                        &self.path,
                        offset,
                        format!("file ends before {need} bytes at this offset"),
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(done)
    }

    /// Writes all of `buf` at `offset`.
    pub(crate) fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            match self.backend.write_at(buf, offset) {
                Ok(0) => return Err(Error::io(&self.path, std::io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(())
    }

    /// `fdatasync`.
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.backend.sync_data().at(&self.path)
    }

    /// The file's length.
    pub(crate) fn len(&self) -> Result<u64> {
        self.backend.size().at(&self.path)
    }

    /// Reserves `len` bytes of disk blocks so later writes through a map cannot hit ENOSPC
    /// (which would be a SIGBUS, not an error).
    pub(crate) fn preallocate(&self, len: u64) -> Result<()> {
        self.backend.allocate(len).at(&self.path)
    }
}

/// The whole content of `path`, or `None` when it does not exist.
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match storage_for(path).open(path, OpenHow::READ) {
        Ok(b) => StorageFile {
            backend: b,
            path: path.to_path_buf(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut bytes = vec![0u8; file.len()? as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(Some(bytes))
}

/// Syncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    storage_for(dir).sync_dir(dir).at(dir)
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
    match storage_for(dir).create_dir(dir) {
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
        let f = create_rw(&tmp)?;
        f.write_all_at(bytes, 0)?;
        f.sync_data()?;
    }
    storage_for(path).rename(&tmp, path).at(path)?;
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
    match storage_for(path).remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_dir_all_if_exists(dir: &Path) -> Result<()> {
    match storage_for(dir).remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// A read-only map of the first `len` bytes of `file` (`None` when `len == 0`).
pub(crate) fn map_read(file: &StorageFile, len: u64) -> Result<Option<Mmap>> {
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the file is never truncated below `len` while the map lives (index and value files only
    // grow; a replaced file is deleted, which keeps its pages alive for the map), so no access through
    // it can fault. In the writer process, the bytes a published snapshot reads are never rewritten
    // (new bytes go past them, or into slots and extents no published snapshot references: see
    // `flush.rs`). A read-only handle of another process (`reader.rs`) may map bytes the writer later
    // reuses: it reads them in place only while the publication board shows that nothing its snapshot
    // references is being rewritten (a seqlock), and otherwise copies them out and validates the
    // copy, so a concurrent rewrite is seen as a moved count or a checksum mismatch, never as data.
    let map = unsafe {
        MmapOptions::new()
            .len(len as usize)
            .map(file.backend.map_fd())
    }
    .at(&file.path)?;
    // Lets the kernel map the page cache's large folios with 2 MiB entries (fewer TLB misses on the
    // random page and value reads of a get; 4 of 4 paired runs of `kvbench readers` read faster with
    // it, by 3–29 %). Only a hint: an error changes nothing.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
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
    _file: std::fs::File,
}

impl WriterLock {
    /// Takes the lock or returns [`Error::Locked`].
    pub(crate) fn acquire(store: &Path) -> Result<WriterLock> {
        let path = store.join("LOCK");
        // The lock is an OS-level flock on a real descriptor, whatever backend holds the store.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe {
            libc::flock(
                std::os::unix::io::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
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
        let e = f.read_exact_at(&mut buf, 0).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }
}
