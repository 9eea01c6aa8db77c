//! `kvtool`: the command line of the tierkv storage engine. This file owns the argument grammar
//! ([`Cli`], [`Command`]), turns it into a validated [`config::Global`], dispatches to one module per
//! subcommand under `commands/`, and maps the outcome to the documented exit codes. It does no work
//! on data itself.

mod commands;
mod config;
mod output;
mod progress;
mod writer;

// The parsers and the engine seam live in the library (`lib.rs`) so the fuzz targets reach them too.
use kvtool::{escape, input};

/// The library's engine seam, plus what `engine.rs` exports only to unit tests (`cfg(test)` is off
/// in the library when the binary's tests are built).
mod engine {
    pub use kvtool::engine::*;
    #[cfg(test)]
    pub use tierkv::ShardStats;
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, shown at the end of `--help` and in `docs/cli.md`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a key was not found (get), or check found problems
  2  usage error, or the command could not run (I/O error, store locked, ...)
  3  load or batch stopped on bad input (records before it are committed and synced)
A closed output pipe (kvtool export | head) ends the program quietly with code 0.";

/// Success.
pub const EXIT_OK: u8 = 0;
/// A key was not found, or `check` found problems.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Usage or runtime error.
pub const EXIT_ERROR: u8 = 2;
/// Load stopped on bad input.
pub const EXIT_BAD_INPUT: u8 = 3;

/// Load, read and maintain a tierkv store.
#[derive(Parser, Debug)]
#[command(name = "kvtool", version, about, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// The store directory.
    #[arg(long, env = "KVTOOL_DB", value_name = "DIR", global = true)]
    pub db: Option<PathBuf>,
    /// Print errors only: no progress bars, no summaries.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print the command's report as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Engine options.
    #[command(flatten)]
    pub store: config::StoreArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load records from TSV, CSV or JSONL files (or stdin).
    Load(commands::load::LoadArgs),
    /// Print the values of keys.
    Get(commands::get::GetArgs),
    /// Set one key.
    Put(commands::put::PutArgs),
    /// Remove keys.
    Delete(commands::delete::DeleteArgs),
    /// Apply a JSON-lines script of puts, deletes and gets, answering gets in order.
    Batch(commands::batch::BatchArgs),
    /// Write every live key and value as TSV or JSONL.
    Export(commands::export::ExportArgs),
    /// Report keys, shards, tables, Bloom filters, disk use and recommendations.
    Stats(commands::stats::StatsArgs),
    /// Verify every checksum and cross-reference.
    Check(commands::check::CheckArgs),
    /// Rewrite data files to drop dead bytes.
    Compact(commands::compact::CompactArgs),
    /// Change the number of shards.
    Rebalance(commands::rebalance::RebalanceArgs),
    /// Capacity-planning simulations.
    Simulate(commands::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if output::is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("kvtool: error: {}", error_chain(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes joined with `: `, leaving out a cause whose text the message before it
/// already ends with (the engine's errors print their OS error themselves).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn error_chain_prints_each_cause_once() {
        let os = std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(tierkv::Error::Io {
            path: "db/log".into(),
            source: os,
        })
        .context("cannot write a batch to the store");
        assert_eq!(
            error_chain(&e),
            "cannot write a batch to the store: I/O error on db/log: No space left on device (os error 28)"
        );
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
