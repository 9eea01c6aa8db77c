//! A full disk during `kvtool load`: the store sits on a 3 MiB tmpfs and the load brings 5 MiB. The
//! load must fail with exit code 2 and an error naming the file and "No space left on device", say
//! how many records its last sync committed, and leave a store that — once space is freed (the tmpfs
//! grown, as an operator would delete files) — `kvtool check` passes and that holds every committed
//! record with its value.
//!
//! Needs permission to mount a tmpfs (root, as in CI); elsewhere it prints why it did not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::run_kvtool;

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn grow(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

fn kvtool(db: &Path, args: &[&str]) -> common::Run {
    let mut full: Vec<std::ffi::OsString> = vec![
        "--db".into(),
        db.into(),
        "--log-capacity".into(),
        "262144".into(),
        "--shards".into(),
        "4".into(),
    ];
    full.extend(args.iter().map(|a| a.into()));
    run_kvtool(None, &full, None)
}

fn value(i: u32) -> String {
    format!("v{i:06}").repeat(14)
}

#[test]
fn load_on_a_full_disk_fails_clearly_and_keeps_what_it_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("mnt"), "3m") else {
        eprintln!("disk_full: SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let input = tmp.path().join("in.tsv");
    let text: String = (0..50_000)
        .map(|i| format!("key{i:06}\t{}\n", value(i)))
        .collect();
    std::fs::write(&input, text).unwrap();
    let db = fs.dir.join("db");

    let r = kvtool(
        &db,
        &["load", "--sync-every", "5000", input.to_str().unwrap()],
    );
    let err = r.stderr_text();
    assert_eq!(r.code, 2, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(db.to_str().unwrap()),
        "the error names the file: {err}"
    );
    assert_eq!(
        err.matches("No space left on device").count(),
        1,
        "the cause is printed once: {err}"
    );
    let committed: u32 = err
        .split("the ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no committed count in: {err}"));
    assert!(committed > 0 && committed % 5000 == 0, "{err}");
    assert!(
        err.contains(&format!("--skip-records {committed}")),
        "{err}"
    );

    // An operator frees space; the store checks clean and holds every committed record.
    fs.grow("64m");
    let r = kvtool(&db, &["check"]);
    assert_eq!(r.code, 0, "check: {}", r.stderr_text());
    let keys: Vec<String> = (0..committed)
        .step_by(97)
        .map(|i| format!("key{i:06}"))
        .collect();
    let mut args = vec!["get"];
    args.extend(keys.iter().map(String::as_str));
    let r = kvtool(&db, &args);
    assert_eq!(r.code, 0, "get: {}", r.stderr_text());
    let want: String = (0..committed)
        .step_by(97)
        .map(|i| value(i) + "\n")
        .collect();
    assert_eq!(r.stdout_text(), want);

    // And the load resumes where its last sync left off.
    let r = kvtool(
        &db,
        &[
            "load",
            "--skip-records",
            &committed.to_string(),
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "resume: {}", r.stderr_text());
    let r = kvtool(&db, &["get", "key049999"]);
    assert_eq!(r.stdout_text(), value(49_999));
}
