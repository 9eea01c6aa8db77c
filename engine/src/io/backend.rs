//! The storage trait every file access of the engine goes through, its operating-system
//! implementation, and the registry that picks a backend for a path.
//!
//! [`StorageBackend`] opens files and changes directories; [`FileBackend`] is one open file. The engine
//! holds files only as [`StorageFile`] (a backend file plus its path, so that every error names the
//! file). [`OsStorage`] is the real implementation. A test installs another backend (for example the
//! fault-injecting one, which keeps written bytes apart from synced bytes) for every path under a
//! directory with [`register_storage`]; paths outside registered directories use the OS.
//!
//! Invariant: a backend that is not the OS returns `None` from [`FileBackend::uring_fd`], so batched
//! I/O falls back to its positioned calls and every byte passes through the backend.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

/// How a file is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenHow {
    /// Open for writing as well as reading.
    pub write: bool,
    /// Create the file when it is missing.
    pub create: bool,
    /// Truncate the file to zero bytes.
    pub truncate: bool,
    /// Bypass the page cache (`O_DIRECT`): offsets, lengths and buffers must be aligned to
    /// [`super::direct::ALIGN`]; only [`super::direct`] issues such reads.
    pub direct: bool,
}

impl OpenHow {
    /// Read-only.
    pub const READ: OpenHow = OpenHow {
        write: false,
        create: false,
        truncate: false,
        direct: false,
    };
    /// Read and write an existing file.
    pub const READ_WRITE: OpenHow = OpenHow {
        write: true,
        ..OpenHow::READ
    };
    /// Read and write, creating the file empty when missing (never truncating).
    pub const OPEN_OR_CREATE: OpenHow = OpenHow {
        write: true,
        create: true,
        ..OpenHow::READ
    };
    /// Create or truncate, read and write.
    pub const CREATE: OpenHow = OpenHow {
        write: true,
        create: true,
        truncate: true,
        direct: false,
    };
    /// Read-only, bypassing the page cache.
    pub const READ_DIRECT: OpenHow = OpenHow {
        direct: true,
        ..OpenHow::READ
    };
}

/// One open file of a [`StorageBackend`].
pub trait FileBackend: Send + Sync + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns the bytes read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`; returns the bytes written.
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize>;
    /// Makes the file's written data durable (`fdatasync`).
    fn sync_data(&self) -> std::io::Result<()>;
    /// Sets the file's length.
    fn set_len(&self, len: u64) -> std::io::Result<()>;
    /// The file's current length in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// Reserves disk blocks for the first `len` bytes (so later writes cannot hit ENOSPC).
    fn allocate(&self, len: u64) -> std::io::Result<()>;
    /// The descriptor a memory map of the file is made from.
    fn map_fd(&self) -> RawFd;
    /// The descriptor io_uring may submit to directly, or `None` to force positioned calls
    /// (every backend but the OS one, so that no byte bypasses it).
    fn uring_fd(&self) -> Option<RawFd>;
}

/// Opening files and changing directories.
pub trait StorageBackend: Send + Sync + std::fmt::Debug {
    /// Opens `path`.
    fn open(&self, path: &Path, how: OpenHow) -> std::io::Result<Box<dyn FileBackend>>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> std::io::Result<()>;
    /// Creates the directory `path` (its parent exists).
    fn create_dir(&self, path: &Path) -> std::io::Result<()>;
    /// Makes the entries of directory `path` durable.
    fn sync_dir(&self, path: &Path) -> std::io::Result<()>;
    /// Removes the directory `path` and everything in it.
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()>;
}

/// The operating system's files.
#[derive(Debug, Default)]
pub struct OsStorage;

#[derive(Debug)]
struct OsFile(File);

impl FileBackend for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn allocate(&self, len: u64) -> std::io::Result<()> {
        // SAFETY: plain syscall on an open descriptor; no memory is passed.
        let rc = unsafe { libc::posix_fallocate(self.0.as_raw_fd(), 0, len as libc::off_t) };
        match rc {
            0 => Ok(()),
            // File systems without fallocate: blocks are allocated lazily.
            libc::EOPNOTSUPP | libc::EINVAL => self.0.set_len(len.max(self.size()?)),
            err => Err(std::io::Error::from_raw_os_error(err)),
        }
    }
    fn map_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
    fn uring_fd(&self) -> Option<RawFd> {
        Some(self.0.as_raw_fd())
    }
}

impl StorageBackend for OsStorage {
    fn open(&self, path: &Path, how: OpenHow) -> std::io::Result<Box<dyn FileBackend>> {
        let mut o = OpenOptions::new();
        o.read(true)
            .write(how.write)
            .create(how.create)
            .truncate(how.truncate);
        if how.direct {
            o.custom_flags(libc::O_DIRECT);
        }
        Ok(Box::new(OsFile(o.open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir_all(path)
    }
}

type Registered = Vec<(PathBuf, Arc<dyn StorageBackend>)>;

/// Backends installed for directories (tests only, in practice); empty means "all OS".
static REGISTRY: RwLock<Registered> = RwLock::new(Vec::new());
/// Fast path: false while nothing was ever registered.
static ANY_REGISTERED: AtomicBool = AtomicBool::new(false);

fn os() -> Arc<dyn StorageBackend> {
    static OS: OnceLock<Arc<dyn StorageBackend>> = OnceLock::new();
    OS.get_or_init(|| Arc::new(OsStorage)).clone()
}

/// The backend for `path`: the one registered for the deepest directory containing it, else the OS.
pub fn storage_for(path: &Path) -> Arc<dyn StorageBackend> {
    if ANY_REGISTERED.load(Ordering::Acquire) {
        let reg = REGISTRY.read();
        if let Some((_, b)) = reg
            .iter()
            .filter(|(root, _)| path.starts_with(root))
            .max_by_key(|(root, _)| root.as_os_str().len())
        {
            return b.clone();
        }
    }
    os()
}

/// Routes every file access under `root` to `backend` until the returned guard is dropped.
/// `root` should be absolute and is matched by path prefix, as the engine spells the paths it
/// derives from the store path it was opened with.
pub fn register_storage(root: &Path, backend: Arc<dyn StorageBackend>) -> StorageRegistration {
    REGISTRY.write().push((root.to_path_buf(), backend));
    ANY_REGISTERED.store(true, Ordering::Release);
    StorageRegistration {
        root: root.to_path_buf(),
    }
}

/// Keeps a [`register_storage`] routing alive.
#[derive(Debug)]
#[must_use = "the routing ends when the registration is dropped"]
pub struct StorageRegistration {
    root: PathBuf,
}

impl Drop for StorageRegistration {
    fn drop(&mut self) {
        let mut reg = REGISTRY.write();
        if let Some(i) = reg.iter().rposition(|(r, _)| *r == self.root) {
            reg.remove(i);
        }
    }
}

/// An open file and its path: how the engine holds every file.
#[derive(Debug)]
pub struct StorageFile {
    pub(crate) backend: Box<dyn FileBackend>,
    pub(crate) path: PathBuf,
}
