//! Splitting one shard in two by the next hash bit, without rebuilding the others, and the automatic
//! policy that splits the largest shard while it is too far above the mean.

use tierkv::{Db, NoProgress, Options, RebalancePolicy, WriteBatch};

const KEYS: u64 = 120_000;

fn value(i: u64) -> Vec<u8> {
    format!("v{i:08}").repeat(5).into_bytes()
}

fn load(dir: &std::path::Path) -> Db {
    let db = Db::open(
        dir,
        Options {
            shards: 4,
            ..Options::default()
        },
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..KEYS {
        batch.put(format!("key-{i}"), value(i));
    }
    db.write_batch(&batch).unwrap();
    db
}

fn all_present(db: &Db) {
    for i in 0..KEYS {
        assert_eq!(
            db.get(format!("key-{i}").as_bytes()).unwrap(),
            Some(value(i)),
            "key-{i}"
        );
    }
}

#[test]
fn split_one_shard_leaves_the_others_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = load(dir.path());
    let before = db.stats();
    let (db, report) = db.split_shard(1, &NoProgress).unwrap();
    assert_eq!((report.old_shards, report.new_shards), (4, 5));
    assert_eq!(report.keys, before.per_shard[1].live_keys);
    let after = db.stats();
    assert_eq!(after.shards, 5);
    assert_eq!(after.live_keys, KEYS);
    // Untouched shards keep their keys; the halves share shard 1's.
    assert_eq!(after.per_shard[0].live_keys, before.per_shard[0].live_keys);
    assert_eq!(after.per_shard[3].live_keys, before.per_shard[2].live_keys);
    assert_eq!(
        after.per_shard[1].live_keys + after.per_shard[2].live_keys,
        before.per_shard[1].live_keys
    );
    all_present(&db);
    assert!(db.check(&NoProgress).unwrap().problems.is_empty());
    // Writes route to the halves; the old shard's directory is gone after a reopen.
    db.put(b"new", b"after split").unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.shards(), 5);
    assert_eq!(
        db.get(b"new").unwrap().as_deref(),
        Some(&b"after split"[..])
    );
    all_present(&db);
    let shard_dirs = std::fs::read_dir(dir.path().join("ssd/L0001"))
        .unwrap()
        .count();
    assert_eq!(shard_dirs, 5);
    // A rebalance returns to a uniform layout.
    let (db, _) = db.rebalance(8, &NoProgress).unwrap();
    assert_eq!(db.shards(), 8);
    all_present(&db);
}

#[test]
fn policy_splits_until_no_shard_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let db = load(dir.path());
    // Unbalance the store: split shard 0 twice (its quarters are a sixteenth of the keys each).
    let (db, _) = db.split_shard(0, &NoProgress).unwrap();
    let (db, _) = db.split_shard(0, &NoProgress).unwrap();
    let policy = RebalancePolicy { max_deviation: 0.2 };
    assert!(
        policy.choose(&db.stats()).is_some(),
        "the store should look unbalanced"
    );
    let db = {
        let path = db.path().to_path_buf();
        drop(db);
        Db::open(
            &path,
            Options {
                auto_split_deviation: 0.2,
                ..Options::default()
            },
        )
        .unwrap()
    };
    // Opening with the policy set applied it already; nothing is left for `maintain`.
    let stats = db.stats();
    assert!(
        stats.shards > 6,
        "the policy did not split at open ({} shards)",
        stats.shards
    );
    assert_eq!(
        policy.choose(&stats),
        None,
        "still unbalanced with {} shards",
        stats.shards
    );
    let (db, splits) = db.maintain(&NoProgress).unwrap();
    assert!(splits.is_empty());
    assert_eq!(stats.live_keys, KEYS);
    all_present(&db);
}
