//! The command line's surface: `--help` (snapshot in `tests/snapshots/help.txt`; regenerate with
//! `UPDATE_SNAPSHOTS=1`), documented exit codes, usage errors, `--db` and `KVTOOL_DB`.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use common::{run_kvtool, Store};

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// Every subcommand but `simulate` (whose help has its own owner).
const SUBCOMMANDS: [&str; 10] = [
    "load",
    "get",
    "put",
    "delete",
    "batch",
    "export",
    "stats",
    "check",
    "compact",
    "rebalance",
];
#[test]
fn help_matches_snapshot_and_lists_exit_codes() {
    let r = run_kvtool(None, &args(&["--help"]), None).expect(0);
    let help = r.stdout_text();
    for needle in [
        "Exit codes:",
        "0  success",
        "3  load or batch stopped",
        "KVTOOL_DB",
        "--shards",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
    for cmd in SUBCOMMANDS.iter().chain(&["simulate"]) {
        assert!(help.contains(&format!("\n  {cmd} ")), "--help lacks {cmd}");
    }
    // The snapshot holds the top-level help and every subcommand's (simulate has its own owner).
    let mut all = help.clone();
    for cmd in SUBCOMMANDS {
        let r = run_kvtool(None, &args(&[cmd, "--help"]), None).expect(0);
        all.push_str(&format!("\n===== kvtool {cmd} --help =====\n"));
        all.push_str(&r.stdout_text());
    }
    let snap = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
        std::fs::write(&snap, &all).unwrap();
    }
    let want = std::fs::read_to_string(&snap).expect("snapshot (run with UPDATE_SNAPSHOTS=1)");
    if all != want {
        let line = all
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| all.lines().count().min(want.lines().count()));
        let show = |t: &str| t.lines().skip(line).take(3).collect::<Vec<_>>().join("\n");
        panic!(
            "--help changed at line {}; review and run with UPDATE_SNAPSHOTS=1\nnow:\n{}\nsnapshot:\n{}",
            line + 1,
            show(&all),
            show(&want)
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    run_kvtool(None, &args(&["frobnicate"]), None).expect(2);
    run_kvtool(
        None,
        &args(&["--db", "/tmp/x", "load", "--format", "xml"]),
        None,
    )
    .expect(2);
    run_kvtool(None, &args(&["--db", "/tmp/x", "get"]), None).expect(2);
    let r = run_kvtool(None, &args(&["get", "k"]), None).expect(2);
    assert!(r.stderr_text().contains("--db DIR or set KVTOOL_DB"));
    let r = run_kvtool(
        None,
        &args(&["--db", "/tmp/x", "--shards", "3", "get", "k"]),
        None,
    )
    .expect(2);
    assert!(r.stderr_text().contains("shards"), "{}", r.stderr_text());
}

#[test]
fn kvtool_db_environment_variable() {
    let s = Store::new();
    s.run_stdin(&["-q", "load"], b"a\t1\n").expect(0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(["get", "a"])
        .env("KVTOOL_DB", s.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"1");
}

#[test]
fn version() {
    let r = run_kvtool(None, &args(&["--version"]), None).expect(0);
    assert!(r.stdout_text().starts_with("kvtool "));
}

#[test]
fn a_store_held_by_another_writer_is_a_runtime_error() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let s = Store::new();
    s.run_stdin(&["-q", "load"], b"a\t1\n").expect(0);
    // `batch` holds the store open while it waits for its script on stdin.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(["--db", s.path().to_str().unwrap(), "batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    stdin
        .write_all(b"{\"op\":\"get\",\"key\":\"a\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    // Once the first answer arrives, the holder has the store open.
    let mut stdout = holder.stdout.take().unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    let r = s.run_stdin(&["load"], b"b\t2\n").expect(2);
    assert!(r.stderr_text().contains("locked"), "{}", r.stderr_text());
    drop(stdin);
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    assert_eq!(s.keys(), ["a"]);
}
