//! Values of a page or more reuse the data file's dead space before the file grows (the seed note:
//! "write into deleted places first"), across flushes and reopens, without ever returning a wrong value.

use tierkv::{Db, NoProgress, Options, WriteBatch};

fn value(i: u64, round: u64) -> Vec<u8> {
    let len = 5000 + (i % 7) as usize * 300;
    (0..len)
        .map(|j| (i as usize + j + round as usize * 31) as u8)
        .collect()
}

#[test]
fn page_sized_values_reuse_freed_extents() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        shards: 2,
        log_capacity_bytes: 16 << 20,
        ..Options::default()
    };
    let keys = 800u64;
    let mut db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut sizes = Vec::new();
    for round in 0..6u64 {
        let mut batch = WriteBatch::new();
        for i in 0..keys {
            batch.put(format!("key-{i}"), value(i, round));
        }
        db.write_batch(&batch).unwrap();
        db.flush().unwrap();
        let data: u64 = db.stats().disk_bytes.data;
        sizes.push(data);
        for i in (0..keys).step_by(37) {
            assert_eq!(
                db.get(format!("key-{i}").as_bytes()).unwrap(),
                Some(value(i, round))
            );
        }
        if round == 3 {
            drop(db);
            db = Db::open(dir.path(), opts.clone()).unwrap();
        }
    }
    eprintln!("data file bytes after each round: {sizes:?}");
    // Round 0 writes the values, round 1 a second copy (the first becomes dead); from round 2 on every
    // value fits into space freed two rounds earlier, so the file stops growing.
    let one_copy = sizes[0];
    for (round, size) in sizes.iter().enumerate().skip(2) {
        assert!(
            *size <= 2 * one_copy + one_copy / 10,
            "round {round}: data file {size} bytes, one copy is {one_copy}"
        );
    }
    for i in 0..keys {
        assert_eq!(
            db.get(format!("key-{i}").as_bytes()).unwrap(),
            Some(value(i, 5))
        );
    }
    assert!(db.check(&NoProgress).unwrap().problems.is_empty());
}
