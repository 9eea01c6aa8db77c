//! `kvtool load` in every format, from files and stdin: puts, deletes, escapes, CSV columns, JSONL
//! fields, the JSON summary, idempotent reloads, resuming with `--skip-records`, several inputs.

mod common;

use common::Store;

fn kv(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    v.sort();
    v
}

#[test]
fn tsv_puts_deletes_and_reload_is_idempotent() {
    let s = Store::new();
    let f = s.file("in.tsv");
    std::fs::write(&f, "a\t1\nb\t2\tx\nc\t3\n\nb\nd\t\n").unwrap();
    let r = s.run(&["--json", "load", f.to_str().unwrap()]).expect(0);
    let j = r.json();
    assert_eq!(j["put"], 4);
    assert_eq!(j["deleted"], 1);
    assert_eq!(j["committed"], 5);
    assert_eq!(j["bad"], 0);
    assert_eq!(j["aborted"], false);
    assert_eq!(j["bytes"], 20);
    assert!(j["seconds"].as_f64().unwrap() >= 0.0);
    let want = kv(&[("a", "1"), ("c", "3"), ("d", "")]);
    assert_eq!(s.contents(), want);
    s.run(&["-q", "load", f.to_str().unwrap()]).expect(0);
    assert_eq!(s.contents(), want);
}

#[test]
fn stdin_is_the_default_and_dash() {
    let s = Store::new();
    s.run_stdin(&["-q", "load"], b"a\t1\n").expect(0);
    s.run_stdin(&["-q", "load", "-"], b"b\t2\n").expect(0);
    s.run_stdin(
        &["-q", "load", "--format", "jsonl", "-"],
        b"{\"key\":\"c\",\"value\":\"3\"}\n",
    )
    .expect(0);
    assert_eq!(s.contents(), kv(&[("a", "1"), ("b", "2"), ("c", "3")]));
    let r = s.run_stdin(&["load", "-", "-"], b"").expect(2);
    assert!(r.stderr_text().contains("only once"));
}

#[test]
fn tsv_escape_carries_binary() {
    let s = Store::new();
    s.run_stdin(
        &["-q", "load", "--escape"],
        b"k\\x00\\t1\tv\\n\\r\\\\\\xff\n",
    )
    .expect(0);
    assert_eq!(
        s.contents(),
        vec![(b"k\0\t1".to_vec(), b"v\n\r\\\xff".to_vec())]
    );
}

#[test]
fn csv_columns_quotes_and_row_as_json() {
    let s = Store::new();
    let f = s.file("people.csv");
    std::fs::write(
        &f,
        "id,name,note\r\n1,Ann,\"likes, commas\"\r\n2,Bob,\"two\nlines \"\"quoted\"\"\"\r\n",
    )
    .unwrap();
    s.run(&[
        "-q",
        "load",
        "--key-column",
        "name",
        "--value-column",
        "note",
        f.to_str().unwrap(),
    ])
    .expect(0);
    assert_eq!(
        s.contents(),
        kv(&[("Ann", "likes, commas"), ("Bob", "two\nlines \"quoted\"")])
    );
    let s2 = Store::new();
    s2.run(&["-q", "load", f.to_str().unwrap()]).expect(0);
    let c = s2.contents();
    assert_eq!(c[0].0, b"1");
    let row: serde_json::Value = serde_json::from_slice(&c[0].1).unwrap();
    assert_eq!(
        row,
        serde_json::json!({"id":"1","name":"Ann","note":"likes, commas"})
    );
    // Header order is kept in the stored JSON.
    assert!(String::from_utf8(c[0].1.clone())
        .unwrap()
        .starts_with("{\"id\""));
}

#[test]
fn jsonl_fields_and_non_string_values() {
    let s = Store::new();
    let input = concat!(
        "{\"id\":\"a\",\"v\":\"text\"}\n",
        "{\"id\":\"b\",\"v\":{\"n\":1,\"l\":[true,null]}}\n",
        "\n",
        "{\"id\":\"c\",\"v\":42}\r\n"
    );
    s.run_stdin(
        &[
            "-q",
            "load",
            "--format",
            "jsonl",
            "--key-field",
            "id",
            "--value-field",
            "v",
        ],
        input.as_bytes(),
    )
    .expect(0);
    assert_eq!(
        s.contents(),
        kv(&[
            ("a", "text"),
            ("b", "{\"l\":[true,null],\"n\":1}"),
            ("c", "42")
        ])
    );
}

#[test]
fn jsonl_escape_is_base64() {
    let s = Store::new();
    s.run_stdin(
        &["-q", "load", "--format", "jsonl", "--escape"],
        b"{\"key\":\"AP8=\",\"value\":\"AQID\"}\n",
    )
    .expect(0);
    assert_eq!(s.contents(), vec![(vec![0, 255], vec![1, 2, 3])]);
}

#[test]
fn format_comes_from_the_extension() {
    let s = Store::new();
    let j = s.file("x.jsonl");
    let c = s.file("y.csv");
    let t = s.file("z.data");
    std::fs::write(&j, "{\"key\":\"j\",\"value\":\"1\"}\n").unwrap();
    std::fs::write(&c, "k,v\nc,2\n").unwrap();
    std::fs::write(&t, "t\t3\n").unwrap();
    let r = s
        .run(&[
            "--json",
            "load",
            "--value-column",
            "v",
            j.to_str().unwrap(),
            c.to_str().unwrap(),
            t.to_str().unwrap(),
        ])
        .expect(0);
    assert_eq!(r.json()["put"], 3);
    assert_eq!(s.contents(), kv(&[("c", "2"), ("j", "1"), ("t", "3")]));
}

#[test]
fn abort_then_resume_with_skip_records() {
    let s = Store::new();
    let f = s.file("in.tsv");
    let mut text = String::new();
    for i in 0..2500 {
        text.push_str(&format!("k{i:04}\tv{i}\n"));
    }
    text.push_str("\tbroken\n");
    for i in 2500..2600 {
        text.push_str(&format!("k{i:04}\tv{i}\n"));
    }
    std::fs::write(&f, &text).unwrap();
    let r = s.run(&[
        "--json",
        "--sync-every-write",
        "load",
        "--sync-every",
        "700",
        f.to_str().unwrap(),
    ]);
    let r = r.expect(3);
    let j = r.json();
    assert_eq!(j["committed"], 2500);
    assert_eq!(j["resume_skip_records"], 2500);
    assert!(r.stderr_text().contains("in.tsv:2501:1: empty key"));
    assert_eq!(s.keys().len(), 2500);
    // Without --json the summary names the resume flag.
    let r = s.run(&["load", f.to_str().unwrap()]).expect(3);
    assert!(
        r.stderr_text().contains("--skip-records 2500"),
        "{}",
        r.stderr_text()
    );
    // Fix the record, resume past what was committed.
    std::fs::write(&f, text.replace("\tbroken\n", "fixed\tnow\n")).unwrap();
    let r = s
        .run(&[
            "--json",
            "load",
            "--skip-records",
            "2500",
            f.to_str().unwrap(),
        ])
        .expect(0);
    assert_eq!(r.json()["skipped_by_request"], 2500);
    assert_eq!(r.json()["put"], 101);
    assert_eq!(s.keys().len(), 2601);
}

#[test]
fn skip_mode_lists_twenty_then_counts() {
    let s = Store::new();
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("k{i}\tv\n\tbad{i}\n"));
    }
    let r = s
        .run_stdin(&["--json", "load", "--on-error", "skip"], text.as_bytes())
        .expect(0);
    let j = r.json();
    assert_eq!(j["bad"], 30);
    assert_eq!(j["put"], 30);
    assert_eq!(j["errors"].as_array().unwrap().len(), 20);
    assert_eq!(j["errors_not_listed"], 10);
    assert_eq!(j["errors"][0], "<stdin>:2:1: empty key");
    assert!(r.stderr_text().contains("... and 10 more bad records"));
}

#[test]
fn quiet_prints_nothing_on_success_and_summary_otherwise() {
    let s = Store::new();
    let r = s.run_stdin(&["-q", "load"], b"a\t1\n").expect(0);
    assert!(r.stderr.is_empty() && r.stdout.is_empty());
    let r = s.run_stdin(&["load"], b"a\t1\n").expect(0);
    assert!(
        r.stderr_text().contains("1 records committed"),
        "{}",
        r.stderr_text()
    );
    assert!(r.stdout.is_empty());
    // --progress on a pipe reports in plain lines; a short load may finish before the first one.
    s.run_stdin(&["load", "--progress"], b"b\t2\n").expect(0);
}

#[test]
fn missing_input_file_is_a_runtime_error() {
    let s = Store::new();
    let r = s.run(&["load", "/nonexistent/file.tsv"]).expect(2);
    assert!(r
        .stderr_text()
        .contains("cannot open /nonexistent/file.tsv"));
}

#[test]
fn dry_run_validates_without_writing() {
    let s = Store::new();
    let r = s
        .run_stdin(&["--json", "load", "--dry-run"], b"a\t1\nb\n\tx\n")
        .expect(3);
    let j = r.json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["committed"], 2);
    assert!(r.stderr_text().contains("<stdin>:3:1: empty key"));
    assert!(!s.path().exists(), "a dry run must not create the store");
}

#[test]
fn empty_inputs_load_nothing_and_succeed() {
    let s = Store::new();
    for format in ["tsv", "csv", "jsonl"] {
        let r = s
            .run_stdin(&["--json", "load", "--format", format], b"")
            .expect(0);
        assert_eq!(r.json()["committed"], 0, "{format}");
    }
    // A CSV with only its header is empty too.
    let r = s
        .run_stdin(&["--json", "load", "--format", "csv"], b"k,v\n")
        .expect(0);
    assert_eq!(r.json()["committed"], 0);
    assert!(s.run(&["-q", "export"]).expect(0).stdout.is_empty());
}

#[test]
fn progress_acknowledges_each_sync_point_with_its_resume_count() {
    let s = Store::new();
    let f = s.file("in.tsv");
    let mut text = String::new();
    for i in 0..2600 {
        text.push_str(&format!("k{i:04}\tv{i}\n"));
    }
    std::fs::write(&f, &text).unwrap();
    let r = s
        .run(&[
            "load",
            "--progress",
            "--sync-every",
            "700",
            "--skip-records",
            "100",
            f.to_str().unwrap(),
        ])
        .expect(0);
    let acks: Vec<String> = r
        .stderr_text()
        .lines()
        .filter(|l| l.starts_with("kvtool: load: synced: "))
        .map(str::to_string)
        .collect();
    // Sync points count written records (skipped ones are not written); the resume count is records read.
    let want: Vec<String> = [(700, 800), (1400, 1500), (2100, 2200)]
        .iter()
        .map(|(c, r)| format!("kvtool: load: synced: {c} records committed and durable; after a crash resume with --skip-records {r}"))
        .collect();
    assert_eq!(acks, want);
    // Without --progress (stderr not a terminal) nothing is acknowledged line by line.
    let r = s
        .run(&["load", "--sync-every", "700", f.to_str().unwrap()])
        .expect(0);
    assert!(!r.stderr_text().contains("synced:"), "{}", r.stderr_text());
    assert_eq!(s.keys().len(), 2600);
}
