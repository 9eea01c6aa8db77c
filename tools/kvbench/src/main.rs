//! The `kvbench` command line: `run` (the harness), `one` (one in-process engine on one workload, run
//! by `run` as a child process so the kernel measures it alone) and `report` (Markdown and SVG from
//! saved result files). Parses arguments and prints; the work is in the library.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kvbench::iobench::{self, IoBenchArgs};
use kvbench::orchestrate::{self, RunArgs};
use kvbench::result::RunFile;
use kvbench::workload::{Overrides, Plan};
use kvbench::{driver, engines, readers, report};

/// Benchmark tierkv against peer engines on the same workload, machine and run.
#[derive(Debug, Parser)]
#[command(name = "kvbench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct WorkloadArgs {
    /// Keys to load (overrides the spec's `keys`).
    #[arg(long)]
    keys: Option<u64>,
    /// Operations in the timed run phase (overrides the spec's `operations`).
    #[arg(long)]
    ops: Option<u64>,
    /// Fixed value size in bytes (overrides the spec's `value_size`).
    #[arg(long)]
    value_size: Option<u64>,
    /// Fixed key size in bytes (overrides the spec's `key_size`).
    #[arg(long)]
    key_size: Option<u64>,
    /// Client threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Keys per load batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// The store and timing flags shared by `kvbench io` and `kvbench readers` (both load their own store).
#[derive(Debug, Args)]
struct StoreBenchArgs {
    /// Directory for the store [default: a temporary directory under /var/tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keys to load.
    #[arg(long, default_value_t = 2_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Shards.
    #[arg(long, default_value_t = 8)]
    shards: u32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

impl StoreBenchArgs {
    /// The benchmark directory: `--dir`, or a new one under /var/tmp (not /tmp: it may be a tmpfs,
    /// where O_DIRECT fails and fio would measure RAM), removed when the guard drops.
    fn dir(&self) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
        match &self.dir {
            Some(d) => Ok((None, d.clone())),
            None => {
                let tmp = tempfile::tempdir_in("/var/tmp").context("creating a directory")?;
                let path = tmp.path().to_path_buf();
                Ok((Some(tmp), path))
            }
        }
    }

    /// Prints the report as JSON (`--json`) or Markdown.
    fn print<T: serde::Serialize>(&self, report: &T, markdown: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            writeln!(stdout, "{}", serde_json::to_string_pretty(report)?)?;
        } else {
            write!(stdout, "{markdown}")?;
        }
        Ok(())
    }
}

impl WorkloadArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            keys: self.keys,
            ops: self.ops,
            value_size: self.value_size,
            key_size: self.key_size,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run engines on workloads and report.
    Run {
        /// Workload spec(s), e.g. bench-data/workloads/get-uniform.json (repeatable).
        #[arg(long, required = true)]
        workload: Vec<PathBuf>,
        /// Engines, comma-separated: tierkv, redb, fjall, candystore (features), rocksdb, tkrzw.
        #[arg(long, value_delimiter = ',', default_value = "tierkv")]
        engines: Vec<String>,
        #[command(flatten)]
        w: WorkloadArgs,
        /// Repeats per engine and workload (the median is reported).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Directory for the stores (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the stores after the run.
        #[arg(long)]
        keep: bool,
        /// Print the result as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Save `<stamp>.json`, `.md` and the SVG charts in this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run one in-process engine on one workload and print its result as JSON (used by `run`).
    #[command(hide = true)]
    One {
        #[arg(long)]
        engine: String,
        #[arg(long)]
        workload: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        w: WorkloadArgs,
    },
    /// `get` throughput with 1 and N reader threads (writer and read-only handles), and a read-only
    /// handle's throughput beside a writer process that loads (docs/benchmarks.md, "Many readers").
    Readers {
        #[command(flatten)]
        s: StoreBenchArgs,
        /// Reader threads compared with one.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Repeats (medians reported).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Measure only the read-only handle idle and beside a writer (no thread scaling), e.g.
        /// to profile the reader.
        #[arg(long)]
        skip_scaling: bool,
    },
    /// The writer process of `kvbench readers` (loads keys from --first for --seconds).
    #[command(hide = true)]
    ReadersWriter {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        first: u64,
        #[arg(long)]
        value_size: usize,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        seed: u64,
    },
    /// Device reads per get and multi_get throughput per queue depth with direct I/O, beside fio's
    /// random 4 KiB read IOPS on the store's own data files (docs/benchmarks.md, "Device reads").
    Io {
        #[command(flatten)]
        s: StoreBenchArgs,
        /// Queue depths, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
        depths: Vec<usize>,
        /// Repeats per depth, engine and fio interleaved (medians reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// The engine's own index page cache in bytes (the kernel's is bypassed) [default: 0].
        #[arg(long, default_value_t = 0)]
        page_cache: u64,
        /// Gets per reads-per-get figure.
        #[arg(long, default_value_t = 20_000)]
        sample_gets: u64,
        /// Do not run fio (no device baseline, no ratios).
        #[arg(long)]
        no_fio: bool,
        /// Save `<stamp>-io.json` and `.md` in this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Render saved result files (merged in order) as Markdown, and SVG charts when `--svg` is given.
    Report {
        /// Result files written by `run --out`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write `ops.svg` and `latency.svg` with this path prefix.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

fn save(run: &RunFile, out: &std::path::Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut names: Vec<&str> = run.results.iter().map(|r| r.workload.as_str()).collect();
    names.dedup();
    let stamp = format!(
        "{}-{}",
        run.machine.started_unix,
        names.first().copied().unwrap_or("empty")
    );
    let base = out.join(&stamp);
    let json = base.with_extension("json");
    std::fs::write(&json, serde_json::to_string_pretty(run)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(base.with_extension("md"), report::markdown(run))?;
    std::fs::write(out.join(format!("{stamp}-ops.svg")), report::svg_ops(run))?;
    std::fs::write(
        out.join(format!("{stamp}-latency.svg")),
        report::svg_latency(run),
    )?;
    Ok(json)
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            std::process::exit(0);
        }
        eprintln!("kvbench: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Run {
            workload,
            engines,
            w,
            repeat,
            dir,
            keep,
            json,
            out,
        } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::tempdir().context("creating a temporary directory")?;
                    tmp.path().to_path_buf()
                }
            };
            let args = RunArgs {
                workloads: workload,
                engines,
                overrides: w.overrides(),
                threads: w.threads,
                batch: w.batch,
                repeat,
                dir,
                keep,
                seed: w.seed,
                command: std::env::args().collect::<Vec<_>>().join(" "),
            };
            let run = orchestrate::run(&args)?;
            if let Some(out) = out {
                let p = save(&run, &out)?;
                eprintln!("kvbench: saved {}", p.display());
            }
            let mut stdout = std::io::stdout().lock();
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&run)?)?;
            } else {
                write!(stdout, "{}", report::markdown(&run))?;
            }
            Ok(())
        }
        Cmd::One {
            engine,
            workload,
            dir,
            w,
        } => {
            let plan = Plan::resolve(&workload, &w.overrides(), w.seed)?;
            let e = engines::open(&engine, &dir, plan.keys)?;
            let r = driver::run(&engine, e, &plan, w.threads, w.batch)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Cmd::Io {
            s,
            depths,
            repeat,
            page_cache,
            sample_gets,
            no_fio,
            out,
        } => {
            let (_tmp, dir) = s.dir()?;
            let args = IoBenchArgs {
                dir,
                keys: s.keys,
                value_size: s.value_size,
                shards: s.shards,
                depths,
                seconds: s.seconds,
                repeat,
                page_cache_bytes: page_cache,
                sample_gets,
                no_fio,
                seed: s.seed,
            };
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let r = iobench::run(&args, command)?;
            let md = iobench::markdown(&r);
            if let Some(out) = out {
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let base = out.join(format!("{}-io", r.machine.started_unix));
                std::fs::write(
                    base.with_extension("json"),
                    serde_json::to_string_pretty(&r)? + "\n",
                )?;
                std::fs::write(base.with_extension("md"), &md)?;
                eprintln!("kvbench: saved {}.json", base.display());
            }
            s.print(&r, &md)
        }
        Cmd::Readers {
            s,
            threads,
            repeat,
            skip_scaling,
        } => {
            let (_tmp, dir) = s.dir()?;
            let args = readers::ReadersArgs {
                dir,
                keys: s.keys,
                value_size: s.value_size,
                shards: s.shards,
                threads,
                seconds: s.seconds,
                repeat,
                seed: s.seed,
                scaling: !skip_scaling,
            };
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let r = readers::run(&args, command)?;
            s.print(&r, &readers::markdown(&r))
        }
        Cmd::ReadersWriter {
            dir,
            first,
            value_size,
            seconds,
            seed,
        } => readers::writer_process(&dir, first, value_size, seconds, seed),
        Cmd::Report { files, svg } => {
            let mut all = RunFile::default();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let run: RunFile = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a kvbench result file", f.display()))?;
                if all.results.is_empty() {
                    all.machine = run.machine.clone();
                    all.command = run.command.clone();
                } else if all.command != run.command {
                    all.command = format!("{}; {}", all.command, run.command);
                }
                all.results.extend(run.results);
                all.skipped.extend(run.skipped);
            }
            if let Some(prefix) = svg {
                let p = prefix.display().to_string();
                std::fs::write(format!("{p}ops.svg"), report::svg_ops(&all))?;
                std::fs::write(format!("{p}latency.svg"), report::svg_latency(&all))?;
            }
            print!("{}", report::markdown(&all));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
