//! `kvtool batch`: mixed puts, deletes and gets in order, answers as JSON lines, base64 with
//! `--escape`, and a bad line stopping the script with exit 3 after committing what came before.

mod common;

use common::Store;
use serde_json::json;

#[test]
fn mixed_script_answers_in_order() {
    let s = Store::new();
    let script = concat!(
        "{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}\n",
        "{\"op\":\"get\",\"key\":\"a\"}\n",
        "{\"op\":\"put\",\"key\":\"b\",\"value\":{\"x\":[1]}}\n",
        "{\"op\":\"delete\",\"key\":\"a\"}\n",
        "\n",
        "{\"op\":\"get\",\"key\":\"a\"}\n",
        "{\"op\":\"get\",\"key\":\"b\"}\n"
    );
    let r = s.run_stdin(&["batch"], script.as_bytes()).expect(0);
    assert_eq!(
        r.json_lines(),
        vec![
            json!({"key":"a","value":"1"}),
            json!({"key":"a","found":false}),
            json!({"key":"b","value":"{\"x\":[1]}"}),
        ]
    );
    assert_eq!(s.keys(), ["b"]);
}

#[test]
fn batch_from_file_with_base64() {
    let s = Store::new();
    let f = s.file("script.jsonl");
    std::fs::write(
        &f,
        "{\"op\":\"put\",\"key\":\"AA==\",\"value\":\"/w==\"}\n{\"op\":\"get\",\"key\":\"AA==\"}\n",
    )
    .unwrap();
    let r = s.run(&["batch", "--escape", f.to_str().unwrap()]).expect(0);
    assert_eq!(r.json_lines(), vec![json!({"key":"AA==","value":"/w=="})]);
    assert_eq!(s.contents(), vec![(vec![0], vec![255])]);
}

#[test]
fn bad_line_stops_with_exit_3_after_committing() {
    let s = Store::new();
    let script = concat!(
        "{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}\n",
        "{\"op\":\"put\",\"key\":\"b\",\"value\":\"2\"}\n",
        "{\"op\":\"frobnicate\",\"key\":\"c\"}\n",
        "{\"op\":\"put\",\"key\":\"d\",\"value\":\"4\"}\n"
    );
    let r = s.run_stdin(&["batch"], script.as_bytes()).expect(3);
    assert!(r
        .stderr_text()
        .contains("<stdin>:3: unknown op \"frobnicate\" (expected put, delete or get)"));
    assert_eq!(s.keys(), ["a", "b"]);
    let r = s
        .run_stdin(&["batch"], b"{\"op\":\"get\",\"key\":\"a\"\n")
        .expect(3);
    assert!(
        r.stderr_text().contains("<stdin>:1:21: invalid JSON"),
        "{}",
        r.stderr_text()
    );
    let r = s
        .run_stdin(&["batch"], b"{\"op\":\"put\",\"key\":\"a\"}\n")
        .expect(3);
    assert!(r
        .stderr_text()
        .contains("<stdin>:1: no \"value\" field in a put"));
}

#[test]
fn a_binary_answer_without_escape_stops_with_writes_kept() {
    let s = Store::new();
    s.run_stdin(&["-q", "load", "--escape"], b"bin\t\\xff\n")
        .expect(0);
    let script = concat!(
        "{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}\n",
        "{\"op\":\"get\",\"key\":\"bin\"}\n",
        "{\"op\":\"put\",\"key\":\"b\",\"value\":\"2\"}\n"
    );
    let r = s.run_stdin(&["batch"], script.as_bytes()).expect(2);
    assert!(
        r.stderr_text().contains("add --escape"),
        "{}",
        r.stderr_text()
    );
    assert_eq!(s.keys(), ["a", "bin"]);
    let r = s
        .run_stdin(
            &["batch", "--escape"],
            b"{\"op\":\"get\",\"key\":\"Ymlu\"}\n",
        )
        .expect(0);
    assert_eq!(r.json_lines(), vec![json!({"key":"Ymlu","value":"/w=="})]);
}
