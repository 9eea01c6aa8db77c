//! A real process-kill test: a child process writes (puts, deletes, batches) with a tiny log so flushes
//! run all the time, reports every completed `sync` on stdout, and is killed with SIGKILL at a random
//! moment. The parent reopens the store and checks that it equals the write history cut at some point
//! at or after the last acknowledged sync: nothing synced is lost, nothing is invented, no holes.
//! `TIERKV_KILL_CYCLES` sets the cycle count (default 24).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tierkv::{Db, Options, WriteBatch};

const KEYS: u64 = 1500;
/// The child writes until it is killed; this only bounds a child that is never killed.
const MAX_OPS: u64 = 50_000_000;

/// Operation `i` of the deterministic history: `(key, Some(value))` for a put, `(key, None)` for a delete.
fn op(i: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let key = format!("key-{:05}", h % KEYS).into_bytes();
    if h % 11 == 3 {
        (key, None)
    } else {
        let len = 1 + (h >> 20) % 300;
        (
            key,
            Some(format!("v{i}-").repeat(len as usize / 8 + 1).into_bytes()),
        )
    }
}

fn options() -> Options {
    Options {
        shards: 4,
        log_capacity_bytes: 64 << 10,
        ..Options::default()
    }
}

/// The child: applies the history in batches of random size, syncing every few batches.
#[test]
#[ignore = "run by kill_minus_nine_keeps_every_synced_write as a child process"]
fn child_writer() {
    let dir = std::env::var("TIERKV_KILL_DIR").expect("child needs TIERKV_KILL_DIR");
    let seed: u64 = std::env::var("TIERKV_KILL_SEED").unwrap().parse().unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut db = Db::open(&dir, options()).unwrap();
    let start: u64 = std::fs::read_to_string(format!("{dir}/next-op"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let mut i = start;
    while i < MAX_OPS {
        let n = rng.gen_range(1..200);
        println!("issued {}", i + n);
        if rng.gen_bool(0.3) {
            let mut batch = WriteBatch::new();
            for j in i..(i + n).min(MAX_OPS) {
                match op(j) {
                    (k, Some(v)) => batch.put(k, v),
                    (k, None) => batch.delete(k),
                };
            }
            db.write_batch(&batch).unwrap();
        } else {
            for j in i..(i + n).min(MAX_OPS) {
                match op(j) {
                    (k, Some(v)) => db.put(&k, &v).unwrap(),
                    (k, None) => db.delete(&k).unwrap(),
                }
            }
        }
        i = (i + n).min(MAX_OPS);
        if rng.gen_bool(0.2) {
            db.sync().unwrap();
            println!("synced {i}");
        }
        if rng.gen_bool(0.01) {
            db.flush().unwrap();
        }
        if rng.gen_bool(0.01) {
            // A crash may also land in the middle of a compaction...
            db.compact_shard(rng.gen_range(0..db.shards()), &tierkv::NoProgress)
                .unwrap();
        }
        if rng.gen_bool(0.01) {
            // ... or of a rebalance (the store must come back as the old or the new layout).
            let target = if db.shards() == 4 { 8 } else { 4 };
            println!("rebalancing {target}");
            db = db.rebalance(target, &tierkv::NoProgress).unwrap().0;
        }
    }
    db.sync().unwrap();
    println!("synced {i}");
}

fn read_all(db: &Db) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut m = HashMap::new();
    db.scan(|k, v| {
        m.insert(k.to_vec(), v.to_vec());
        true
    })
    .unwrap();
    m
}

/// Finds a prefix length in `[from, to]` whose state equals `found`, given the state at `from`.
fn matching_prefix(
    mut model: HashMap<Vec<u8>, Vec<u8>>,
    from: u64,
    to: u64,
    found: &HashMap<Vec<u8>, Vec<u8>>,
) -> Option<u64> {
    let mut mismatches = model
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(*v))
        .count()
        + found.keys().filter(|k| !model.contains_key(*k)).count();
    for p in from..=to {
        if mismatches == 0 {
            return Some(p);
        }
        if p == to {
            break;
        }
        let (k, v) = op(p);
        let before_ok = model.get(&k) == found.get(&k);
        match v {
            Some(v) => model.insert(k.clone(), v),
            None => model.remove(&k),
        };
        let after_ok = model.get(&k) == found.get(&k);
        match (before_ok, after_ok) {
            (true, false) => mismatches += 1,
            (false, true) => mismatches -= 1,
            _ => {}
        }
    }
    None
}

/// Takes the child's reports so far: `(true, n)` synced through op `n`, `(false, n)` issued through
/// op `n`, `(false, u64::MAX)` a rebalance started.
fn drain(
    rx: &std::sync::mpsc::Receiver<(bool, u64)>,
    acknowledged: &mut u64,
    issued: &mut u64,
    rebalances: &mut u32,
) {
    while let Ok((synced, n)) = rx.try_recv() {
        if n == u64::MAX {
            *rebalances += 1;
            continue;
        }
        if synced {
            *acknowledged = (*acknowledged).max(n);
        }
        *issued = (*issued).max(n);
    }
}

fn state_after(n: u64) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut m = HashMap::new();
    for i in 0..n {
        match op(i) {
            (k, Some(v)) => m.insert(k, v),
            (k, None) => m.remove(&k),
        };
    }
    m
}

#[test]
fn kill_minus_nine_keeps_every_synced_write() {
    let cycles: u64 = std::env::var("TIERKV_KILL_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut rng = SmallRng::seed_from_u64(0xC0FFEE);
    let mut acknowledged = 0u64;
    let mut issued = 0u64;
    let mut rebalances = 0u32;
    let mut killed_mid_run = 0;
    for cycle in 0..cycles {
        // The child resumes the history where the recovered store ends.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TIERKV_KILL_DIR", &path)
            .env("TIERKV_KILL_SEED", (cycle * 7919).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness prints "test child_writer ... " before the first line of the child's
                // own output, on the same line: look for the child's words anywhere in the line.
                let line = ["synced ", "rebalancing ", "issued "]
                    .iter()
                    .filter_map(|w| line.find(w).map(|at| &line[at..]))
                    .next()
                    .unwrap_or("");
                if let Some(n) = line.strip_prefix("synced ") {
                    let _ = tx.send((true, n.parse::<u64>().unwrap()));
                } else if line.starts_with("rebalancing ") {
                    let _ = tx.send((false, u64::MAX));
                } else if let Some(n) = line.strip_prefix("issued ") {
                    let _ = tx.send((false, n.parse::<u64>().unwrap()));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(50..700));
        while Instant::now() < deadline {
            drain(&rx, &mut acknowledged, &mut issued, &mut rebalances);
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed_mid_run += (!status.success()) as u32;
        reader.join().unwrap();
        drain(&rx, &mut acknowledged, &mut issued, &mut rebalances);

        let db = Db::open(&path, options()).unwrap();
        let found = read_all(&db);
        let prefix = matching_prefix(state_after(acknowledged), acknowledged, issued, &found)
            .unwrap_or_else(|| {
                // Diagnose: the prefix with the fewest differences, and what differs there.
                let mut best = (usize::MAX, 0u64);
                let mut model = state_after(acknowledged);
                for p in acknowledged..=issued {
                    let diff = model.iter().filter(|(k, v)| found.get(*k) != Some(*v)).count()
                        + found.keys().filter(|k| !model.contains_key(*k)).count();
                    if diff < best.0 {
                        best = (diff, p);
                    }
                    match op(p) {
                        (k, Some(v)) => model.insert(k, v),
                        (k, None) => model.remove(&k),
                    };
                }
                let model = state_after(best.1);
                eprintln!("closest prefix {} with {} differences", best.1, best.0);
                for (k, v) in model.iter().filter(|(k, v)| found.get(*k) != Some(*v)).take(5) {
                    let ops: Vec<u64> = (0..best.1 + 2000).filter(|&i| op(i).0 == *k).collect();
                    eprintln!("  {:?}: want {:?} found {:?} ops {:?}", String::from_utf8_lossy(k), String::from_utf8_lossy(&v[..v.len().min(8)]), found.get(k).map(|f| String::from_utf8_lossy(&f[..f.len().min(8)]).to_string()), &ops[ops.len().saturating_sub(4)..]);
                }
                for k in found.keys().filter(|k| !model.contains_key(*k)).take(5) {
                    let ops: Vec<u64> = (0..best.1 + 2000).filter(|&i| op(i).0 == *k).collect();
                    eprintln!("  extra {:?} found {:?} ops {:?}", String::from_utf8_lossy(k), String::from_utf8_lossy(&found[k][..8.min(found[k].len())]), &ops[ops.len().saturating_sub(4)..]);
                }
                panic!("cycle {cycle}: recovered store is no prefix at or after the acknowledged {acknowledged} ops")
            });
        for (k, v) in found.iter().take(200) {
            assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
        }
        let report = db.check(&tierkv::NoProgress).unwrap();
        assert!(
            report.problems.is_empty(),
            "cycle {cycle}: {:?}",
            report.problems
        );
        drop(db);
        if std::env::var_os("TIERKV_KILL_VERBOSE").is_some() {
            eprintln!("cycle {cycle}: acknowledged {acknowledged}, issued {issued}, recovered prefix {prefix}");
        }
        // Continue the history from the recovered prefix.
        std::fs::write(path.join("next-op"), prefix.to_string()).unwrap();
        acknowledged = prefix;
        issued = prefix;
    }
    assert!(
        killed_mid_run > cycles as u32 / 2,
        "the child should mostly be killed mid-run"
    );
    assert!(acknowledged > 0, "the children never synced anything");
    assert!(rebalances > 0, "no child got to rebalance");
    eprintln!("{cycles} kill cycles, {rebalances} rebalances started, {acknowledged} ops in the final history");
}
