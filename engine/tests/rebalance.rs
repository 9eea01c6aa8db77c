//! Rebalancing rebuilds every shard into a new shard count: every key stays readable with its value,
//! `check` passes, the per-shard counts follow the new layout, the old layout's files are gone, and
//! the store reopens as the new layout. `TIERKV_REBALANCE_KEYS` sets the key count (default 200 000).

use tierkv::{Db, NoProgress, Options, WriteBatch};

fn value(i: u64) -> Vec<u8> {
    format!("value-{i:012}-").repeat(6).into_bytes()
}

#[test]
fn rebalance_from_4_to_16_shards_keeps_every_key() {
    let keys: u64 = std::env::var("TIERKV_REBALANCE_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            shards: 4,
            log_capacity_bytes: 8 << 20,
            ..Options::default()
        },
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..keys {
        batch.put(format!("key-{i}"), value(i));
        if batch.len() == 1000 {
            db.write_batch(&batch).unwrap();
            batch.clear();
        }
    }
    db.write_batch(&batch).unwrap();
    // Some keys stay in the log until the rebalance flushes them.
    db.delete(b"key-0").unwrap();
    let before = db.stats();
    let (db, report) = db.rebalance(16, &NoProgress).unwrap();
    eprintln!(
        "rebalance 4 -> 16 of {keys} keys: {:.2} s, {} bytes written, deviation {:.3} -> {:.3}",
        report.seconds,
        report.bytes_written,
        report.max_deviation_before,
        report.max_deviation_after
    );
    assert_eq!((report.old_shards, report.new_shards), (4, 16));
    assert_eq!(report.keys, keys - 1);
    assert_eq!(before.live_keys, keys - 1);
    let after = db.stats();
    assert_eq!(after.shards, 16);
    assert_eq!(after.live_keys, keys - 1);
    assert!(
        after.shard_key_max_deviation < 0.1,
        "{}",
        after.shard_key_max_deviation
    );
    assert_eq!(db.get(b"key-0").unwrap(), None);
    for i in 1..keys {
        assert_eq!(
            db.get(format!("key-{i}").as_bytes()).unwrap(),
            Some(value(i)),
            "key-{i}"
        );
    }
    assert!(db.check(&NoProgress).unwrap().problems.is_empty());
    // Only the new layout is left on disk.
    let layouts: Vec<String> = std::fs::read_dir(dir.path().join("ssd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(layouts, vec!["L0002".to_string()]);
    // Writes go on in the new layout, and a reopen (asking for 4 shards) keeps the stored 16.
    db.put(b"after", b"rebalance").unwrap();
    drop(db);
    let db = Db::open(
        dir.path(),
        Options {
            shards: 4,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(db.shards(), 16);
    assert_eq!(
        db.get(b"after").unwrap().as_deref(),
        Some(&b"rebalance"[..])
    );
    assert_eq!(
        db.get(format!("key-{}", keys - 1).as_bytes()).unwrap(),
        Some(value(keys - 1))
    );
}
