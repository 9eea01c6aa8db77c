//! Operator commands: `stats` (text and JSON with derived figures and verdicts), `check` (exit codes
//! and JSON report), `compact` (dead bytes gone, keys kept), `rebalance` (new shard count, keys kept),
//! and the `simulate` entry point.

mod common;

use common::Store;

fn loaded() -> Store {
    let s = Store::new();
    let text: String = (0..5000)
        .map(|i| format!("k{i}\t{}\n", "v".repeat(100)))
        .collect();
    s.run_stdin(&["-q", "load"], text.as_bytes()).expect(0);
    s.run(&["delete", "k1", "k2"]).expect(0);
    s
}

#[test]
fn stats_json_has_counts_shards_and_verdicts() {
    let s = loaded();
    let j = s.run(&["stats", "--json"]).expect(0).json();
    assert_eq!(j["live_keys"], 4998);
    assert_eq!(j["shards"], 2);
    let per_shard = j["per_shard"].as_array().expect("per_shard");
    assert_eq!(per_shard.len(), 2);
    let sum: u64 = per_shard
        .iter()
        .map(|p| p["live_keys"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 4998);
    for field in ["shard_key_max_deviation", "disk_bytes", "tiers"] {
        assert!(j.get(field).is_some(), "no {field}");
    }
    for field in [
        "dead_bytes",
        "dead_fraction",
        "space_amplification",
        "ssd_bytes_written_total",
    ] {
        assert!(j["derived"].get(field).is_some(), "no derived.{field}");
    }
    assert!(j["verdicts"].is_array());
}

#[test]
fn stats_text_report() {
    let s = loaded();
    let r = s.run(&["stats"]).expect(0);
    let t = r.stdout_text();
    assert!(t.starts_with("keys               4998\n"), "{t}");
    assert!(t.contains("verdict: "));
    assert!(t.contains("shard"));
}

#[test]
fn check_healthy_store() {
    let s = loaded();
    let r = s.run(&["check"]).expect(0);
    assert!(r.stderr_text().contains("no problems"));
    let j = s.run(&["--json", "check"]).expect(0).json();
    assert_eq!(j["problems"], serde_json::json!([]));
    assert!(j.get("pages_checked").is_some());
}

#[test]
fn check_without_a_store_could_not_run() {
    let s = Store::new();
    s.run(&["check"]).expect(2);
}

#[test]
fn compact_drops_dead_bytes_and_keeps_every_key() {
    let s = Store::new();
    let text: String = (0..6000)
        .map(|i| format!("k{i}\t{}\n", "v".repeat(100)))
        .collect();
    s.run_stdin(&["-q", "load"], text.as_bytes()).expect(0);
    let dels: String = (0..4500).map(|i| format!("k{i}\n")).collect();
    s.run_stdin(&["-q", "load"], dels.as_bytes()).expect(0);
    let before = s.run(&["--json", "stats"]).expect(0).json();
    assert!(
        before["derived"]["dead_fraction"].as_f64().unwrap() > 0.5,
        "{}",
        before["derived"]
    );
    assert_eq!(
        before["verdicts"][0]["action"], "compact",
        "{}",
        before["verdicts"]
    );
    let keys_before = s.contents();
    assert_eq!(keys_before.len(), 1500);

    let r = s.run(&["compact"]).expect(0);
    assert!(
        r.stderr_text().contains("2 of 2 shards compacted"),
        "{}",
        r.stderr_text()
    );
    let after = s.run(&["--json", "stats"]).expect(0).json();
    assert_eq!(after["derived"]["dead_bytes"], 0);
    assert_eq!(after["verdicts"], serde_json::json!([]));
    assert!(
        after["space_amplification"].as_f64().unwrap()
            < before["space_amplification"].as_f64().unwrap()
    );
    assert_eq!(s.contents(), keys_before);
    s.run(&["check"]).expect(0);

    // Nothing left to do: a second compaction rewrites nothing; --shard forces one shard.
    let j = s.run(&["--json", "compact"]).expect(0).json();
    assert_eq!(j["compacted_shards"], 0);
    let j = s
        .run(&["--json", "compact", "--shard", "1"])
        .expect(0)
        .json();
    assert_eq!(j["shards"].as_array().unwrap().len(), 1);
    assert_eq!(j["shards"][0]["shard"], 1);
    assert_eq!(j["compacted_shards"], 1);
    let r = s.run(&["compact", "--shard", "9"]).expect(2);
    assert!(
        r.stderr_text().contains("shard 9 does not exist"),
        "{}",
        r.stderr_text()
    );
    assert_eq!(s.contents(), keys_before);
}

#[test]
fn rebalance_changes_the_shard_count_and_keeps_every_key() {
    let s = loaded();
    let before = s.contents();
    let r = s.run(&["rebalance"]).expect(0);
    assert!(
        r.stderr_text().contains("2 -> 4 shards, 4998 keys moved"),
        "{}",
        r.stderr_text()
    );
    assert_eq!(s.run(&["--json", "stats"]).expect(0).json()["shards"], 4);
    let j = s
        .run(&["--json", "rebalance", "--shards", "1"])
        .expect(0)
        .json();
    assert_eq!(j["old_shards"], 4);
    assert_eq!(j["new_shards"], 1);
    assert_eq!(j["keys"], 4998);
    assert_eq!(j["max_deviation_after"], 0.0);
    let stats = s.run(&["--json", "stats"]).expect(0).json();
    assert_eq!(stats["shards"], 1);
    assert_eq!(stats["per_shard"].as_array().unwrap().len(), 1);
    assert_eq!(s.contents(), before);
    s.run(&["check"]).expect(0);
    let r = s.run(&["rebalance", "--shards", "3"]).expect(2);
    assert!(r.stderr_text().contains("power of two"));
    assert_eq!(s.contents(), before);
}

#[test]
fn simulate_entry_point_exists() {
    let s = Store::new();
    let r = s.run(&["simulate", "--help"]).expect(0);
    assert!(r.stdout_text().contains("simulate"));
}

/// The store's data files (`data*.tkv` anywhere under `dir`).
fn data_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            data_files(&p, out);
        } else if name.starts_with("data") && name.ends_with(".tkv") {
            out.push(p);
        }
    }
}

#[test]
fn check_names_a_corrupt_record_and_exits_1() {
    let s = loaded();
    let mut data = Vec::new();
    data_files(&s.path(), &mut data);
    let victim = data
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a data file");
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0xff;
    }
    std::fs::write(victim, &bytes).unwrap();
    let r = s.run(&["check"]).expect(1);
    let victim_name = victim.display().to_string();
    assert!(
        r.stderr_text()
            .lines()
            .any(|l| l.starts_with(&format!("{victim_name}:"))),
        "{}",
        r.stderr_text()
    );
    let j = s.run(&["--json", "check"]).expect(1).json();
    let problems = j["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert_eq!(problems[0]["file"], victim_name.as_str());
    assert!(problems[0]["offset"].as_u64().unwrap() <= mid as u64);
}
