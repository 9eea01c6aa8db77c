//! Point commands: `put` (argument, file, stdin), `get` in every output form with missing keys and
//! `--keys-from`, `delete`; and their exit codes.

mod common;

use common::Store;

fn store_with(pairs: &str) -> Store {
    let s = Store::new();
    s.run_stdin(&["-q", "load", "--escape"], pairs.as_bytes())
        .expect(0);
    s
}

#[test]
fn get_one_key_prints_raw_bytes() {
    let s = store_with("bin\t\\x00\\xff\\n\n");
    let r = s.run(&["get", "bin"]).expect(0);
    assert_eq!(r.stdout, b"\x00\xff\n");
}

#[test]
fn get_several_keys_lines_escape_and_json() {
    let s = store_with("a\t1\nb\tline\\nbreak\n");
    assert_eq!(
        s.run(&["get", "a", "b"]).expect(0).stdout,
        b"1\nline\nbreak\n"
    );
    assert_eq!(
        s.run(&["get", "--escape", "a", "b"]).expect(0).stdout,
        b"a\t1\nb\tline\\nbreak\n"
    );
    let r = s.run(&["--json", "get", "a", "b"]).expect(0);
    assert_eq!(
        r.json_lines(),
        vec![
            serde_json::json!({"key":"a","value":"1"}),
            serde_json::json!({"key":"b","value":"line\nbreak"})
        ]
    );
}

#[test]
fn missing_key_exits_1_and_others_are_printed() {
    let s = store_with("a\t1\nc\t3\n");
    let r = s.run(&["get", "a", "nope", "c"]).expect(1);
    assert_eq!(r.stdout, b"1\n3\n");
    assert!(r.stderr_text().contains("key not found: nope"));
    let r = s.run(&["--json", "get", "nope", "a"]).expect(1);
    assert_eq!(
        r.json_lines(),
        vec![
            serde_json::json!({"key":"nope","found":false}),
            serde_json::json!({"key":"a","value":"1"})
        ]
    );
}

#[test]
fn json_get_of_binary_needs_escape() {
    let s = store_with("b\t\\xff\n");
    let r = s.run(&["--json", "get", "b"]).expect(2);
    assert!(r.stderr_text().contains("--escape"));
    let r = s.run(&["--json", "get", "--escape", "b"]).expect(0);
    assert_eq!(
        r.json_lines(),
        vec![serde_json::json!({"key":"Yg==","value":"/w=="})]
    );
}

#[test]
fn keys_from_file_and_stdin() {
    let s = Store::new();
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!("k{i}\tv{i}\n"));
    }
    s.run_stdin(&["-q", "load"], text.as_bytes()).expect(0);
    let keys: String = (0..3000).rev().map(|i| format!("k{i}\n")).collect();
    let f = s.file("keys.txt");
    std::fs::write(&f, &keys).unwrap();
    let r = s
        .run(&["get", "--keys-from", f.to_str().unwrap()])
        .expect(0);
    let want: String = (0..3000).rev().map(|i| format!("v{i}\n")).collect();
    assert_eq!(r.stdout_text(), want);
    let r = s
        .run_stdin(&["get", "--keys-from", "-", "k5"], b"k1\nmissing\n\nk2\n")
        .expect(1);
    assert_eq!(r.stdout_text(), "v5\nv1\nv2\n");
}

#[test]
fn put_from_argument_file_and_stdin() {
    let s = Store::new();
    s.run(&["put", "a", "alpha"]).expect(0);
    let f = s.file("value.bin");
    std::fs::write(&f, b"\x00\x01\xfe\n").unwrap();
    s.run(&["put", "b", "--value-file", f.to_str().unwrap()])
        .expect(0);
    s.run_stdin(&["put", "c", "-"], b"from stdin").expect(0);
    s.run_stdin(&["put", "d", "--value-file", "-"], b"")
        .expect(0);
    s.run(&["put", "--escape", "e\\x00", "t\\tab"]).expect(0);
    assert_eq!(
        s.contents(),
        vec![
            (b"a".to_vec(), b"alpha".to_vec()),
            (b"b".to_vec(), b"\x00\x01\xfe\n".to_vec()),
            (b"c".to_vec(), b"from stdin".to_vec()),
            (b"d".to_vec(), b"".to_vec()),
            (b"e\0".to_vec(), b"t\tab".to_vec()),
        ]
    );
    assert_eq!(s.run(&["put", "k"]).expect(2).stdout, b"");
    let r = s.run(&["put", "", "v"]).expect(2);
    assert!(r.stderr_text().contains("empty key"));
}

#[test]
fn delete_keys_missing_ones_included() {
    let s = store_with("a\t1\nb\t2\nc\t3\n");
    s.run(&["delete", "a", "c", "never"]).expect(0);
    assert_eq!(s.keys(), ["b"]);
    s.run(&["get", "a"]).expect(1);
}

#[test]
fn reading_a_store_that_does_not_exist_is_an_error() {
    let s = Store::new();
    let r = s.run(&["get", "a"]).expect(2);
    assert!(
        r.stderr_text().contains("kvtool: error:"),
        "{}",
        r.stderr_text()
    );
    assert!(!s.path().join("MANIFEST").exists());
}

#[test]
fn io_flags_choose_the_read_path_and_stats_report_it() {
    let s = store_with("a\t1\nb\t2\n");
    for engine in ["pread", "io-uring", "auto"] {
        let r = s
            .run(&["--io-engine", engine, "--direct-io", "all", "get", "a", "b"])
            .expect(0);
        assert_eq!(r.stdout, b"1\n2\n", "--io-engine {engine}");
    }
    let r = s
        .run(&[
            "--json",
            "--io-engine",
            "pread",
            "--direct-io",
            "index,data",
            "--page-cache",
            "1048576",
            "stats",
        ])
        .expect(0);
    let j = r.json();
    assert_eq!(j["io_engine"], "pread");
    assert_eq!(
        j["direct_io"],
        serde_json::json!({"index": true, "hot": false, "data": true})
    );
    assert!(j["page_cache_pages"].as_u64().unwrap() > 0, "{j}");
    let r = s.run(&["--direct-io", "index,ram", "get", "a"]).expect(2);
    assert!(
        r.stderr_text().contains("unknown tier `ram`"),
        "{}",
        r.stderr_text()
    );
}
