//! The in-process driver: runs one [`Plan`] on one [`Engine`] and times it. Runs inside the child
//! process `kvbench one` (see [`crate::orchestrate`]), so the kernel's per-process counters belong to
//! this engine alone.
//!
//! What is timed:
//! 1. **Load** — every key once, in a seeded random order, in batches of `batch` keys spread over the
//!    client threads, then one `sync`. For a load workload this is the timed phase (latency = batch
//!    time ÷ batch size, i.e. amortized per key); otherwise it is untimed setup (`load_ops_per_sec`).
//! 2. **Run** — `ops` operations from [`tiersim::workload::OpStream`], generated untimed in chunks and
//!    executed by the client threads (operation `i` of a chunk goes to thread `i mod T`); only the
//!    execution is timed, each operation on its own clock. A read-modify-write is one operation of two
//!    calls. The closing `sync` is not timed.

use std::time::Instant;

use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tiersim::workload::Op;

use crate::engines::Engine;
use crate::hist::Histogram;
use crate::result::BenchResult;
use crate::workload::{Plan, Values};

/// Engine calls generated (untimed) per chunk of the run phase (a scan of `scan_length` keys counts
/// `scan_length`), which bounds the harness's own memory.
const CHUNK: usize = 1 << 16;

/// Per-thread tallies of the run phase.
#[derive(Default)]
struct Tally {
    hist: Histogram,
    gets: u64,
    found: u64,
    user_bytes: u64,
}

fn exec(engine: &dyn Engine, values: &Values, group: &[Op], t: &mut Tally) -> Result<()> {
    for op in group {
        match op {
            Op::Get(k) | Op::GetMissing(k) => {
                t.gets += 1;
                t.found += engine.get(k)? as u64;
            }
            Op::Put(k, len) => {
                t.user_bytes += (k.len() + len) as u64;
                let salt = k.iter().fold(0u64, |a, &b| a.wrapping_mul(31) ^ b as u64);
                engine.put(k, values.get(*len, salt))?;
            }
            Op::Delete(k) => {
                t.user_bytes += k.len() as u64;
                engine.delete(k)?;
            }
        }
    }
    Ok(())
}

/// Runs `plan` on `engine` with `threads` client threads and load batches of `batch` keys. The
/// returned result lacks what only the parent can measure (bytes written, peak RSS, disk usage).
pub fn run(
    name: &str,
    engine: Box<dyn Engine>,
    plan: &Plan,
    threads: usize,
    batch: usize,
) -> Result<BenchResult> {
    let threads = threads.max(1);
    let batch = batch.max(1);
    let mut stream = plan.stream();
    let values = Values::new(plan.spec.value_size.max() as usize, plan.seed);
    let order = plan.load_order();

    // 1. Load.
    let per_thread = order.len().div_ceil(threads).max(1);
    let t0 = Instant::now();
    let mut load_tally = Tally::default();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = order
            .chunks(per_thread)
            .enumerate()
            .map(|(ti, ids)| {
                let (engine, stream, values, spec) = (&*engine, &stream, &values, &plan.spec);
                s.spawn(move || -> Result<Tally> {
                    let mut rng = SmallRng::seed_from_u64(plan.seed ^ ti as u64);
                    let mut t = Tally::default();
                    let mut keys = Vec::with_capacity(batch);
                    let mut lens = Vec::with_capacity(batch);
                    for ids in ids.chunks(batch) {
                        keys.clear();
                        lens.clear();
                        for &id in ids {
                            keys.push(stream.key(id));
                            lens.push(spec.value_size.sample(&mut rng) as usize);
                        }
                        let pairs: Vec<(&[u8], &[u8])> = keys
                            .iter()
                            .zip(&lens)
                            .zip(ids)
                            .map(|((k, &l), &id)| (k.as_slice(), values.get(l, id)))
                            .collect();
                        t.user_bytes += pairs
                            .iter()
                            .map(|p| (p.0.len() + p.1.len()) as u64)
                            .sum::<u64>();
                        let b0 = Instant::now();
                        engine.load_batch(&pairs)?;
                        let ns = b0.elapsed().as_nanos() as u64;
                        t.hist.record_n(ns / ids.len() as u64, ids.len() as u64);
                    }
                    Ok(t)
                })
            })
            .collect();
        for h in handles {
            let t = h
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
            load_tally.hist.merge(&t.hist);
            load_tally.user_bytes += t.user_bytes;
        }
        Ok(())
    })
    .with_context(|| format!("{name}: load"))?;
    engine
        .sync()
        .with_context(|| format!("{name}: sync after load"))?;
    let load_s = t0.elapsed().as_secs_f64();
    let load_rate = plan.keys as f64 / load_s.max(1e-9);

    let mut r = BenchResult {
        engine: name.to_string(),
        workload: plan.name().to_string(),
        keys: plan.keys,
        key_bytes: plan.spec.key_size.mean(),
        value_bytes: plan.spec.value_size.mean(),
        threads,
        notes: engine.notes(),
        ..Default::default()
    };
    let mut user_bytes = load_tally.user_bytes;
    let timed = if plan.load_is_timed() {
        r.ops = plan.keys;
        r.ops_per_sec = load_rate;
        load_tally.hist
    } else {
        r.load_ops_per_sec = Some(load_rate);
        // 2. Run.
        let mut hist = Histogram::default();
        let mut busy = 0.0;
        let mut left = plan.ops;
        while left > 0 {
            let per_op = if plan.spec.mix.scan > 0.0 {
                plan.spec.scan_length.max(1) as usize
            } else {
                2
            };
            let n = left.min((CHUNK / per_op).max(1) as u64) as usize;
            left -= n as u64;
            let chunk: Vec<Vec<Op>> = (0..n).map(|_| stream.next_ops()).collect();
            let c0 = Instant::now();
            let tallies = std::thread::scope(|s| -> Result<Vec<Tally>> {
                let handles: Vec<_> = (0..threads)
                    .map(|ti| {
                        let (engine, values, chunk) = (&*engine, &values, &chunk);
                        s.spawn(move || -> Result<Tally> {
                            let mut t = Tally::default();
                            for group in chunk.iter().skip(ti).step_by(threads) {
                                let o0 = Instant::now();
                                exec(engine, values, group, &mut t)?;
                                t.hist.record(o0.elapsed().as_nanos() as u64);
                            }
                            Ok(t)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
                    })
                    .collect()
            })
            .with_context(|| format!("{name}: run phase"))?;
            busy += c0.elapsed().as_secs_f64();
            for t in tallies {
                hist.merge(&t.hist);
                r.gets += t.gets;
                r.gets_found += t.found;
                user_bytes += t.user_bytes;
            }
        }
        engine
            .sync()
            .with_context(|| format!("{name}: sync after run"))?;
        r.ops = plan.ops;
        r.ops_per_sec = plan.ops as f64 / busy.max(1e-9);
        hist
    };
    r.p50_us = timed.quantile_us(0.5);
    r.p99_us = timed.quantile_us(0.99);
    r.p999_us = timed.quantile_us(0.999);
    r.user_bytes_written = user_bytes;
    r.dram_bytes_per_key = engine.dram_bytes_per_key();
    r.engine_counters = engine.counters();
    engine.close().with_context(|| format!("{name}: close"))?;
    r.repeats_ops_per_sec = vec![r.ops_per_sec];
    Ok(r)
}
