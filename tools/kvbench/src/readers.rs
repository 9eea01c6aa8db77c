//! `kvbench readers`: how `get` scales with reader threads, and what a working writer process costs
//! a read-only process, measured in one run on one store (docs/benchmarks.md, "Many readers").
//!
//! Loads `keys` keys and closes the store (everything flushed into the global tables), reads every key
//! once (so the files are in the page cache), then measures, repeat after repeat, interleaved:
//! - `get` throughput of uniform random present keys with 1 thread and with `threads` threads, on a
//!   writer handle (`Db::open`) and on a read-only handle (`Db::open_read_only`);
//! - a read-only handle's 1-thread throughput on the idle store, and while a writer process (this
//!   binary's hidden `readers-writer` command) loads new keys into the same store in batches, with
//!   logs small enough that it flushes several times a second — so the reader keeps reloading shards
//!   — and, as a control, while a writer process loads a copy of the store made after the initial
//!   load (the same work, no file shared with the reader);
//! - for comparison with the thread scaling, a pointer chase through 256 MiB with 1 and `threads`
//!   threads (dependent random loads that share nothing between threads): how far this machine
//!   scales memory-latency-bound work at all.
//!
//! Every value read is compared with the value written: a benchmark that returned wrong data would be
//! measuring something else. Figures are medians of the repeats; ratios are of medians taken in the
//! same run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tierkv::{Db, Options, ReadOnlyDb, WriteBatch};

use crate::measure;
use crate::result::Machine;
use crate::workload::Values;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ReadersArgs {
    /// Directory for the store.
    pub dir: PathBuf,
    /// Keys loaded before the measurements.
    pub keys: u64,
    /// Value size, bytes.
    pub value_size: usize,
    /// Shards.
    pub shards: u32,
    /// Reader threads of the scaling measurement (compared with one).
    pub threads: usize,
    /// Seconds per measurement.
    pub seconds: f64,
    /// Repeats (medians are reported).
    pub repeat: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Whether to measure thread scaling (else only the read-only handle idle and beside a writer).
    pub scaling: bool,
}

/// One handle kind's thread scaling.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    /// `"writer"` (`Db::open`), `"read-only"` (`Db::open_read_only`), or the machine control (a
    /// pointer chase: what the machine gives memory-latency-bound work that shares nothing, for
    /// comparison; its figures are steps, not gets).
    pub handle: String,
    /// Median gets/s with one thread.
    pub one_thread: f64,
    /// Median gets/s with `threads` threads.
    pub threads: f64,
    /// `threads / one_thread`.
    pub ratio: f64,
    /// Every repeat: (one thread, `threads` threads).
    pub repeats: Vec<(f64, f64)>,
    /// Median gets per second of the reader threads' own CPU time, one thread: what a get costs.
    pub one_thread_per_cpu_second: f64,
    /// The same with `threads` threads: lower than with one when threads slow each other down
    /// (shared cache lines, memory bandwidth), whatever share of the cores they got.
    pub threads_per_cpu_second: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct ReadersReport {
    /// The machine.
    pub machine: Machine,
    /// The command line.
    pub command: String,
    /// Keys loaded.
    pub keys: u64,
    /// Value size.
    pub value_size: usize,
    /// Shards.
    pub shards: u32,
    /// Threads of the scaling runs.
    pub thread_count: usize,
    /// Thread scaling per handle kind.
    pub scaling: Vec<Scaling>,
    /// Median gets/s of a read-only handle, one thread, idle store.
    pub read_only_idle: f64,
    /// Median gets/s of a read-only handle, one thread, while a writer process loads.
    pub read_only_busy: f64,
    /// `read_only_busy / read_only_idle`.
    pub busy_ratio: f64,
    /// Every repeat: (idle, busy).
    pub busy_repeats: Vec<(f64, f64)>,
    /// Median gets per second of the reader thread's own CPU time, idle store: what a get costs,
    /// apart from how much of a core the reader got.
    pub read_only_idle_per_cpu_second: f64,
    /// The same beside the writer process.
    pub read_only_busy_per_cpu_second: f64,
    /// Every repeat: (idle, busy) gets per CPU-second.
    pub cpu_repeats: Vec<(f64, f64)>,
    /// Every repeat: (idle, busy) minor page faults per get of the reader thread (first touches of
    /// pages of maps it made anew after following a flush).
    pub fault_repeats: Vec<(f64, f64)>,
    /// Keys the writer process put during the busy measurements (all repeats).
    pub writer_keys: u64,
    /// Shard reloads the read-only handle made during the busy measurements (it followed flushes).
    pub reader_reloads: u64,
    /// Median gets/s of the read-only handle while a writer process loads a copy of the store made
    /// after the initial load (the same work, but no file shared with the reader): what sharing the
    /// machine's cores and caches with that writer costs, apart from following its flushes.
    pub read_only_beside_copy: f64,
    /// `read_only_beside_copy / read_only_idle`.
    pub copy_ratio: f64,
    /// Median gets per CPU-second of the reader beside the writer of the copy.
    pub read_only_beside_copy_per_cpu_second: f64,
    /// Every repeat: (gets/s, gets per CPU-second) beside the writer of the copy.
    pub copy_repeats: Vec<(f64, f64)>,
}

/// Slots of the machine control's pointer chase: 64 Mi × 4 bytes = 256 MiB, about the size of a
/// 2 M-key store's files, far beyond the caches.
const CHASE_SLOTS: usize = 64 << 20;
/// The machine control's row in the scaling table.
const CHASE_NAME: &str = "machine control: pointer chase over 256 MiB";

/// A `get` on one of the handles measured.
type GetFn<'a> = dyn Fn(&[u8]) -> tierkv::Result<Option<Vec<u8>>> + Sync + 'a;

fn key(i: u64) -> Vec<u8> {
    let mut k = Vec::new();
    write_key(&mut k, i);
    k
}

/// Writes key `i` into `buf` (replacing what it held): the timed loops reuse one buffer, so they
/// measure gets, not the allocator (growing a fresh `String` per key cost 4 % of a reader thread's
/// time alone and 10 % beside a second thread, in glibc's `realloc`).
fn write_key(buf: &mut Vec<u8>, i: u64) {
    use std::io::Write;
    buf.clear();
    write!(buf, "key{i:013}").expect("writing to a Vec cannot fail");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn options(shards: u32) -> Options {
    Options {
        shards,
        // The busy writer flushes several times a second; reads of the loaded keys are unaffected.
        log_capacity_bytes: 4 << 20,
        ..Options::default()
    }
}

/// CPU time this thread has used, seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Minor page faults this thread has taken (first touches of mapped pages).
fn thread_minor_faults() -> u64 {
    // SAFETY: `getrusage` writes one `rusage` into the valid, exclusively borrowed `usage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as u64
}

/// What `threads` threads reading random loaded keys for `seconds` did, each value checked:
/// gets per second of wall time, gets per second of the readers' own CPU time, and minor page
/// faults per get.
fn get_rate(
    get: &GetFn,
    a: &ReadersArgs,
    values: &Values,
    threads: usize,
    seed: u64,
) -> Result<(f64, f64, f64)> {
    timed_threads(threads, a.seconds, &|t, stop| {
        let mut rng = SmallRng::seed_from_u64(seed ^ (t as u64 + 1) << 32);
        let mut k = Vec::with_capacity(32);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..256 {
                let i = rng.gen_range(0..a.keys);
                write_key(&mut k, i);
                let got = get(&k)?;
                ensure!(
                    got.as_deref() == Some(values.get(a.value_size, i)),
                    "wrong value for key {i}"
                );
            }
            n += 256;
        }
        Ok(n)
    })
}

/// The machine's own scaling, for comparison with the gets': steps of a pointer chase through one
/// random cycle over `cycle` (dependent random loads, memory-latency-bound like a get's page and
/// value reads, sharing nothing between threads but the cores' caches and memory). Each thread
/// starts at its own place. Steps per second, steps per CPU-second.
fn chase_rate(cycle: &[u32], seconds: f64, threads: usize, seed: u64) -> Result<(f64, f64, f64)> {
    timed_threads(threads, seconds, &|t, stop| {
        let mut at = ((seed ^ (t as u64).wrapping_mul(0x9E37_79B9)) % cycle.len() as u64) as u32;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..4096 {
                at = cycle[at as usize];
            }
            n += 4096;
        }
        std::hint::black_box(at);
        Ok(n)
    })
}

/// One random cycle through `len` slots (Sattolo's algorithm): following it from any slot visits
/// every slot once before returning.
fn random_cycle(len: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..len as u32).collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    for i in (1..len).rev() {
        order.swap(i, rng.gen_range(0..i));
    }
    let mut next = vec![0u32; len];
    for w in 0..len {
        next[order[w] as usize] = order[(w + 1) % len];
    }
    next
}

/// Runs `work(thread, stop)` on `threads` threads for `seconds` (each returns the operations it did
/// once `stop` is set): operations per second of wall time, per second of the threads' own CPU
/// time, and the threads' minor page faults per operation.
fn timed_threads(
    threads: usize,
    seconds: f64,
    work: &(dyn Fn(usize, &AtomicBool) -> Result<u64> + Sync),
) -> Result<(f64, f64, f64)> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let counts: Vec<Result<(u64, f64, u64)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || -> Result<(u64, f64, u64)> {
                    let cpu = thread_cpu_seconds();
                    let faults = thread_minor_faults();
                    let n = work(t, stop)?;
                    Ok((
                        n,
                        thread_cpu_seconds() - cpu,
                        thread_minor_faults() - faults,
                    ))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("reader thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (mut total, mut cpu, mut faults) = (0, 0.0, 0);
    for c in counts {
        let (n, seconds, f) = c?;
        total += n;
        cpu += seconds;
        faults += f;
    }
    Ok((
        total as f64 / elapsed,
        total as f64 / cpu,
        faults as f64 / total as f64,
    ))
}

fn load(store: &Path, a: &ReadersArgs, values: &Values) -> Result<()> {
    let db = Db::open(store, options(a.shards)).context("creating the store")?;
    let mut batch = WriteBatch::new();
    for i in 0..a.keys {
        batch.put(key(i), values.get(a.value_size, i).to_vec());
        if batch.len() == 1000 {
            db.write_batch(&batch)?;
            batch = WriteBatch::new();
        }
    }
    db.write_batch(&batch)?;
    db.close()?;
    Ok(())
}

/// The writer process of the busy measurement: loads new keys (beyond the first `keys`) into the
/// store in batches of 1000 for `seconds`, then closes; prints how many it put.
pub fn writer_process(
    store: &Path,
    keys: u64,
    value_size: usize,
    seconds: f64,
    seed: u64,
) -> Result<()> {
    let db = Db::open(store, options(1))?;
    let values = Values::new(value_size, seed);
    let started = Instant::now();
    let mut i = keys;
    while started.elapsed().as_secs_f64() < seconds {
        let mut batch = WriteBatch::new();
        for _ in 0..1000 {
            batch.put(key(i), values.get(value_size, i).to_vec());
            i += 1;
        }
        db.write_batch(&batch)?;
    }
    db.close()?;
    println!("{}", i - keys);
    Ok(())
}

fn spawn_writer(store: &Path, a: &ReadersArgs, first: u64) -> Result<Child> {
    Command::new(std::env::current_exe()?)
        .arg("readers-writer")
        .arg("--dir")
        .arg(store)
        .arg("--first")
        .arg(first.to_string())
        .arg("--value-size")
        .arg(a.value_size.to_string())
        .arg("--seconds")
        .arg((a.seconds + 1.0).to_string())
        .arg("--seed")
        .arg(a.seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the writer process")
}

/// Runs the benchmark.
pub fn run(a: &ReadersArgs, command: String) -> Result<ReadersReport> {
    ensure!(a.keys >= 1000, "--keys must be at least 1000");
    ensure!(
        a.repeat >= 1 && a.threads >= 2,
        "--repeat ≥ 1 and --threads ≥ 2"
    );
    let machine = measure::machine(&a.dir);
    let store = a.dir.join("tierkv-readers");
    if store.exists() {
        std::fs::remove_dir_all(&store)?;
    }
    let values = Values::new(a.value_size, a.seed);
    eprintln!("kvbench readers: loading {} keys", a.keys);
    load(&store, a, &values)?;
    // A copy for the control writer of the busy measurement (see `read_only_beside_copy`).
    let copy = a.dir.join("tierkv-readers-copy");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(&store)
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "copying the store to {}", copy.display());

    let mut scaling = Vec::new();
    if a.scaling {
        let db = Db::open(&store, options(a.shards))?;
        // Warm: every key once, so the files are in the page cache.
        for i in 0..a.keys {
            db.get(&key(i))?;
        }
        scaling.push(scale("writer", a, &|n, seed| {
            get_rate(&|k| db.get(k), a, &values, n, seed)
        })?);
        db.close()?;
    }
    let ro = ReadOnlyDb::open(&store)?;
    if a.scaling {
        scaling.push(scale("read-only", a, &|n, seed| {
            get_rate(&|k| ro.get(k), a, &values, n, seed)
        })?);
        let cycle = random_cycle(CHASE_SLOTS, a.seed);
        scaling.push(scale(CHASE_NAME, a, &|n, seed| {
            chase_rate(&cycle, a.seconds, n, seed)
        })?);
    } else {
        // Warm, as the scaling measurement would have.
        for i in 0..a.keys {
            ro.get(&key(i))?;
        }
    }

    // Idle against busy, interleaved. The writer adds keys past those already added.
    let mut busy_repeats: Vec<(f64, f64)> = Vec::new();
    let mut cpu_repeats = Vec::new();
    let mut fault_repeats = Vec::new();
    let mut writer_keys = 0u64;
    let reloads_before = ro.stats().read_only.map_or(0, |r| r.reloads);
    let mut other_repeats = Vec::new();
    let mut other_keys = 0u64;
    for r in 0..a.repeat {
        let seed = a.seed ^ ((r as u64 + 1) << 16) ^ 0xB05;
        let read = || get_rate(&|k| ro.get(k), a, &values, 1, seed);
        let (idle, idle_cpu, idle_faults) = read()?;
        let ((busy, busy_cpu, busy_faults), put) =
            beside_writer(&store, a, a.keys + writer_keys, &read)?;
        writer_keys += put;
        let ((other, other_cpu, _), put) = beside_writer(&copy, a, a.keys + other_keys, &read)?;
        other_keys += put;
        eprintln!(
            "kvbench readers: read-only idle {idle:.0}/s ({idle_cpu:.0} per CPU-second), beside a \
             writer {busy:.0}/s ({busy_cpu:.0} per CPU-second), beside a writer of a copy \
             {other:.0}/s ({other_cpu:.0} per CPU-second); minor faults per get {idle_faults:.3} → \
             {busy_faults:.3}"
        );
        busy_repeats.push((idle, busy));
        cpu_repeats.push((idle_cpu, busy_cpu));
        fault_repeats.push((idle_faults, busy_faults));
        other_repeats.push((other, other_cpu));
    }
    let reader_reloads = ro.stats().read_only.map_or(0, |r| r.reloads) - reloads_before;
    let mut idle: Vec<f64> = busy_repeats.iter().map(|r| r.0).collect();
    let mut busy: Vec<f64> = busy_repeats.iter().map(|r| r.1).collect();
    let (read_only_idle, read_only_busy) = (median(&mut idle), median(&mut busy));
    let mut idle_cpu: Vec<f64> = cpu_repeats.iter().map(|r| r.0).collect();
    let mut busy_cpu: Vec<f64> = cpu_repeats.iter().map(|r| r.1).collect();
    let (idle_per_cpu, busy_per_cpu) = (median(&mut idle_cpu), median(&mut busy_cpu));
    let mut other: Vec<f64> = other_repeats.iter().map(|r| r.0).collect();
    let mut other_cpu: Vec<f64> = other_repeats.iter().map(|r| r.1).collect();
    let (other, other_per_cpu) = (median(&mut other), median(&mut other_cpu));
    Ok(ReadersReport {
        machine,
        command,
        keys: a.keys,
        value_size: a.value_size,
        shards: a.shards,
        thread_count: a.threads,
        scaling,
        read_only_idle,
        read_only_busy,
        busy_ratio: read_only_busy / read_only_idle,
        busy_repeats,
        read_only_idle_per_cpu_second: idle_per_cpu,
        read_only_busy_per_cpu_second: busy_per_cpu,
        cpu_repeats,
        fault_repeats,
        writer_keys,
        reader_reloads,
        read_only_beside_copy: other,
        copy_ratio: other / read_only_idle,
        read_only_beside_copy_per_cpu_second: other_per_cpu,
        copy_repeats: other_repeats,
    })
}

/// The reader's `read()` while a writer process loads keys from `first` into `store`: what it
/// measured, and the keys the writer put.
fn beside_writer(
    store: &Path,
    a: &ReadersArgs,
    first: u64,
    read: &dyn Fn() -> Result<(f64, f64, f64)>,
) -> Result<((f64, f64, f64), u64)> {
    let writer = spawn_writer(store, a, first)?;
    // Let the writer open the store (recovery, the board) before the timed reads.
    std::thread::sleep(Duration::from_millis(300));
    let measured = read()?;
    let out = writer.wait_with_output()?;
    ensure!(out.status.success(), "the writer process failed");
    let put = String::from_utf8_lossy(&out.stdout).trim().parse::<u64>()?;
    Ok((measured, put))
}

/// Thread scaling of one thing measured: `rate(threads, seed)` with one thread and with
/// `a.threads`, interleaved, `a.repeat` times.
fn scale(
    handle: &str,
    a: &ReadersArgs,
    rate: &dyn Fn(usize, u64) -> Result<(f64, f64, f64)>,
) -> Result<Scaling> {
    let mut repeats = Vec::new();
    let (mut one_cpu, mut many_cpu) = (Vec::new(), Vec::new());
    for r in 0..a.repeat {
        let seed = a.seed ^ ((r as u64 + 1) << 8);
        let (one, one_per_cpu, _) = rate(1, seed)?;
        let (many, many_per_cpu, _) = rate(a.threads, seed)?;
        eprintln!(
            "kvbench readers: {handle}: 1 thread {one:.0}/s ({one_per_cpu:.0} per CPU-second), {} \
             threads {many:.0}/s ({many_per_cpu:.0} per CPU-second)",
            a.threads
        );
        repeats.push((one, many));
        one_cpu.push(one_per_cpu);
        many_cpu.push(many_per_cpu);
    }
    let mut one: Vec<f64> = repeats.iter().map(|r| r.0).collect();
    let mut many: Vec<f64> = repeats.iter().map(|r| r.1).collect();
    let (one_thread, threads) = (median(&mut one), median(&mut many));
    Ok(Scaling {
        handle: handle.to_string(),
        one_thread,
        threads,
        ratio: threads / one_thread,
        repeats,
        one_thread_per_cpu_second: median(&mut one_cpu),
        threads_per_cpu_second: median(&mut many_cpu),
    })
}

/// The report as Markdown.
pub fn markdown(r: &ReadersReport) -> String {
    let mut s = format!(
        "{} keys of {} B values, {} shards, median of {} repeats; machine: {} × {}, {}, commit {}.\n\n\
         Command: `{}`\n\n| handle | 1 thread gets/s | {} threads gets/s | ratio | gets per CPU-second, 1 → {} threads |\n|---|--:|--:|--:|--:|\n",
        r.keys,
        r.value_size,
        r.shards,
        r.busy_repeats.len(),
        r.machine.cores,
        r.machine.cpu,
        r.machine.kernel,
        r.machine.git_commit,
        r.command,
        r.thread_count,
        r.thread_count
    );
    for x in &r.scaling {
        s += &format!(
            "| {} | {:.0} | {:.0} | {:.2}× | {:.0} → {:.0} |\n",
            x.handle,
            x.one_thread,
            x.threads,
            x.ratio,
            x.one_thread_per_cpu_second,
            x.threads_per_cpu_second
        );
    }
    s += &format!(
        "\nRead-only handle, 1 thread: idle store {:.0} gets/s; beside a writer process loading \
         ({} keys put, {} shard reloads by the reader) {:.0} gets/s: **{:.0} %** of idle.\n",
        r.read_only_idle,
        r.writer_keys,
        r.reader_reloads,
        r.read_only_busy,
        r.busy_ratio * 100.0
    );
    s += &format!(
        "Per second of the reader thread's own CPU time: idle {:.0} gets, beside the writer {:.0} \
         gets ({:.0} %) — what a get costs, whatever share of a core the reader gets beside the \
         writer.\n",
        r.read_only_idle_per_cpu_second,
        r.read_only_busy_per_cpu_second,
        r.read_only_busy_per_cpu_second / r.read_only_idle_per_cpu_second * 100.0
    );
    s += &format!(
        "Control — beside a writer process loading a copy of the store (the same work, no file \
         shared with the reader): {:.0} gets/s, **{:.0} %** of idle; {:.0} gets per CPU-second \
         ({:.0} %).\n",
        r.read_only_beside_copy,
        r.copy_ratio * 100.0,
        r.read_only_beside_copy_per_cpu_second,
        r.read_only_beside_copy_per_cpu_second / r.read_only_idle_per_cpu_second * 100.0
    );
    s
}
