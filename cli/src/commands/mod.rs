//! One module per subcommand; this file only dispatches. Each command takes its parsed arguments and
//! the resolved [`Global`] and returns the process exit code (errors become exit code 2 in `main`).

pub mod batch;
pub mod check;
pub mod compact;
pub mod delete;
pub mod export;
pub mod get;
pub mod load;
pub mod put;
pub mod rebalance;
pub mod simulate;
pub mod stats;

use crate::config::Global;
use crate::{Cli, Command};

/// Runs the command line's command.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = Global::resolve(cli.db, &cli.store, cli.quiet, cli.json)?;
    match &cli.command {
        Command::Load(a) => load::run(a, &g),
        Command::Get(a) => get::run(a, &g),
        Command::Put(a) => put::run(a, &g),
        Command::Delete(a) => delete::run(a, &g),
        Command::Batch(a) => batch::run(a, &g),
        Command::Export(a) => export::run(a, &g),
        Command::Stats(a) => stats::run(a, &g),
        Command::Check(a) => check::run(a, &g),
        Command::Compact(a) => compact::run(a, &g),
        Command::Rebalance(a) => rebalance::run(a, &g),
        Command::Simulate(a) => {
            let code = simulate::run(a, g.json)?;
            Ok(u8::try_from(code).unwrap_or(crate::EXIT_ERROR))
        }
    }
}

/// Opens a key argument: raw bytes of the OS string, or C-style escapes decoded with `--escape`.
pub fn key_arg(arg: &std::ffi::OsStr, escape: bool) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt as _;
    let raw = arg.as_bytes();
    let key = if escape {
        crate::escape::unescape(raw).map_err(|e| {
            anyhow::anyhow!(
                "key argument {:?}, byte {}: {}",
                arg,
                e.offset + 1,
                e.reason
            )
        })?
    } else {
        raw.to_vec()
    };
    crate::input::check_key(&key).map_err(|r| anyhow::anyhow!("key argument {arg:?}: {r}"))?;
    Ok(key)
}

/// Opens an input path, `-` meaning stdin (with a hint on stderr when stdin is a terminal, so a
/// forgotten file name does not look like a hang).
pub fn open_input(path: &std::path::Path) -> anyhow::Result<Box<dyn std::io::Read>> {
    use std::io::IsTerminal as _;

    use anyhow::Context as _;
    if path.as_os_str() == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("kvtool: reading from the terminal; end with Ctrl-D");
        }
        Ok(Box::new(stdin.lock()))
    } else {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Box::new(f))
    }
}

/// The name a path is reported under: `<stdin>` for `-`.
pub fn input_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}
