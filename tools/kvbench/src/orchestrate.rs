//! `kvbench run`: resolves every workload first (a bad spec fails before any work), then runs each
//! engine on each workload `repeat` times, engines interleaved and their order rotated per repeat so
//! that the machine's noise falls on all of them alike. In-process engines run in a child
//! `kvbench one`; external ones through [`crate::external`]. The median repeat (by ops/s) is kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::engines;
use crate::external::{self, EXTERNAL};
use crate::measure::{dir_bytes, machine, run_measured};
use crate::result::{BenchResult, RunFile};
use crate::workload::{Overrides, Plan};

/// Everything `kvbench run` needs.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// Workload spec files.
    pub workloads: Vec<PathBuf>,
    /// Engine names.
    pub engines: Vec<String>,
    /// Spec overrides.
    pub overrides: Overrides,
    /// Client threads.
    pub threads: usize,
    /// Keys per load batch.
    pub batch: usize,
    /// Repeats per engine and workload.
    pub repeat: usize,
    /// Where the stores are created.
    pub dir: PathBuf,
    /// Keep the stores after the run.
    pub keep: bool,
    /// Seed.
    pub seed: u64,
    /// The command line, for the record.
    pub command: String,
}

/// Checks engine names before any work.
pub fn check_engines(names: &[String]) -> Result<()> {
    for n in names {
        if !(engines::IN_PROCESS.contains(&n.as_str()) || EXTERNAL.contains(&n.as_str())) {
            bail!(
                "unknown engine `{n}` (known: {}, {})",
                engines::IN_PROCESS.join(", "),
                EXTERNAL.join(", ")
            );
        }
        if engines::IN_PROCESS.contains(&n.as_str()) && !engines::available().contains(&n.as_str())
        {
            bail!("engine `{n}` is not compiled into this kvbench: rebuild with `--features {n}`");
        }
    }
    Ok(())
}

fn run_child(a: &RunArgs, plan: &Plan, engine: &str, dir: &Path) -> Result<BenchResult> {
    let exe = std::env::current_exe().context("locating the kvbench binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("one")
        .arg("--engine")
        .arg(engine)
        .arg("--workload")
        .arg(&plan.path)
        .arg("--dir")
        .arg(dir)
        .arg("--threads")
        .arg(a.threads.to_string())
        .arg("--batch")
        .arg(a.batch.to_string())
        .arg("--seed")
        .arg(a.seed.to_string());
    let o = &a.overrides;
    for (flag, v) in [
        ("--keys", o.keys),
        ("--ops", o.ops),
        ("--value-size", o.value_size),
        ("--key-size", o.key_size),
    ] {
        if let Some(v) = v {
            cmd.arg(flag).arg(v.to_string());
        }
    }
    let m = run_measured(&mut cmd)?;
    if m.code != Some(0) {
        bail!("{}", m.stderr.trim());
    }
    let line = m.stdout.lines().last().unwrap_or_default();
    let mut r: BenchResult = serde_json::from_str(line)
        .with_context(|| format!("{engine}: unreadable result line `{line}`"))?;
    r.bytes_written = m.bytes_written;
    r.peak_rss_bytes = m.peak_rss_bytes;
    r.disk_bytes = dir_bytes(dir);
    Ok(r)
}

fn finish(r: &mut BenchResult) {
    let user = r.user_bytes_written.max(1) as f64;
    r.write_amplification = r.bytes_written as f64 / user;
    if let Some(c) = r.engine_counters.as_mut().and_then(|c| c.as_object_mut()) {
        if let Some(w) = c.get("written_bytes").and_then(|w| w.as_object()) {
            let per: serde_json::Map<String, serde_json::Value> = w
                .iter()
                .map(|(k, v)| (k.clone(), (v.as_f64().unwrap_or(0.0) / user).into()))
                .collect();
            c.insert("write_amplification_per_tier".into(), per.into());
        }
    }
}

/// Runs one engine on one plan once.
pub fn run_once(a: &RunArgs, plan: &Plan, engine: &str, rep: usize) -> Result<BenchResult> {
    let dir = a.dir.join(format!("{engine}-{}-{rep}", plan.name()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let r = match engine {
        "rocksdb" => external::run_rocksdb(plan, &dir, a.threads),
        "tkrzw" => external::run_tkrzw(plan, &dir, a.threads),
        _ => run_child(a, plan, engine, &dir),
    };
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut r = r?;
    finish(&mut r);
    Ok(r)
}

/// The whole run.
pub fn run(a: &RunArgs) -> Result<RunFile> {
    check_engines(&a.engines)?;
    let plans: Vec<Plan> = a
        .workloads
        .iter()
        .map(|p| Plan::resolve(p, &a.overrides, a.seed))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let mut out = RunFile {
        machine: machine(&a.dir),
        command: a.command.clone(),
        ..Default::default()
    };
    for plan in &plans {
        let mut runs: Vec<Vec<BenchResult>> = vec![Vec::new(); a.engines.len()];
        let mut failed = vec![false; a.engines.len()];
        for rep in 0..a.repeat.max(1) {
            for k in 0..a.engines.len() {
                let i = (k + rep) % a.engines.len();
                if failed[i] {
                    continue;
                }
                let engine = &a.engines[i];
                eprintln!(
                    "kvbench: {} on {} (repeat {})",
                    engine,
                    plan.name(),
                    rep + 1
                );
                match run_once(a, plan, engine, rep) {
                    Ok(r) => {
                        eprintln!("kvbench:   {:.0} ops/s", r.ops_per_sec);
                        runs[i].push(r);
                    }
                    Err(e) => {
                        eprintln!("kvbench:   skipped: {e:#}");
                        out.skipped
                            .push(format!("{engine} on {}: {e:#}", plan.name()));
                        failed[i] = true;
                    }
                }
            }
        }
        for mut rs in runs.into_iter().filter(|r| !r.is_empty()) {
            let all: Vec<f64> = rs.iter().map(|r| r.ops_per_sec).collect();
            rs.sort_by(|x, y| x.ops_per_sec.total_cmp(&y.ops_per_sec));
            let mut m = rs.swap_remove(rs.len() / 2);
            m.repeats_ops_per_sec = all;
            out.results.push(m);
        }
    }
    Ok(out)
}
