//! Crash at every sync point: a seeded random workload (put, delete, write_batch, sync, flush,
//! compact, rebalance, close and reopen) runs on the fault-injecting backend; a first run counts its
//! syncs, then the workload is rerun once per sync point with the power cut when that sync is issued.
//! Each crash is materialised in four ways (unsynced data dropped, kept, kept per random sector, last
//! write torn) and reopened with the real file system. The recovered store must equal the write
//! history cut at one point between the last acknowledged sync and the crash (a prefix: no holes,
//! nothing invented), and `check` must find nothing wrong.
//!
//! `TIERKV_CRASH_SEEDS` (default 20) sets the number of workloads, `TIERKV_CRASH_SEED_START` the first
//! seed (to spread a long run over processes); every case counted is one (workload, sync point,
//! crash mode) triple. The default run covers at least 10 000 cases (asserted);
//! `TIERKV_CRASH_PROGRESS=1` prints a line per workload (`tools/crash-points.sh` runs the long mode
//! over several processes and sums the cases). Debugging a failure:
//! `TIERKV_CRASH_ONLY_SYNC=k` runs only crash point `k`, `TIERKV_CRASH_VERBOSE=1` prints where each
//! run crashed and how the recovered store differs, `TIERKV_FAULT_TRACE=1` prints every sync.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::storage::fault::{CrashMode, FaultStorage};
use tierkv::storage::register_storage;
use tierkv::{Db, NoProgress, Options, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a workload.
#[derive(Clone, Debug)]
enum Step {
    /// Single writes and batches: `(key, Some(value))` puts, `(key, None)` deletes.
    Write {
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        batch: bool,
    },
    Sync,
    Flush,
    Compact,
    Rebalance(u32),
    Reopen,
}

fn workload(seed: u64) -> (u32, Vec<Step>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let shards = [1, 2, 4][rng.gen_range(0..3)];
    let keys = rng.gen_range(8..80u32);
    let mut steps = Vec::new();
    let mut n = 0u32;
    for _ in 0..rng.gen_range(20..45) {
        let mut one = |rng: &mut SmallRng| {
            n += 1;
            let key = format!("k{:03}", rng.gen_range(0..keys)).into_bytes();
            if rng.gen_bool(0.15) {
                (key, None)
            } else {
                let len = if rng.gen_bool(0.05) {
                    rng.gen_range(4000..9000)
                } else {
                    rng.gen_range(0..300)
                };
                // Unique per seed and write, so a value from anywhere else is detected.
                let tag = format!("s{seed}w{n}:");
                let value: Vec<u8> = tag.bytes().cycle().take(len.max(tag.len())).collect();
                (key, Some(value))
            }
        };
        let step = match rng.gen_range(0..100) {
            0..=44 => Step::Write {
                ops: vec![one(&mut rng)],
                batch: false,
            },
            45..=64 => Step::Write {
                ops: (0..rng.gen_range(2..12)).map(|_| one(&mut rng)).collect(),
                batch: true,
            },
            65..=76 => Step::Sync,
            77..=84 => Step::Flush,
            85..=89 => Step::Compact,
            90..=93 => Step::Rebalance([1, 2, 4][rng.gen_range(0..3)]),
            _ => Step::Reopen,
        };
        steps.push(step);
    }
    (shards, steps)
}

fn options(shards: u32) -> Options {
    Options {
        shards,
        // The smallest log: writes rotate and flush all the time.
        log_capacity_bytes: 4096,
        background_flush: false,
        ..Options::default()
    }
}

/// What a run got to.
struct Reached {
    /// Single writes applied (acknowledged or not).
    applied: usize,
    /// Single writes covered by the last acknowledged sync, flush or close.
    acked: usize,
    /// Single writes of the step the crash interrupted (0 when it was not a write).
    in_flight: usize,
    /// Syncs issued in the run.
    syncs: u64,
}

/// Runs the workload on the fault backend rooted at `root`, cutting the power at sync `crash_at`.
fn run(
    root: &Path,
    shards: u32,
    steps: &[Step],
    crash_at: Option<u64>,
) -> (Reached, std::sync::Arc<FaultStorage>) {
    let fs = FaultStorage::new(root);
    let _routing = register_storage(root, fs.clone());
    if let Some(n) = crash_at {
        fs.crash_at_sync(n);
    }
    let store = root.join("db");
    let mut r = Reached {
        applied: 0,
        acked: 0,
        in_flight: 0,
        syncs: 0,
    };
    let crashed = |e: tierkv::Error, what: &str| {
        assert!(fs.crashed(), "{what} failed without an injected crash: {e}");
    };
    let mut db = match Db::open(&store, options(shards)) {
        Ok(db) => Some(db),
        Err(e) => {
            crashed(e, "create");
            None
        }
    };
    for step in steps {
        let Some(d) = db.take() else { break };
        let result = match step {
            Step::Write { ops, batch } => {
                r.in_flight = ops.len();
                let res = if *batch {
                    let mut b = WriteBatch::new();
                    for (k, v) in ops {
                        match v {
                            Some(v) => b.put(k.clone(), v.clone()),
                            None => b.delete(k.clone()),
                        };
                    }
                    d.write_batch(&b)
                } else {
                    match &ops[0] {
                        (k, Some(v)) => d.put(k, v),
                        (k, None) => d.delete(k),
                    }
                };
                res.map(|()| {
                    r.applied += ops.len();
                    Some(d)
                })
            }
            Step::Sync => d.sync().map(|()| Some(d)),
            Step::Flush => d.flush().map(|()| Some(d)),
            Step::Compact => d.compact(&NoProgress).map(|_| Some(d)),
            Step::Rebalance(n) => d.rebalance(*n, &NoProgress).map(|(d, _)| Some(d)),
            Step::Reopen => match d.close() {
                // A clean close acknowledges every write, even if the reopen then crashes.
                Ok(()) => {
                    r.acked = r.applied;
                    Db::open(&store, options(shards)).map(Some)
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(next) => {
                if matches!(step, Step::Sync | Step::Flush | Step::Reopen) {
                    r.acked = r.applied;
                }
                r.in_flight = 0;
                db = next;
            }
            Err(e) => {
                if std::env::var_os("TIERKV_CRASH_VERBOSE").is_some() {
                    eprintln!("crash during {step:?} after {} syncs: {e}", fs.syncs());
                }
                crashed(e, &format!("{step:?}"));
                break;
            }
        }
    }
    if let Some(d) = db {
        match d.close() {
            Ok(()) => {
                r.acked = r.applied;
                r.in_flight = 0;
            }
            Err(e) => crashed(e, "close"),
        }
    }
    r.syncs = fs.syncs();
    (r, fs)
}

/// The model after each prefix of the single writes: `states[i]` holds the first `i`.
fn states(steps: &[Step]) -> Vec<Model> {
    let mut out = vec![Model::new()];
    let mut m = Model::new();
    for step in steps {
        if let Step::Write { ops, .. } = step {
            for (k, v) in ops {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
                out.push(m.clone());
            }
        }
    }
    out
}

fn temp_root() -> (tempfile::TempDir, PathBuf) {
    // A RAM file system when there is one: durability is modelled by the backend, not the disk.
    let dir = match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm"),
        false => tempfile::tempdir(),
    }
    .unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

/// Recovers the crash image in `image` and checks it against the allowed prefixes.
fn verify(image: &Path, shards: u32, allowed: &[Model], what: &str) {
    let db = Db::open(image.join("db"), options(shards))
        .unwrap_or_else(|e| panic!("{what}: reopen after the crash failed: {e}"));
    let mut got = Model::new();
    db.scan(|k, v| {
        got.insert(k.to_vec(), v.to_vec());
        true
    })
    .unwrap_or_else(|e| panic!("{what}: scan failed: {e}"));
    if !allowed.contains(&got) {
        let diff = |m: &Model| {
            let mut d: Vec<String> = m
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .map(|(k, v)| {
                    let show = |v: Option<&Vec<u8>>| {
                        v.map(|v| String::from_utf8_lossy(&v[..v.len().min(12)]).into_owned())
                    };
                    format!(
                        "{}: want {:?} got {:?}",
                        String::from_utf8_lossy(k),
                        show(Some(v)),
                        show(got.get(k))
                    )
                })
                .collect();
            d.extend(
                got.keys()
                    .filter(|k| !m.contains_key(*k))
                    .map(|k| format!("{}: not written", String::from_utf8_lossy(k))),
            );
            d
        };
        let closest = allowed.iter().map(diff).min_by_key(|d| d.len());
        if std::env::var_os("TIERKV_CRASH_VERBOSE").is_some() {
            eprintln!("closest allowed prefix differs in: {closest:#?}");
            let keep = std::env::temp_dir().join("tierkv-crash-failure");
            let _ = std::fs::remove_dir_all(&keep);
            let _ = std::process::Command::new("cp")
                .arg("-a")
                .arg(image)
                .arg(&keep)
                .status();
            eprintln!("crash image kept in {}", keep.display());
        }
        let closest = closest.map(|d| d.len());
        panic!(
            "{what}: recovered {} keys matching none of the {} allowed prefixes (closest differs in {closest:?} keys)",
            got.len(),
            allowed.len()
        );
    }
    for (k, v) in &got {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{what}: get");
    }
    let report = db.check(&NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    db.close().unwrap();
}

/// All crash points of one workload; returns the cases run.
fn crash_every_sync(seed: u64) -> u64 {
    let (shards, steps) = workload(seed);
    let all = states(&steps);
    let (_d, root) = temp_root();
    let (full, _) = run(&root, shards, &steps, None);
    assert_eq!(
        full.applied,
        all.len() - 1,
        "seed {seed}: the clean run failed"
    );
    let mut cases = 0;
    let only: Option<u64> = std::env::var("TIERKV_CRASH_ONLY_SYNC")
        .ok()
        .and_then(|s| s.parse().ok());
    for k in (1..=full.syncs).filter(|k| only.is_none_or(|o| o == *k)) {
        let (_d, root) = temp_root();
        let (r, fs) = run(&root, shards, &steps, Some(k));
        if !fs.crashed() {
            // Flushes of several shards run on parallel threads at close, so the last few sync
            // numbers can differ between runs; a run that never reached sync `k` is no case.
            assert!(
                k + 8 > full.syncs,
                "seed {seed}: sync {k} of {} never issued",
                full.syncs
            );
            continue;
        }
        let allowed = &all[r.acked..=r.applied + r.in_flight];
        for mode in CrashMode::ALL {
            let (_i, image) = temp_root();
            fs.write_crash_image(&image, mode, seed ^ (k << 8)).unwrap();
            verify(
                &image,
                shards,
                allowed,
                &format!("seed {seed}, crash at sync {k}/{}, {mode:?}", full.syncs),
            );
            cases += 1;
        }
    }
    cases
}

#[test]
fn crash_at_every_sync_point_recovers_a_prefix() {
    let asked: Option<u64> = std::env::var("TIERKV_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seeds = asked.unwrap_or(20);
    let start: u64 = std::env::var("TIERKV_CRASH_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let progress = std::env::var_os("TIERKV_CRASH_PROGRESS").is_some();
    let mut cases = 0u64;
    for seed in start..start + seeds {
        let n = crash_every_sync(seed);
        cases += n;
        if progress {
            eprintln!("crash_points: seed {seed}: {n} cases, {cases} so far");
        }
    }
    eprintln!("crash_points: {cases} cases over {seeds} workloads, all recovered a prefix");
    if asked.is_none() {
        assert!(
            cases >= 10_000,
            "the CI run must cover 10 000 crash cases, ran {cases}"
        );
    }
}
