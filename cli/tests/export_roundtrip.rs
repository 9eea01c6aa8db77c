//! `kvtool export`: every live key once; `export | load` into an empty store reproduces the contents
//! byte for byte in each format; forms that cannot carry a record refuse it; `-o` with `--json`; a
//! closed pipe ends the export quietly.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

use common::Store;

/// A store holding every byte value in keys and values, tabs, newlines, CRs, backslashes, UTF-8.
fn tricky_store() -> Store {
    let s = Store::new();
    let mut script = String::new();
    for b in 0..=255u8 {
        script.push_str(&format!("key\\x{b:02x}\tval\\x{b:02x}\\t\\n\\r\\\\end\n"));
    }
    script.push_str("h\u{e9}llo\tw\u{f6}rld\n");
    s.run_stdin(&["-q", "load", "--escape"], script.as_bytes())
        .expect(0);
    assert_eq!(s.contents().len(), 257);
    s
}

#[test]
fn tsv_escape_round_trips_byte_for_byte() {
    let a = tricky_store();
    let dump = a.run(&["-q", "export", "--escape"]).expect(0).stdout;
    assert_eq!(dump.iter().filter(|&&b| b == b'\n').count(), 257);
    let b = Store::new();
    b.run_stdin(&["-q", "load", "--escape"], &dump).expect(0);
    assert_eq!(a.contents(), b.contents());
}

#[test]
fn jsonl_escape_round_trips_byte_for_byte() {
    let a = tricky_store();
    let dump = a
        .run(&["-q", "export", "--format", "jsonl", "--escape"])
        .expect(0)
        .stdout;
    let b = Store::new();
    b.run_stdin(&["-q", "load", "--format", "jsonl", "--escape"], &dump)
        .expect(0);
    assert_eq!(a.contents(), b.contents());
}

#[test]
fn plain_forms_round_trip_text_and_refuse_what_they_cannot_carry() {
    let a = Store::new();
    a.run_stdin(&["-q", "load"], "a\t1\tx\nb\t\nc\tt\u{e9}xt\n".as_bytes())
        .expect(0);
    for (export, load) in [
        (vec!["export"], vec!["load"]),
        (
            vec!["export", "--format", "jsonl"],
            vec!["load", "--format", "jsonl"],
        ),
    ] {
        let mut args = vec!["-q"];
        args.extend(export);
        let dump = a.run(&args).expect(0).stdout;
        let b = Store::new();
        let mut args = vec!["-q"];
        args.extend(load);
        b.run_stdin(&args, &dump).expect(0);
        assert_eq!(a.contents(), b.contents());
    }
    let t = tricky_store();
    let r = t.run(&["export"]).expect(2);
    assert!(
        r.stderr_text().contains("add --escape"),
        "{}",
        r.stderr_text()
    );
    let r = t.run(&["export", "--format", "jsonl"]).expect(2);
    assert!(r.stderr_text().contains("--escape"));
}

#[test]
fn output_file_with_json_summary() {
    let a = tricky_store();
    let out = a.file("dump.tsv");
    let r = a
        .run(&["--json", "export", "--escape", "-o", out.to_str().unwrap()])
        .expect(0);
    let j = r.json();
    assert_eq!(j["keys"], 257);
    assert_eq!(j["bytes"], std::fs::metadata(&out).unwrap().len());
    // A failed export leaves no file behind.
    let bad = a.file("bad.tsv");
    a.run(&["export", "-o", bad.to_str().unwrap()]).expect(2);
    assert!(!bad.exists());
    assert_eq!(
        std::fs::read_dir(a.dir.path()).unwrap().count(),
        2,
        "only db, dump.tsv and stray files: {:?}",
        std::fs::read_dir(a.dir.path()).unwrap().collect::<Vec<_>>()
    );
    a.run(&["--json", "export"]).expect(2);
}

#[test]
fn closed_pipe_exits_quietly() {
    let s = Store::new();
    let text: String = (0..200_000)
        .map(|i| format!("key{i}\tvalue{i}\n"))
        .collect();
    s.run_stdin(&["-q", "load"], text.as_bytes()).expect(0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(["--db", s.path().to_str().unwrap(), "export"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_piped_into_load_between_processes() {
    let a = tricky_store();
    let b = Store::new();
    let mut export = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args([
            "--db",
            a.path().to_str().unwrap(),
            "-q",
            "export",
            "--escape",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = export.stdout.take().unwrap();
    let load = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args([
            "--db",
            b.path().to_str().unwrap(),
            "--json",
            "load",
            "--escape",
            "-",
        ])
        .stdin(Stdio::from(pipe))
        .output()
        .unwrap();
    assert_eq!(export.wait().unwrap().code(), Some(0));
    assert_eq!(
        load.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&load.stdout).unwrap();
    assert_eq!(summary["put"], 257);
    assert_eq!(a.contents(), b.contents());
}
