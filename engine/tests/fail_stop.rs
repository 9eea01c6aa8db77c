//! Fail-stop on I/O errors: an `EIO` or `ENOSPC` injected into the Nth write, resize or sync (once, or
//! from then on), for every N the workload reaches, must surface as an error naming the file from the
//! call that hit it — never retried until it passes (a retry that got past a once-only fault would
//! show as a call that hit it and returned `Ok`) — and poison the handle: every later put, delete,
//! batch, sync and flush fails with `Error::Poisoned`, while reads keep answering exactly what was
//! written before the failure (the failed call's own writes may or may not show) and none of the
//! refused writes. Dropping the poisoned handle and reopening on the real file system must give the
//! committed base plus a prefix of the later writes reaching at least the last acknowledged sync or
//! flush (nothing lost, no holes, nothing invented), which `check` passes and which takes writes again.
//!
//! An open that fails (every N of an open that replays synced, unflushed logs) leaves the store as it
//! was: the next open holds everything and `check` passes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tierkv::storage::fault::{FailRule, Fault, FaultStorage, OpKind};
use tierkv::storage::register_storage;
use tierkv::{Db, Error, NoProgress, Options, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> Options {
    Options {
        shards: 2,
        log_capacity_bytes: 8192,
        background_flush: false,
        ..Options::default()
    }
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}-")
        .repeat(1 + (i % 7) as usize * 9)
        .into_bytes()
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

/// The single writes of phase-two step `step` (`None` deletes), empty for the other operations.
fn writes(step: u32) -> Vec<(u32, Option<Vec<u8>>)> {
    let i = step % 300;
    match step % 9 {
        0..=3 => vec![(i, Some(value(i, 2)))],
        4 => vec![(i, None)],
        5 => (0..5)
            .map(|j| ((i + j) % 300, Some(value(i + j, 3))))
            .collect(),
        _ => Vec::new(),
    }
}

/// The operations after the committed base: writes, batches, syncs, flushes and a compaction.
fn phase_two(db: &Db, step: u32) -> tierkv::Result<()> {
    let w = writes(step);
    match step % 9 {
        0..=4 => match &w[0] {
            (k, Some(v)) => db.put(&key(*k), v),
            (k, None) => db.delete(&key(*k)),
        },
        5 => {
            let mut b = WriteBatch::new();
            for (k, v) in w {
                b.put(key(k), v.expect("batches only put"));
            }
            db.write_batch(&b)
        }
        6 => db.sync(),
        7 => db.flush(),
        _ if step % 27 == 8 => db.compact(&NoProgress).map(|_| ()),
        _ => db.sync(),
    }
}

const PHASE_TWO_STEPS: u32 = 120;

fn root() -> (tempfile::TempDir, PathBuf) {
    // A RAM file system when there is one: the failures are injected, the disk is not under test.
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm"),
        false => tempfile::tempdir(),
    }
    .unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

/// Loads the committed base: 300 keys, synced.
fn base(db: &Db) -> Model {
    let mut m = Model::new();
    for i in 0..300 {
        db.put(&key(i), &value(i, 1)).unwrap();
        m.insert(key(i), value(i, 1));
    }
    db.flush().unwrap();
    for i in (0..300).step_by(3) {
        db.put(&key(i), &value(i, 9)).unwrap();
        m.insert(key(i), value(i, 9));
    }
    db.sync().unwrap();
    m
}

fn is_injected(e: &Error, fault: Fault) -> bool {
    let text = e.to_string();
    match fault {
        Fault::Eio => text.contains("Input/output error"),
        Fault::Enospc => text.contains("No space left on device"),
    }
}

/// The store after the committed base and the first `n` single writes of `history`.
fn state(committed: &Model, history: &[(u32, Option<Vec<u8>>)], n: usize) -> Model {
    let mut m = committed.clone();
    for (k, v) in &history[..n] {
        match v {
            Some(v) => m.insert(key(*k), v.clone()),
            None => m.remove(&key(*k)),
        };
    }
    m
}

/// Every key's value in `db` (the 300 keys and those the poisoned calls tried to write).
fn observe(db: &Db, what: &str) -> Model {
    let mut m = Model::new();
    let others = [&b"after"[..], b"b"].map(<[u8]>::to_vec);
    for k in (0..300).map(key).chain(others) {
        if let Some(v) = db
            .get(&k)
            .unwrap_or_else(|e| panic!("{what}: get {}: {e}", String::from_utf8_lossy(&k)))
        {
            m.insert(k, v);
        }
    }
    m
}

/// Whether `got` is the store after the first `n` single writes of `history`, except that each key
/// the failed step wrote may hold its value before the step or one the step wrote (when `n` covers
/// everything applied, the failed step may have been applied in part: its outcome is unknown).
fn matches(
    got: &Model,
    committed: &Model,
    history: &[(u32, Option<Vec<u8>>)],
    n: usize,
    failed: &[(u32, Option<Vec<u8>>)],
) -> bool {
    let want = state(committed, history, n);
    want.keys().chain(got.keys()).all(|k| {
        let g = got.get(k);
        g == want.get(k)
            || (n == history.len() && failed.iter().any(|(i, v)| key(*i) == *k && v.as_ref() == g))
    })
}

/// One case: the `nth` operation of `kinds` after the base fails with `fault`. Returns whether the
/// failure was reached.
fn case(nth: u64, fault: Fault, persistent: bool, kinds: &[OpKind]) -> bool {
    let what = format!("{fault:?} at op {nth} of {kinds:?}, persistent {persistent}");
    let (_d, root) = root();
    let store = root.join("db");
    let committed;
    // Single writes of the phase-two steps that returned `Ok`, how many of them the last successful
    // sync or flush acknowledged, and the writes of the step that failed.
    let mut history: Vec<(u32, Option<Vec<u8>>)> = Vec::new();
    let mut acked = 0;
    let failed;
    {
        let fs = FaultStorage::new(&root);
        let _routing = register_storage(&root, fs.clone());
        let db = Db::open(&store, options()).unwrap();
        committed = base(&db);
        fs.fail(FailRule {
            nth,
            fault,
            persistent,
            kinds: kinds.to_vec(),
        });
        let mut failed_at = None;
        for step in 0..PHASE_TWO_STEPS {
            let before = fs.injected();
            let r = phase_two(&db, step);
            let hit = fs.injected() > before;
            match r {
                Ok(()) => {
                    assert!(
                        !hit,
                        "{what}: step {step} hit the failure and reported success"
                    );
                    history.extend(writes(step));
                    if matches!(step % 9, 6 | 7) || (step % 9 == 8 && step % 27 != 8) {
                        acked = history.len();
                    }
                }
                Err(e) => {
                    assert!(
                        hit,
                        "{what}: step {step} failed without an injected failure: {e}"
                    );
                    assert!(is_injected(&e, fault), "{what}: step {step}: {e}");
                    assert!(
                        e.to_string().contains(store.to_str().unwrap()),
                        "{what}: step {step}: the error names no file of the store: {e}"
                    );
                    failed_at = Some(step);
                    break;
                }
            }
        }
        let Some(step) = failed_at else {
            assert_eq!(fs.injected(), 0, "{what}: a failure was swallowed");
            return false;
        };
        failed = writes(step);
        // Poisoned: every write path fails, even with the fault gone.
        fs.clear_failures();
        for (name, r) in [
            ("put", db.put(b"after", b"x")),
            ("delete", db.delete(&key(1))),
            (
                "write_batch",
                db.write_batch(WriteBatch::new().put("b", "y")),
            ),
            ("sync", db.sync()),
            ("flush", db.flush()),
        ] {
            assert!(
                matches!(r, Err(Error::Poisoned(_))),
                "{what}: {name} after the failure at step {step}: {r:?}"
            );
        }
        // Reads still work and answer exactly what was written before the failure (the committed
        // base and every phase-two write that returned), none of the refused writes.
        let got = observe(&db, &what);
        assert!(
            matches(&got, &committed, &history, history.len(), &failed),
            "{what}: reads after the failure at step {step} differ from the writes before it"
        );
        drop(db);
    }
    // Reopen on the real file system: the committed base, then a prefix of the phase-two writes
    // reaching at least the last acknowledged sync or flush — nothing lost, no holes, nothing
    // invented, none of the writes refused after the failure.
    let db = Db::open(&store, options()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let got = observe(&db, &what);
    assert!(
        (acked..=history.len()).any(|n| matches(&got, &committed, &history, n, &failed)),
        "{what}: the reopened store is not the base plus a prefix of the {} writes that returned \
         reaching the {acked} acknowledged",
        history.len()
    );
    let report = db.check(&NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    db.put(b"after-reopen", b"ok").unwrap();
    db.sync().unwrap();
    assert_eq!(
        db.get(b"after-reopen").unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    db.close().unwrap();
    true
}

fn sweep(fault: Fault, persistent: bool, kinds: &[OpKind]) -> u64 {
    let mut reached = 0;
    for nth in 0.. {
        if !case(nth, fault, persistent, kinds) {
            break;
        }
        reached += 1;
    }
    assert!(
        reached >= 5,
        "{fault:?} {kinds:?}: only {reached} failure points"
    );
    reached
}

#[test]
fn eio_on_a_sync_poisons_and_is_never_retried() {
    eprintln!(
        "sync EIO once: {} cases",
        sweep(Fault::Eio, false, OpKind::SYNCS)
    );
}

#[test]
fn persistent_eio_on_syncs_poisons() {
    let n = sweep(Fault::Eio, true, OpKind::SYNCS);
    eprintln!("sync EIO persistent: {n} cases");
}

#[test]
fn enospc_on_writes_poisons() {
    let kinds = [OpKind::Write, OpKind::Resize];
    eprintln!(
        "write ENOSPC once: {} cases",
        sweep(Fault::Enospc, false, &kinds)
    );
}

#[test]
fn eio_on_any_operation_poisons() {
    eprintln!(
        "any-op EIO persistent: {} cases",
        sweep(Fault::Eio, true, OpKind::ALL)
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_failed_open_or_recovery_leaves_the_store_intact() {
    // A store whose logs hold synced records that were never flushed (the power was cut before
    // close), so that opening it replays them. Then `EIO` on the Nth operation of an open, for every
    // N the open reaches: the open fails, and the next open (without faults) holds everything.
    let (_d, root) = root();
    let image = root.join("image");
    let mut committed;
    {
        let fs = FaultStorage::new(&root);
        let _routing = register_storage(&root, fs.clone());
        let db = Db::open(&image, options()).unwrap();
        committed = base(&db);
        for i in 0..60 {
            let k = i * 7 % 300;
            db.put(&key(k), &value(k, 4)).unwrap();
            committed.insert(key(k), value(k, 4));
        }
        db.sync().unwrap();
        fs.crash_now();
        drop(db);
    }
    let mut failures = 0;
    for nth in 0..10_000 {
        let store = root.join(format!("open-{nth}"));
        copy_dir(&image, &store);
        let fs = FaultStorage::new(&root);
        let routing = register_storage(&root, fs.clone());
        fs.fail(FailRule {
            nth,
            fault: Fault::Eio,
            persistent: true,
            kinds: OpKind::ALL.to_vec(),
        });
        let r = Db::open(&store, options());
        let hit = fs.injected() > 0;
        let failed = r.is_err();
        if let Err(e) = &r {
            assert!(is_injected(e, Fault::Eio), "open {nth}: {e}");
            assert!(
                e.to_string().contains(store.to_str().unwrap()),
                "open {nth}: the error names no file of the store: {e}"
            );
        }
        fs.clear_failures();
        drop(r);
        drop(routing);
        if !hit {
            assert!(!failed, "open {nth} failed without a failure");
            break;
        }
        assert!(failed, "open {nth}: swallowed a failure");
        failures += 1;
        let what = format!("open after one that failed at op {nth}");
        let db = Db::open(&store, options()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(observe(&db, &what), committed, "{what}");
        let report = db.check(&NoProgress).unwrap();
        assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
        db.close().unwrap();
        std::fs::remove_dir_all(&store).unwrap();
    }
    assert!(failures >= 5, "only {failures} failure points in open");
    eprintln!("failed opens: {failures} cases");
}
