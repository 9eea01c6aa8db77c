//! The simulations' error type. Bad input files (device profiles, workload specs, traces) are reported
//! with the file and, where known, the field or line; no public call panics on bad input. Messages are
//! self-contained (they include the underlying error's text), so the underlying errors are not also
//! exposed as `source()`: an `anyhow` chain would print them twice.

use std::path::PathBuf;

/// Result of every fallible tiersim call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// A JSON file did not parse into the expected shape (serde names the field, line and column).
    #[error("{}: {cause}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        cause: serde_json::Error,
    },
    /// A field parsed but holds a value out of range.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field {
        /// The file (or `<arguments>` for command-line values).
        path: PathBuf,
        /// The field, dotted (`mix.get`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A trace file line could not be read.
    #[error("{} line {line}: {reason}", path.display())]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A parameter given to a simulation is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The engine failed while `validate` ran a workload against a real store.
    #[error("engine error during validation: {0}")]
    Engine(tierkv::Error),
}

/// Checks a parameter: `Err(Param)` naming it when `ok` is false.
pub(crate) fn check_param(
    ok: bool,
    name: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Param {
            name,
            reason: reason(),
        })
    }
}

impl From<tierkv::Error> for Error {
    fn from(e: tierkv::Error) -> Self {
        Error::Engine(e)
    }
}

/// The `*.json` files in `dir`, sorted by name (device profiles and workload specs are listed this way).
pub fn json_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    Ok(paths)
}
