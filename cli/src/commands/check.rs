//! `kvtool check`: runs the engine's full verification (every checksum, every cross-reference) with a
//! progress bar, and names each problem with its file and offset. Exit 0 healthy, 1 problems found,
//! 2 the check could not run.

use anyhow::Context as _;

use crate::config::Global;
use crate::output::print_json;
use crate::progress::{BarProgress, Mode};

/// Arguments of `kvtool check`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit codes: 0 healthy, 1 problems found, 2 the check could not run.")]
pub struct CheckArgs {}

/// Runs `kvtool check`.
pub fn run(_a: &CheckArgs, g: &Global) -> anyhow::Result<u8> {
    let db = g.open_for_reading()?;
    let progress = BarProgress::new(Mode::choose(g.quiet, false));
    let report = db.check(&progress).context("check could not run")?;
    db.close().context("cannot close the store")?;
    if g.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            eprintln!("{}:{}: {}", p.file.display(), p.offset, p.reason);
        }
        if !g.quiet || !report.problems.is_empty() {
            eprintln!(
                "kvtool: check: {} pages, {} log records, {} values checked; {}",
                report.pages_checked,
                report.log_records_checked,
                report.values_checked,
                match report.problems.len() {
                    0 => "no problems".to_string(),
                    1 => "1 problem".to_string(),
                    n => format!("{n} problems"),
                }
            );
        }
    }
    Ok(if report.problems.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_NOT_FOUND
    })
}
