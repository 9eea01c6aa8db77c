//! Several threads writing and reading, on their own keys (spread over all shards) and on shared
//! keys, with a log small enough that flushes run all the time, in the background and in writers.

use std::sync::Arc;

use tierkv::{Db, Options, WriteBatch};

#[test]
fn threads_on_different_and_same_shards() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            Options {
                shards: 4,
                log_capacity_bytes: 32 << 10,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let threads = 4;
    let per_thread = 6000u32;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let own = format!("t{t}-k{}", i % 1500);
                    let value = format!("t{t}-v{i}");
                    if i % 7 == 0 {
                        let mut b = WriteBatch::new();
                        b.put(own.clone(), value.clone())
                            .put(format!("shared-{}", i % 50), value.clone());
                        db.write_batch(&b).unwrap();
                    } else {
                        db.put(own.as_bytes(), value.as_bytes()).unwrap();
                    }
                    // Read-your-writes on own keys.
                    assert_eq!(
                        db.get(own.as_bytes()).unwrap().as_deref(),
                        Some(value.as_bytes())
                    );
                    if i % 13 == 0 {
                        db.delete(own.as_bytes()).unwrap();
                        assert_eq!(db.get(own.as_bytes()).unwrap(), None);
                    }
                    // Shared keys hold some thread's value, never garbage.
                    if let Some(v) = db.get(format!("shared-{}", i % 50).as_bytes()).unwrap() {
                        let s = String::from_utf8(v).unwrap();
                        assert!(s.starts_with('t') && s.contains("-v"), "garbage {s}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Final values: each own key holds its last write (or is deleted if the last op deleted it).
    for t in 0..threads {
        for k in 0..1500u32 {
            let last = (0..per_thread).rev().find(|i| i % 1500 == k).unwrap();
            let expect = if last % 13 == 0 {
                None
            } else {
                Some(format!("t{t}-v{last}").into_bytes())
            };
            assert_eq!(db.get(format!("t{t}-k{k}").as_bytes()).unwrap(), expect);
        }
    }
    let stats = db.stats();
    assert!(stats.flushes > 10, "flushes {}", stats.flushes);
    let report = db.check(&tierkv::NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
