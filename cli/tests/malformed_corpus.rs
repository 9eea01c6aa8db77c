//! Every file of the malformed-input corpus (`tests/data/malformed/`, listed with its expectations in
//! `tests/data/manifest.jsonl`, written by `tests/data/generate.py`) makes `kvtool load` print the
//! expected `FILE:LINE[:COLUMN]: reason` line and exit with the expected code, and every record before
//! the bad one is committed — and nothing after it.

mod common;

use std::path::PathBuf;

use common::Store;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(serde::Deserialize)]
struct Case {
    file: String,
    args: Vec<String>,
    exit: i32,
    error: String,
    keys: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(data_dir().join("manifest.jsonl")).expect("manifest");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("manifest line"))
        .collect()
}

#[test]
fn corpus_has_at_least_40_files_all_listed() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir().join("malformed"))
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_malformed_file_is_reported_and_prior_records_committed() {
    let dir = data_dir().join("malformed");
    let mut failures = Vec::new();
    for c in cases() {
        let store = Store::new();
        let mut args: Vec<&str> = vec!["--json", "load"];
        args.extend(c.args.iter().map(String::as_str));
        args.push(&c.file);
        let r = store.run_in(Some(&dir), &args, None);
        let stderr = r.stderr_text();
        let mut problems = Vec::new();
        if r.code != c.exit {
            problems.push(format!("exit code {} (expected {})", r.code, c.exit));
        }
        if !stderr.lines().any(|l| l == c.error) {
            problems.push(format!("no line {:?} in stderr:\n{stderr}", c.error));
        }
        if r.code == 3 {
            let summary = r.json();
            if summary["committed"] != c.keys.len() as u64 || summary["aborted"] != true {
                problems.push(format!("summary {summary}"));
            }
            if summary["resume_skip_records"] != c.keys.len() as u64 {
                problems.push(format!("resume hint in {summary}"));
            }
        }
        if problems.is_empty() {
            let mut want = c.keys.clone();
            want.sort();
            let got = if c.keys.is_empty() && !store.path().exists() {
                vec![]
            } else {
                store.keys()
            };
            if got != want {
                problems.push(format!("store holds {got:?}, expected {want:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.file, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn skip_mode_loads_the_good_records_and_lists_the_bad() {
    let dir = data_dir().join("malformed");
    let store = Store::new();
    let r = store
        .run_in(
            Some(&dir),
            &[
                "--json",
                "load",
                "--on-error",
                "skip",
                "tsv_crlf_later.tsv",
                "tsv_empty_key.tsv",
            ],
            None,
        )
        .expect(0);
    let s = r.json();
    assert_eq!(s["bad"], 2);
    assert_eq!(s["put"], 3);
    let errors = s["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2);
    assert!(errors[0]
        .as_str()
        .unwrap()
        .starts_with("tsv_crlf_later.tsv:3:6: carriage return"));
    assert_eq!(errors[1], "tsv_empty_key.tsv:2:1: empty key");
    assert_eq!(store.keys(), ["k1", "k2"]);

    // --strict turns the same run into exit code 3, still loading the good records.
    let store = Store::new();
    store
        .run_in(
            Some(&dir),
            &[
                "-q",
                "load",
                "--on-error",
                "skip",
                "--strict",
                "tsv_empty_key.tsv",
            ],
            None,
        )
        .expect(3);
    assert_eq!(store.keys(), ["k1"]);
}
