//! Recovery of a damaged store. A small real store (two shards, 4 KiB logs, so it holds flushed
//! pages, a checkpoint, data and hot files, sealed and active log segments and a sync point) is
//! built once; each input copies it to a fresh directory, damages its files as the fuzzer says
//! (xor, overwrite, truncate, zero a range, delete a file) and opens it with `tierkv::Db::open`.
//!
//! Properties: open returns `Ok` or a typed `Err`, never panics or hangs; on an opened store every
//! `get` of a known key, and every pair `scan` yields, is an error, absent, or exactly a value that
//! was written for that key — damage never makes up data; and the store still takes a write and
//! reads it back.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierkv::fuzzing::Scratch;
use tierkv::{Db, Options};

/// The template store: every file (relative path, bytes) and every value written per key.
struct Template {
    files: Vec<(PathBuf, Vec<u8>)>,
    written: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>,
    /// Kept alive so the template directory outlives the run.
    _dir: Scratch,
}

fn options() -> Options {
    Options {
        shards: 2,
        log_capacity_bytes: 4096,
        background_flush: false,
        hot_capacity_bytes: 1 << 16,
        ..Options::default()
    }
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = Scratch::new();
        let store = dir.path().join("store");
        let mut written: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
        let db = Db::open(&store, options()).expect("create the template store");
        let mut put = |db: &Db, k: String, v: Vec<u8>| {
            db.put(k.as_bytes(), &v).expect("template put");
            written.entry(k.into_bytes()).or_default().insert(v);
        };
        // Round 1 is flushed to the global table and the data file, with some keys read twice so
        // they become hot; round 2 overwrites half the keys and sits in synced log segments;
        // round 3 is logged but never synced.
        for i in 0..40u32 {
            put(
                &db,
                format!("key-{i:03}"),
                format!("one-{i}-{}", "v".repeat(i as usize * 7)).into_bytes(),
            );
        }
        db.flush().expect("template flush");
        for i in 0..40u32 {
            for _ in 0..2 {
                let _ = db.get(format!("key-{i:03}").as_bytes());
            }
        }
        for i in (0..40u32).step_by(2) {
            put(&db, format!("key-{i:03}"), format!("two-{i}").into_bytes());
        }
        db.delete(b"key-001").expect("template delete");
        db.flush().expect("template flush");
        for i in 40..60u32 {
            put(&db, format!("key-{i:03}"), vec![i as u8; 100 + i as usize]);
        }
        db.sync().expect("template sync");
        for i in 60..70u32 {
            put(
                &db,
                format!("key-{i:03}"),
                format!("three-{i}").into_bytes(),
            );
        }
        drop(db);
        let mut files = Vec::new();
        collect(&store, &store, &mut files);
        files.sort();
        Template {
            files,
            written,
            _dir: dir,
        }
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).expect("read template dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if p.file_name() != Some("LOCK".as_ref()) {
            let bytes = std::fs::read(&p).expect("read template file");
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), bytes));
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Damage {
    Xor { at: u32, bytes: Vec<u8> },
    Overwrite { at: u32, bytes: Vec<u8> },
    Truncate { at: u32 },
    Zero { at: u32, len: u16 },
    Remove,
}

#[derive(Arbitrary, Debug)]
struct Input {
    damage: Vec<(u8, Damage)>,
}

fuzz_target!(|input: Input| {
    let t = template();
    let dir = Scratch::new();
    let store = dir.path().join("store");
    let mut files = t.files.clone();
    let mut removed = vec![false; files.len()];
    for (which, d) in input.damage.iter().take(4) {
        let i = *which as usize % files.len();
        let bytes = &mut files[i].1;
        let len = bytes.len().max(1);
        match d {
            Damage::Xor { at, bytes: x } => {
                for (j, b) in x.iter().take(64).enumerate() {
                    if let Some(dst) = bytes.get_mut((*at as usize + j) % len) {
                        *dst ^= b;
                    }
                }
            }
            Damage::Overwrite { at, bytes: x } => {
                for (j, b) in x.iter().take(64).enumerate() {
                    if let Some(dst) = bytes.get_mut((*at as usize + j) % len) {
                        *dst = *b;
                    }
                }
            }
            Damage::Truncate { at } => bytes.truncate(*at as usize % len),
            Damage::Zero { at, len: n } => {
                let start = *at as usize % len;
                let end = (start + *n as usize).min(bytes.len());
                bytes[start.min(end)..end].fill(0);
            }
            Damage::Remove => removed[i] = true,
        }
    }
    for ((rel, bytes), gone) in files.iter().zip(&removed) {
        if *gone {
            continue;
        }
        let p = store.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    let mut opts = options();
    opts.create_if_missing = false;
    let Ok(db) = Db::open(&store, opts) else {
        return;
    };
    let made_up = |k: &[u8], v: &[u8]| !t.written.get(k).is_some_and(|vals| vals.contains(v));
    for k in t.written.keys() {
        if let Ok(Some(v)) = db.get(k) {
            assert!(
                !made_up(k, &v),
                "get({:?}) returned a value never written",
                String::from_utf8_lossy(k)
            );
        }
    }
    let _ = db.scan(|k, v| {
        assert!(
            !made_up(k, v),
            "scan yielded a pair never written for {:?}",
            String::from_utf8_lossy(k)
        );
        true
    });
    if db.put(b"fresh-key", b"fresh-value").is_ok() {
        if let Ok(v) = db.get(b"fresh-key") {
            assert_eq!(v.as_deref(), Some(&b"fresh-value"[..]));
        }
    }
});
