//! Compaction: after loading, overwriting half and deleting a quarter, `compact` brings space
//! amplification (bytes on disk across tiers ÷ live key and value bytes) to ≤ 1.3, every key still
//! reads back as the model says (also while the compaction runs, from another thread), `check`
//! passes, and a reopen sees the compacted store. `TIERKV_COMPACT_KEYS` sets the key count
//! (default 200 000; the figure is for 1 000 000).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tierkv::{Db, NoProgress, Options, WriteBatch};

fn key(i: u64) -> Vec<u8> {
    let extra = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 9) as usize;
    let mut k = format!("k{i:015}").into_bytes();
    k.extend_from_slice(&b"abcdefgh"[..extra]);
    k
}

fn value(i: u64, round: u8) -> Vec<u8> {
    (0..100)
        .map(|j| (i as u8).wrapping_add(j).wrapping_mul(round))
        .collect()
}

#[test]
fn compaction_reclaims_space_and_keeps_every_key() {
    let keys: u64 = std::env::var("TIERKV_COMPACT_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        shards: 4,
        log_capacity_bytes: 8 << 20,
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path(), opts.clone()).unwrap());
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut batch = WriteBatch::new();
    let apply = |batch: &mut WriteBatch, db: &Db| {
        db.write_batch(batch).unwrap();
        batch.clear();
    };
    for i in 0..keys {
        batch.put(key(i), value(i, 1));
        model.insert(key(i), value(i, 1));
        if batch.len() == 1000 {
            apply(&mut batch, &db);
        }
    }
    for i in (0..keys).step_by(2) {
        batch.put(key(i), value(i, 2));
        model.insert(key(i), value(i, 2));
        if batch.len() == 1000 {
            apply(&mut batch, &db);
        }
    }
    for i in (1..keys).step_by(4) {
        batch.delete(key(i));
        model.remove(&key(i));
        if batch.len() == 1000 {
            apply(&mut batch, &db);
        }
    }
    apply(&mut batch, &db);
    db.flush().unwrap();
    let before = db.stats();
    assert_eq!(before.live_keys, model.len() as u64);

    // Readers keep reading (and checking) while the compaction runs.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        let sample: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..2000u64)
            .map(|i| (key(i * 37 % keys), model.get(&key(i * 37 % keys)).cloned()))
            .collect();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (k, v) in &sample {
                    assert_eq!(&db.get(k).unwrap(), v);
                    reads += 1;
                }
            }
            reads
        })
    };
    let report = db.compact(&NoProgress).unwrap();
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    assert_eq!(report.compacted_shards, 4, "{report:?}");
    let after = db.stats();
    eprintln!(
        "compaction of {keys} keys: space amplification {:.3} -> {:.3} in {:.2} s; {reads} concurrent reads",
        before.space_amplification, after.space_amplification, report.seconds
    );
    assert!(
        before.space_amplification > 1.5,
        "the workload should leave dead space ({})",
        before.space_amplification
    );
    assert!(
        after.space_amplification <= 1.3,
        "space amplification after compaction {}",
        after.space_amplification
    );
    assert_eq!(after.live_keys, model.len() as u64);
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
    for i in (1..keys).step_by(4) {
        assert_eq!(db.get(&key(i)).unwrap(), None);
    }
    assert!(db.check(&NoProgress).unwrap().problems.is_empty());
    // Nothing left to do: a second compact leaves every shard alone.
    assert_eq!(db.compact(&NoProgress).unwrap().compacted_shards, 0);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    let reopened = db.stats();
    assert_eq!(reopened.live_keys, model.len() as u64);
    assert!((reopened.space_amplification - after.space_amplification).abs() < 0.01);
    for (k, v) in model.iter().take(5000) {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
}
