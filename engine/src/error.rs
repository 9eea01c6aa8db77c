//! The engine's one error type. Every fallible public call returns [`Result`]; no public call panics on
//! bad input. Variants name the cause and, where a file is involved, the file and the byte offset.

use std::path::PathBuf;

/// The result type of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. New variants may be added, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on a named file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checksum, magic number or cross-reference did not hold.
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged record or page.
        offset: u64,
        /// What was found wrong.
        reason: String,
    },
    /// The store was written by another format version.
    #[error("{} has format version {found}, this build reads version {expected}", file.display())]
    FormatVersion {
        /// The file whose header carries the version.
        file: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// Another process holds the store's writer lock.
    #[error("store {} is locked by another writer (lock file {})", store.display(), lock_file.display())]
    Locked {
        /// The store directory.
        store: PathBuf,
        /// The lock file held by the other process.
        lock_file: PathBuf,
    },
    /// A caller-supplied argument is out of range (empty key, oversize value, bad option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No store exists at the path and `create_if_missing` is off.
    #[error("no tierkv store at {} (no MANIFEST)", path.display())]
    NoStore {
        /// The path that holds no store.
        path: PathBuf,
    },
    /// An earlier write or fsync failed; the handle refuses writes until the store is reopened.
    #[error("store is poisoned by an earlier I/O failure ({0}); reopen it")]
    Poisoned(String),
    /// A read-only handle could not follow the writer: the store changed under a read faster than
    /// the handle could reload it (for example, a table rebuilt during a scan). Retry or reopen.
    #[error("read-only view is stale: {0}")]
    Stale(String),
    /// The operation is not available (for example, a write on a read-only handle).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Corruption`] in `file` at `offset`.
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True when the error came from the operating system reporting a full device.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
