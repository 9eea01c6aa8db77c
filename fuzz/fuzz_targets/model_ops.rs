//! Model-based test of the public API: the input decodes (`arbitrary`) into at most 64 operations
//! — put, delete, write_batch, get, multi_get, flush, sync, reopen, compact, check — run on a `Db` in
//! a fresh directory with 4 KiB logs (so flushes and segment switches happen within a few
//! operations) and no background flusher (so a run is deterministic), and mirrored on a `BTreeMap`.
//!
//! Properties: no call panics or fails on a healthy directory; every `get` and `multi_get` agrees with
//! the model; `check` finds no problem; at the end, and after every reopen, a full `scan` yields
//! exactly the model's pairs in some order.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierkv::fuzzing::Scratch;
use tierkv::{Db, NoProgress, Options, WriteBatch};

/// A key: one of 48 short names, or a long one (up to the 1024-byte limit) built from a seed.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Key {
    Short(u8),
    Long(u8, u16),
}

impl Key {
    fn bytes(self) -> Vec<u8> {
        match self {
            Key::Short(i) => format!("k{:02}", i % 48).into_bytes(),
            Key::Long(i, len) => {
                let mut k = format!("long{:02}-", i % 8).into_bytes();
                k.resize(8 + len as usize % 1017, b'x');
                k
            }
        }
    }
}

/// A value: given bytes, or `len` copies of `fill` (large values cross log and page sizes).
#[derive(Arbitrary, Debug, Clone)]
enum Value {
    Bytes(Vec<u8>),
    Filled(u8, u16),
}

impl Value {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b[..b.len().min(512)].to_vec(),
            Value::Filled(fill, len) => vec![*fill; *len as usize % 6000],
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Put(Key, Value),
    Delete(Key),
    Batch(Vec<(Key, Option<Value>)>),
    Get(Key),
    MultiGet(Vec<Key>),
    Flush,
    Sync,
    Reopen,
    Compact,
    Check,
}

#[derive(Arbitrary, Debug)]
struct Input {
    shards_log2: u8,
    ops: Vec<Op>,
}

fn options(shards: u32) -> Options {
    Options {
        shards,
        log_capacity_bytes: 4096,
        background_flush: false,
        hot_capacity_bytes: 1 << 16,
        ..Options::default()
    }
}

fn scan_matches(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
    let mut seen = BTreeMap::new();
    db.scan(|k, v| {
        assert!(
            seen.insert(k.to_vec(), v.to_vec()).is_none(),
            "scan yielded a key twice"
        );
        true
    })
    .expect("scan");
    assert!(seen == *model, "scan {when} differs from the model");
}

fuzz_target!(|input: Input| {
    let dir = Scratch::new();
    let path = dir.path().join("store");
    let shards = 1u32 << (input.shards_log2 % 3);
    let mut db = Some(Db::open(&path, options(shards)).expect("create store"));
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in input.ops.iter().take(64) {
        let d = db.as_ref().unwrap();
        match op {
            Op::Put(k, v) => {
                let (k, v) = (k.bytes(), v.bytes());
                d.put(&k, &v).expect("put");
                model.insert(k, v);
            }
            Op::Delete(k) => {
                let k = k.bytes();
                d.delete(&k).expect("delete");
                model.remove(&k);
            }
            Op::Batch(ops) => {
                let mut b = WriteBatch::new();
                let mut after = model.clone();
                for (k, v) in ops.iter().take(16) {
                    let k = k.bytes();
                    match v {
                        Some(v) => {
                            let v = v.bytes();
                            b.put(k.clone(), v.clone());
                            after.insert(k, v);
                        }
                        None => {
                            b.delete(k.clone());
                            after.remove(&k);
                        }
                    }
                }
                d.write_batch(&b).expect("write_batch");
                model = after;
            }
            Op::Get(k) => {
                let k = k.bytes();
                assert_eq!(d.get(&k).expect("get"), model.get(&k).cloned(), "get {k:?}");
            }
            Op::MultiGet(keys) => {
                let keys: Vec<Vec<u8>> = keys.iter().take(16).map(|k| k.bytes()).collect();
                let got = d.multi_get(&keys).expect("multi_get");
                let want: Vec<_> = keys.iter().map(|k| model.get(k).cloned()).collect();
                assert_eq!(got, want, "multi_get");
            }
            Op::Flush => d.flush().expect("flush"),
            Op::Sync => d.sync().expect("sync"),
            Op::Reopen => {
                db.take().unwrap().close().expect("close");
                let d = Db::open(&path, options(shards)).expect("reopen");
                scan_matches(&d, &model, "after reopen");
                db = Some(d);
            }
            Op::Compact => {
                d.compact(&NoProgress).expect("compact");
            }
            Op::Check => {
                let r = d.check(&NoProgress).expect("check");
                assert!(
                    r.problems.is_empty(),
                    "check found problems: {:?}",
                    r.problems
                );
            }
        }
    }
    scan_matches(db.as_ref().unwrap(), &model, "at the end");
});
