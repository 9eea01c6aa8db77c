//! Bad input and damaged stores: each gets a typed error naming the cause (and the file), and nothing
//! committed is lost.

use tierkv::{Db, Error, Options, WriteBatch, MAX_KEY_LEN, MAX_VALUE_LEN};

fn small() -> Options {
    Options {
        shards: 2,
        log_capacity_bytes: 8192,
        ..Options::default()
    }
}

#[test]
fn oversize_and_empty_keys_and_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    db.put(b"kept", b"value").unwrap();
    let e = db.put(b"", b"v").unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("empty key")),
        "{e}"
    );
    let e = db.put(&vec![b'k'; MAX_KEY_LEN + 1], b"v").unwrap_err();
    assert!(e.to_string().contains(&MAX_KEY_LEN.to_string()), "{e}");
    let e = db.put(b"k", &vec![0u8; MAX_VALUE_LEN + 1]).unwrap_err();
    assert!(e.to_string().contains("value of"), "{e}");
    assert!(db.get(b"").is_err());
    assert!(db.delete(b"").is_err());
    // A batch with one bad operation applies nothing.
    let mut batch = WriteBatch::new();
    batch
        .put(b"a".to_vec(), b"1".to_vec())
        .put(Vec::new(), b"2".to_vec());
    assert!(db.write_batch(&batch).is_err());
    assert_eq!(db.get(b"a").unwrap(), None);
    // The largest key is fine, and nothing committed was lost.
    db.put(&vec![b'k'; MAX_KEY_LEN], b"big key").unwrap();
    db.flush().unwrap();
    assert_eq!(
        db.get(&vec![b'k'; MAX_KEY_LEN]).unwrap().as_deref(),
        Some(&b"big key"[..])
    );
    assert_eq!(db.get(b"kept").unwrap().as_deref(), Some(&b"value"[..]));
}

#[test]
fn bad_options_are_refused_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    let e = Db::open(
        dir.path().join("s"),
        Options {
            shards: 3,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(!dir.path().join("s").exists());
}

#[test]
fn missing_store_without_create() {
    let dir = tempfile::tempdir().unwrap();
    let e = Db::open(
        dir.path().join("none"),
        Options {
            create_if_missing: false,
            ..small()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoStore { .. }), "{e}");
}

#[test]
fn second_writer_is_refused_with_the_lock_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    let e = Db::open(dir.path(), small()).unwrap_err();
    match &e {
        Error::Locked { lock_file, .. } => assert!(lock_file.ends_with("LOCK")),
        other => panic!("expected Locked, got {other}"),
    }
    drop(db);
    Db::open(dir.path(), small()).unwrap();
}

#[test]
fn other_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Db::open(dir.path(), small()).unwrap().close().unwrap();
    let manifest = dir.path().join("MANIFEST");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // A newer build's manifest: another version, and a checksum line that matches it.
    let body = text[..text.rfind("CRC32 ").unwrap()]
        .replace("\"format_version\": 1", "\"format_version\": 7");
    let crc = crc32fast::hash(body.as_bytes());
    std::fs::write(&manifest, format!("{body}CRC32 {crc:08x}\n")).unwrap();
    let e = Db::open(dir.path(), small()).unwrap_err();
    match &e {
        Error::FormatVersion {
            file,
            found,
            expected,
        } => {
            assert_eq!(file, &manifest);
            assert_eq!((*found, *expected), (7, tierkv::FORMAT_VERSION));
        }
        other => panic!("expected FormatVersion, got {other}"),
    }
}

#[test]
fn unusable_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = Db::open(&file, small()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("plain-file"), "{e}");
}

fn store_with_data(dir: &std::path::Path) {
    let db = Db::open(dir, small()).unwrap();
    for i in 0..500u32 {
        db.put(
            format!("key{i}").as_bytes(),
            format!("value-{i}-{}", "x".repeat(50)).as_bytes(),
        )
        .unwrap();
    }
    db.close().unwrap();
}

fn find_files(dir: &std::path::Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            find_files(&p, name, out);
        } else if p.file_name().unwrap().to_str().unwrap().starts_with(name) {
            out.push(p);
        }
    }
}

#[test]
fn corrupt_value_is_reported_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    store_with_data(dir.path());
    let mut data = Vec::new();
    find_files(dir.path(), "data-", &mut data);
    assert_eq!(data.len(), 2, "one data file per shard");
    // Flip one byte in the middle of every data file.
    for f in &data {
        let mut b = std::fs::read(f).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0x40;
        std::fs::write(f, b).unwrap();
    }
    let db = Db::open(dir.path(), small()).unwrap();
    let report = db.check(&tierkv::NoProgress).unwrap();
    assert!(!report.problems.is_empty(), "check found nothing");
    for p in &report.problems {
        assert!(data.contains(&p.file), "{p:?}");
    }
    let mut corrupt = 0;
    for i in 0..500u32 {
        match db.get(format!("key{i}").as_bytes()) {
            Ok(Some(v)) => assert_eq!(v, format!("value-{i}-{}", "x".repeat(50)).into_bytes()),
            Ok(None) => panic!("key{i} vanished"),
            Err(Error::Corruption { file, .. }) => {
                assert!(data.contains(&file));
                corrupt += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(corrupt, report.problems.len(), "get and check disagree");
}

#[test]
fn corrupt_page_and_checkpoint_are_named() {
    let dir = tempfile::tempdir().unwrap();
    store_with_data(dir.path());
    let mut index = Vec::new();
    find_files(dir.path(), "index-", &mut index);
    assert_eq!(index.len(), 2, "one index file per shard");
    for f in &index {
        let mut b = std::fs::read(f).unwrap();
        // Flip a bit inside every page (pages are written out of place, so some slots are free).
        for page in (4096..b.len()).step_by(4096) {
            b[page + 100] ^= 1;
        }
        std::fs::write(f, &b).unwrap();
    }
    {
        let db = Db::open(dir.path(), small()).unwrap();
        let report = db.check(&tierkv::NoProgress).unwrap();
        assert!(!report.problems.is_empty());
        for p in &report.problems {
            assert!(
                index.contains(&p.file) && p.offset % 4096 == 0 && p.reason.contains("checksum"),
                "{p:?}"
            );
        }
        // A get that reaches a damaged page reports it instead of guessing.
        let errors = (0..500u32)
            .filter(|i| db.get(format!("key{i}").as_bytes()).is_err())
            .count();
        assert_eq!(errors, 500, "every key lives on a damaged page");
    }
    let mut ckpt = Vec::new();
    find_files(dir.path(), "checkpoint.tkv", &mut ckpt);
    let mut b = std::fs::read(&ckpt[0]).unwrap();
    let at = b.len() - 10;
    b[at] ^= 1;
    std::fs::write(&ckpt[0], &b).unwrap();
    let e = Db::open(dir.path(), small()).unwrap_err();
    match &e {
        Error::Corruption { file, .. } => assert_eq!(file, &ckpt[0]),
        other => panic!("expected Corruption, got {other}"),
    }
}
