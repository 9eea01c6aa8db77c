//! Fail-stop on I/O errors: an `EIO` or `ENOSPC` injected into the Nth write, resize or sync (once, or
//! from then on) must surface as an error from the call that hit it — never retried until it passes —
//! and poison the handle: every later write, sync and flush fails with `Error::Poisoned`, while reads
//! of data committed before keep returning exact values. Dropping the poisoned handle and reopening
//! on the real file system must give a store holding everything committed before the failure that
//! `check` passes and that takes writes again.

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

/// One case: the `nth` operation of `kinds` after the base fails with `fault`. Returns whether the
/// failure was reached.
fn case(nth: u64, fault: Fault, persistent: bool, kinds: &[OpKind]) -> bool {
    let what = format!("{fault:?} at op {nth} of {kinds:?}, persistent {persistent}");
    let (_d, root) = root();
    let store = root.join("db");
    let committed;
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
                Ok(()) => assert!(
                    !hit,
                    "{what}: step {step} hit the failure and reported success"
                ),
                Err(e) => {
                    assert!(
                        hit,
                        "{what}: step {step} failed without an injected failure: {e}"
                    );
                    assert!(is_injected(&e, fault), "{what}: step {step}: {e}");
                    failed_at = Some(step);
                    break;
                }
            }
        }
        let Some(step) = failed_at else {
            assert_eq!(fs.injected(), 0, "{what}: a failure was swallowed");
            return false;
        };
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
        // Reads of committed data still work; keys phase two did not touch read exactly.
        for i in (1..300).step_by(3) {
            // The failed step itself may have been applied in memory: its outcome is unknown.
            if (0..=step).all(|s| !touches(s, i)) {
                assert_eq!(
                    db.get(&key(i)).unwrap().as_ref(),
                    committed.get(&key(i)),
                    "{what}: committed key {i}"
                );
            }
        }
        drop(db);
    }
    // Reopen on the real file system: everything committed before phase two is there, unless
    // phase two overwrote it (its values are then one of those it wrote).
    let db = Db::open(&store, options()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    for (k, v) in &committed {
        let got = db.get(k).unwrap();
        let i: u32 = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
        if got.as_ref() != Some(v) {
            let ok = (0..PHASE_TWO_STEPS)
                .flat_map(writes)
                .any(|(k, w)| k == i && w == got);
            assert!(
                ok,
                "{what}: committed key {i} came back as {:?}",
                got.map(|g| String::from_utf8_lossy(&g).into_owned())
            );
        }
    }
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

/// Whether phase-two step `s` writes key `i`.
fn touches(s: u32, i: u32) -> bool {
    writes(s).iter().any(|(k, _)| *k == i)
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

#[test]
fn reads_survive_a_failed_open() {
    // A failure while opening leaves nothing half-done: the next open works.
    let (_d, root) = root();
    let store = root.join("db");
    {
        let db = Db::open(&store, options()).unwrap();
        base(&db);
        db.close().unwrap();
    }
    for nth in 0..6 {
        let fs = FaultStorage::new(&root);
        let routing = register_storage(&root, fs.clone());
        fs.fail(FailRule {
            nth,
            fault: Fault::Eio,
            persistent: true,
            kinds: OpKind::ALL.to_vec(),
        });
        let r = Db::open(&store, options());
        let failed = r.is_err();
        drop(r);
        drop(routing);
        assert!(
            failed || fs.injected() == 0,
            "open {nth}: swallowed a failure"
        );
        let db = Db::open(&store, options()).unwrap();
        assert_eq!(db.get(&key(3)).unwrap(), Some(value(3, 9)));
        db.close().unwrap();
    }
}
