//! `kvtool load`: streams records from files or stdin into the store in `WriteBatch`es, reports bad
//! records as `FILE:LINE[:COLUMN]: reason`, and either stops (committing and syncing everything before
//! the bad record, exit 3) or skips them. Parsing lives in `input/`; this file owns batching, syncing,
//! progress, error policy and the summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::{input_name, open_input};
use crate::config::Global;
use crate::engine::Db;
use crate::input::{self, Bad, Format, Item, ParseOptions};
use crate::output::{bytes, print_json, rate};
use crate::progress::{LoadProgress, Mode};
use crate::writer::BatchWriter;

/// Bad records listed one by one in `--on-error skip` mode; the rest are counted.
const LISTED_ERRORS: usize = 20;

/// What to do with a bad record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    /// Stop: commit and sync everything before the bad record, exit 3.
    Abort,
    /// Skip it, report it, and go on.
    Skip,
}

/// Arguments of `kvtool load`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Formats:
  tsv    key<TAB>value per line; a line with only a key deletes it. Split at the first tab.
         Every line must end with a newline; CR before it (CRLF) is an error.
  csv    RFC 4180 with a header row. Key: --key-column (default: first column). Value:
         --value-column, or the whole row as a JSON object.
  jsonl  one object per line; --key-field, --value-field. Non-string values are stored as JSON.
--escape: tsv reads C escapes (\\t \\n \\r \\0 \\\\ \\xNN); jsonl reads base64 keys and string values.

Examples:
  kvtool --db /srv/kv load data.tsv
  zcat dump.jsonl.gz | kvtool --db /srv/kv load --format jsonl --on-error skip
  kvtool --db /srv/kv load big.tsv --skip-records 4200000   # resume after an abort")]
pub struct LoadArgs {
    /// Input files; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Input format [default: from the file extension, else tsv].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Decode escapes: C-style in TSV, base64 in JSONL.
    #[arg(long)]
    pub escape: bool,
    /// CSV: the column holding the key [default: the first column].
    #[arg(long, value_name = "NAME")]
    pub key_column: Option<String>,
    /// CSV: the column holding the value [default: the whole row as JSON].
    #[arg(long, value_name = "NAME")]
    pub value_column: Option<String>,
    /// JSONL: the field holding the key.
    #[arg(long, value_name = "NAME", default_value = "key")]
    pub key_field: String,
    /// JSONL: the field holding the value.
    #[arg(long, value_name = "NAME", default_value = "value")]
    pub value_field: String,
    /// What to do with a bad record.
    #[arg(long, value_enum, default_value = "abort")]
    pub on_error: OnError,
    /// With --on-error skip: exit 3 if any record was bad.
    #[arg(long)]
    pub strict: bool,
    /// Skip the first N records (to resume an aborted load).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_records: u64,
    /// Also sync every N records (a load always syncs at the end).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sync_every: Option<u64>,
    /// Report progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Writer threads (0 = one per core, up to 4 and the shard count).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=64), hide = true)]
    pub writers: u32,
    /// Parse and validate only: report bad records without opening or writing the store.
    #[arg(long)]
    pub dry_run: bool,
    /// Records per write batch.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000), hide = true)]
    pub batch_size: u64,
}

/// The load summary (`--json` prints it).
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// Records put.
    put: u64,
    /// Records deleted.
    deleted: u64,
    /// Bad records skipped (`--on-error skip`).
    bad: u64,
    /// Records passed over by `--skip-records`.
    skipped_by_request: u64,
    /// Records committed and synced by this run (put + deleted).
    committed: u64,
    /// Input bytes read.
    bytes: u64,
    /// Wall time.
    seconds: f64,
    /// Committed records per second.
    records_per_second: f64,
    /// Input megabytes (10^6) per second.
    mb_per_second: f64,
    /// True when the load stopped at a bad record.
    aborted: bool,
    /// True with `--dry-run`: records were checked, not written (`committed` counts them anyway).
    dry_run: bool,
    /// The `--skip-records` value that resumes after fixing the bad record.
    resume_skip_records: Option<u64>,
    /// Bad records, `FILE:LINE[:COLUMN]: reason` (the first 20).
    errors: Vec<String>,
    /// Bad records not listed in `errors`.
    errors_not_listed: u64,
}

/// Runs `kvtool load`.
pub fn run(a: &LoadArgs, g: &Global) -> anyhow::Result<u8> {
    let paths = if a.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.files.clone()
    };
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        anyhow::bail!("stdin (-) can be given only once");
    }
    let mut total = Some(0u64);
    let mut plan = Vec::with_capacity(paths.len());
    for p in &paths {
        let format = a
            .format
            .or_else(|| Format::from_path(p))
            .unwrap_or(Format::Tsv);
        if p.as_os_str() == "-" {
            total = None;
        } else {
            let m = std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
            total = total.and_then(|t| m.is_file().then(|| t + m.len()));
        }
        plan.push((p.clone(), format));
    }
    let popts = ParseOptions {
        escape: a.escape,
        key_column: a.key_column.clone(),
        value_column: a.value_column.clone(),
        key_field: a.key_field.clone(),
        value_field: a.value_field.clone(),
    };

    let db = if a.dry_run { None } else { Some(g.open(true)?) };
    if a.writers > 1 && !a.writers.is_power_of_two() {
        anyhow::bail!("--writers must be a power of two, got {}", a.writers);
    }
    let threads = match (a.writers, &db) {
        (_, None) => 1,
        (0, Some(db)) => auto_writers(db),
        (n, Some(_)) => n as usize,
    };
    let start = Instant::now();
    let mut feed = Feed {
        a,
        quiet: g.quiet,
        progress: LoadProgress::new(Mode::choose(g.quiet, a.progress), total),
        s: Summary::default(),
        done_bytes: 0,
        abort_at: None,
        synced: (0, a.skip_records),
    };
    let written = std::thread::scope(|scope| {
        let mut w = BatchWriter::new(scope, db.as_ref(), threads, a.batch_size as usize);
        let fed = feed.run(&plan, &popts, &mut w);
        w.finish(fed)
    });
    feed.progress.closing();
    let closed = match db {
        None => written,
        Some(db) => {
            // Even when the load failed, make durable what was written.
            let synced = db.sync().context("cannot sync the store");
            written
                .and(synced)
                .and_then(|()| db.close().context("cannot close the store"))
        }
    };
    feed.progress.finish();
    if let Err(e) = closed {
        // Records after the last sync may or may not have reached the disk; those before it did.
        let (n, resume) = feed.synced;
        return Err(e.context(format!(
            "load failed: the {n} records before its last sync are committed (--sync-every N \
             bounds what a failure can lose; resume with --skip-records {resume})"
        )));
    }
    let mut s = feed.s;
    s.dry_run = a.dry_run;
    let done_bytes = feed.done_bytes;
    let abort_at = feed.abort_at;
    s.bytes = done_bytes;
    s.seconds = start.elapsed().as_secs_f64();
    s.records_per_second = rate(s.committed, s.seconds);
    s.mb_per_second = rate(s.bytes, s.seconds) / 1e6;
    if s.errors_not_listed > 0 && !g.quiet {
        eprintln!("... and {} more bad records", s.errors_not_listed);
    }
    if let Some(resume) = abort_at {
        s.aborted = true;
        s.resume_skip_records = Some(resume);
    }
    if g.json {
        print_json(&s)?;
    } else if !g.quiet || s.aborted {
        print_summary(&s);
    }
    Ok(if s.aborted || (a.strict && s.bad > 0) {
        crate::EXIT_BAD_INPUT
    } else {
        crate::EXIT_OK
    })
}

/// Writer threads: one per core (a power of two, at most 4), no more than the store has shards.
fn auto_writers(db: &Db) -> usize {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let shards = db.stats().shards.max(1) as usize;
    let n = cores.min(shards);
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// The reading side of a load: inputs in order, records counted, bad ones handled by policy.
struct Feed<'a> {
    a: &'a LoadArgs,
    quiet: bool,
    progress: LoadProgress,
    s: Summary,
    done_bytes: u64,
    /// The `--skip-records` value that resumes after the bad record that stopped the load.
    abort_at: Option<u64>,
    /// At the last `--sync-every` sync: records committed and synced by this run, and the
    /// `--skip-records` value that resumes after them.
    synced: (u64, u64),
}

impl Feed<'_> {
    fn run(
        &mut self,
        plan: &[(PathBuf, Format)],
        popts: &ParseOptions,
        w: &mut BatchWriter<'_, '_>,
    ) -> anyhow::Result<()> {
        let a = self.a;
        let mut index = 0u64; // records seen, good and bad, across inputs
        let mut since_sync = 0u64;
        for (path, format) in plan {
            let name = input_name(path);
            let mut src = input::open(*format, open_input(path)?, popts)?;
            loop {
                let rec = src
                    .next_record()
                    .with_context(|| format!("cannot read {name}"))?;
                match rec {
                    None => break,
                    Some(Ok(item)) => {
                        index += 1;
                        if index <= a.skip_records {
                            self.s.skipped_by_request += 1;
                            continue;
                        }
                        match item {
                            Item::Put(..) => self.s.put += 1,
                            Item::Delete(..) => self.s.deleted += 1,
                        }
                        if w.add(item)? {
                            self.s.committed = w.handed_over;
                            self.progress
                                .update(self.done_bytes + src.bytes_read(), w.handed_over);
                        }
                        since_sync += 1;
                        if a.sync_every.is_some_and(|n| since_sync >= n) {
                            since_sync = 0;
                            w.barrier()?;
                            if let Some(db) = w.db() {
                                db.sync().context("cannot sync the store")?;
                                self.synced = (w.handed_over, index);
                                self.progress.synced(w.handed_over, index);
                            }
                        }
                    }
                    Some(Err(bad)) => {
                        if !bad.fatal {
                            index += 1;
                            if index <= a.skip_records {
                                self.s.skipped_by_request += 1;
                                continue;
                            }
                        }
                        let line = bad.display(&name);
                        if a.on_error == OnError::Abort || bad.fatal {
                            eprintln!("{line}");
                            self.s.errors.push(line);
                            self.abort_at = Some(index - u64::from(!bad.fatal));
                            self.done_bytes += src.bytes_read();
                            self.s.committed = self.s.put + self.s.deleted;
                            return Ok(());
                        }
                        report_skipped(&mut self.s, &bad, &name, self.quiet);
                    }
                }
            }
            self.done_bytes += src.bytes_read();
        }
        self.s.committed = self.s.put + self.s.deleted;
        Ok(())
    }
}

fn report_skipped(s: &mut Summary, bad: &Bad, name: &str, quiet: bool) {
    s.bad += 1;
    if s.errors.len() < LISTED_ERRORS {
        let line = bad.display(name);
        if !quiet {
            eprintln!("{line} (skipped)");
        }
        s.errors.push(line);
    } else {
        s.errors_not_listed += 1;
    }
}

fn print_summary(s: &Summary) {
    eprintln!(
        "kvtool: load{}: {} records {} ({} put, {} deleted), {} bad, {} skipped by request; {} in {:.2} s ({:.0} records/s, {:.1} MB/s)",
        if s.dry_run { " --dry-run" } else { "" },
        s.committed,
        if s.dry_run { "valid, nothing written" } else { "committed" },
        s.put,
        s.deleted,
        s.bad,
        s.skipped_by_request,
        bytes(s.bytes),
        s.seconds,
        s.records_per_second,
        s.mb_per_second
    );
    if let Some(n) = s.resume_skip_records {
        eprintln!(
            "kvtool: load aborted on bad input; the {} records before it are committed and synced. Fix the record and resume with --skip-records {n}",
            s.committed
        );
    }
}
