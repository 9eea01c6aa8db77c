//! Long operations report progress: table growth during flushes (through `Db::set_progress`), and
//! `compact` and `rebalance` through their argument.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tierkv::{Db, Options, Progress, WriteBatch};

#[derive(Default)]
struct Recorder {
    phases: Mutex<Vec<String>>,
    advanced: AtomicU64,
    finished: AtomicU64,
}

impl Progress for Recorder {
    fn start(&self, what: &str, _total: u64) {
        self.phases.lock().unwrap().push(what.to_string());
    }
    fn advance(&self, n: u64) {
        self.advanced.fetch_add(n, Ordering::Relaxed);
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn growth_compaction_and_rebalance_report_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            shards: 2,
            log_capacity_bytes: 256 << 10,
            ..Options::default()
        },
    )
    .unwrap();
    let growth = Arc::new(Recorder::default());
    db.set_progress(Some(growth.clone()));
    let mut batch = WriteBatch::new();
    for i in 0..60_000u32 {
        batch.put(format!("key-{i}"), vec![7u8; 40]);
    }
    db.write_batch(&batch).unwrap();
    db.flush().unwrap();
    let phases = growth.phases.lock().unwrap().clone();
    assert!(
        phases.iter().any(|p| p.starts_with("grow table")),
        "{phases:?}"
    );
    assert!(growth.advanced.load(Ordering::Relaxed) > 0);
    assert_eq!(growth.finished.load(Ordering::Relaxed), phases.len() as u64);

    let compaction = Recorder::default();
    db.compact_shard(0, &compaction).unwrap();
    assert_eq!(
        compaction.phases.lock().unwrap().as_slice(),
        ["compact shard 0"]
    );
    assert!(compaction.advanced.load(Ordering::Relaxed) > 0);

    let rebalance = Recorder::default();
    let (db, _) = db.rebalance(4, &rebalance).unwrap();
    assert_eq!(rebalance.advanced.load(Ordering::Relaxed), 4);
    assert_eq!(db.shards(), 4);
}
