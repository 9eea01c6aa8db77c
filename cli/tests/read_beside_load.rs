//! `get`, `stats`, `export` and `check` while a `kvtool load` holds the store: they open it read-only
//! (saying so on stderr), see what the load has flushed so far, and never block it; once the load has
//! finished they see everything.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::Store;

fn record(i: u32) -> String {
    format!("k{i:05}\tvalue-{i}-{}\n", "x".repeat((i % 200) as usize))
}

#[test]
fn readers_work_while_a_load_runs() {
    let s = Store::new();
    let mut load = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .arg("--db")
        .arg(s.path())
        .args([
            "--shards",
            "2",
            "--log-capacity",
            "16384",
            "-q",
            "load",
            "-",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn kvtool load");
    let mut input = load.stdin.take().unwrap();
    // Enough records that every shard's small log has been flushed many times.
    let first: String = (0..20_000).map(record).collect();
    input.write_all(first.as_bytes()).unwrap();
    input.flush().unwrap();

    // The load is still running (its stdin is open): wait until a read-only get finds a key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let found = loop {
        let r = s.run(&["get", "k00001"]);
        if r.code == 0 {
            break r;
        }
        assert_eq!(r.code, 1, "get failed: {}", r.stderr_text());
        assert!(
            std::time::Instant::now() < deadline,
            "nothing flushed in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        found.stderr_text().contains("is held by a writer") && found.stderr_text().contains("pid"),
        "{}",
        found.stderr_text()
    );
    assert_eq!(found.stdout_text(), format!("value-1-{}", "x"));

    // Every value a reader returns is the one loaded for its key; absent keys are unflushed ones.
    let keys: Vec<String> = (0..20_000)
        .step_by(97)
        .map(|i| format!("k{i:05}"))
        .collect();
    let mut args = vec!["get", "--json"];
    args.extend(keys.iter().map(String::as_str));
    let r = s.run(&args);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr_text());
    let mut seen = 0;
    for j in r.json_lines() {
        if j["found"] == false {
            continue;
        }
        let k = j["key"].as_str().unwrap();
        let i: u32 = k[1..].parse().unwrap();
        assert_eq!(
            format!("{k}\t{}\n", j["value"].as_str().unwrap()),
            record(i)
        );
        seen += 1;
    }
    assert!(seen > 0);

    let stats = s.run(&["stats", "--json"]).expect(0).json();
    assert!(
        stats["read_only"].is_object(),
        "stats came from a read-only handle"
    );
    assert!(stats["table_keys"].as_u64().unwrap() > 0);
    let check = s.run(&["check"]).expect(0);
    assert!(check.stderr_text().contains("no problems"));
    let export = s.run(&["-q", "export"]).expect(0);
    for line in export.stdout_text().lines() {
        let i: u32 = line[1..6].parse().unwrap();
        assert_eq!(format!("{line}\n"), record(i));
    }

    // The writer was never blocked: it takes more input and finishes.
    let rest: String = (20_000..30_000).map(record).collect();
    input.write_all(rest.as_bytes()).unwrap();
    drop(input);
    assert!(load.wait().unwrap().success());
    let r = s.run(&["get", "k29999"]).expect(0);
    assert!(!r.stderr_text().contains("held by a writer"));
    assert_eq!(s.keys().len(), 30_000);
}
