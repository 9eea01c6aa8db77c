//! `kvtool put`: sets one key, the value given as an argument, read from a file, or from stdin; the
//! write is synced before the command returns.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{input_name, key_arg, open_input};
use crate::config::Global;

/// Arguments of `kvtool put`.
#[derive(clap::Args, Debug)]
pub struct PutArgs {
    /// The key.
    #[arg(value_name = "KEY")]
    pub key: OsString,
    /// The value; `-` reads it from stdin.
    #[arg(
        value_name = "VALUE",
        required_unless_present = "value_file",
        conflicts_with = "value_file"
    )]
    pub value: Option<OsString>,
    /// Read the value from FILE (`-` for stdin), byte for byte.
    #[arg(long, value_name = "FILE")]
    pub value_file: Option<PathBuf>,
    /// C-style escapes in KEY and VALUE.
    #[arg(long)]
    pub escape: bool,
}

/// Runs `kvtool put`.
pub fn run(a: &PutArgs, g: &Global) -> anyhow::Result<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    let key = key_arg(&a.key, a.escape)?;
    let from_file = match (&a.value, &a.value_file) {
        (Some(v), None) if v == "-" => Some(PathBuf::from("-")),
        (_, Some(f)) => Some(f.clone()),
        _ => None,
    };
    let value = match (from_file, &a.value) {
        (Some(path), _) => {
            let mut v = Vec::new();
            open_input(&path)?
                .read_to_end(&mut v)
                .with_context(|| format!("cannot read {}", input_name(&path)))?;
            v
        }
        (None, Some(v)) if a.escape => crate::escape::unescape(v.as_bytes())
            .map_err(|e| anyhow::anyhow!("value argument, byte {}: {}", e.offset + 1, e.reason))?,
        (None, Some(v)) => v.as_bytes().to_vec(),
        (None, None) => anyhow::bail!("no value: give VALUE or --value-file"),
    };
    crate::input::check_value(&value).map_err(anyhow::Error::msg)?;
    let db = g.open(true)?;
    db.put(&key, &value).context("cannot write to the store")?;
    db.sync().context("cannot sync the store")?;
    db.close().context("cannot close the store")?;
    Ok(crate::EXIT_OK)
}
