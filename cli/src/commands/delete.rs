//! `kvtool delete`: removes keys (absent keys are not an error: a delete is idempotent) and syncs.

use std::ffi::OsString;

use anyhow::Context as _;

use super::key_arg;
use crate::config::Global;
use crate::engine::WriteBatch;

/// Arguments of `kvtool delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Keys to remove.
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<OsString>,
    /// C-style escapes in the keys.
    #[arg(long)]
    pub escape: bool,
}

/// Runs `kvtool delete`.
pub fn run(a: &DeleteArgs, g: &Global) -> anyhow::Result<u8> {
    let mut batch = WriteBatch::with_capacity(a.keys.len());
    for k in &a.keys {
        batch.delete(key_arg(k, a.escape)?);
    }
    let db = g.open(false)?;
    db.write_batch(&batch)
        .context("cannot write to the store")?;
    db.sync().context("cannot sync the store")?;
    db.close().context("cannot close the store")?;
    Ok(crate::EXIT_OK)
}
