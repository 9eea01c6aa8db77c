//! The CI smoke run: the built `kvbench` binary runs a tiny workload on tierkv (plus redb when the
//! crate is built with `--features redb`) and its JSON has the promised shape. Checks that the harness
//! works, not how fast anything is. Also: a bad workload file gets an error naming file and field.

use std::path::PathBuf;
use std::process::Command;

fn workloads() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench-data/workloads")
}

fn kvbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kvbench"))
}

#[test]
fn tiny_run_prints_json_with_every_field() {
    let engines = if cfg!(feature = "redb") {
        "tierkv,redb"
    } else {
        "tierkv"
    };
    let dir = tempfile::tempdir().unwrap();
    let out = kvbench()
        .args(["run", "--workload"])
        .arg(workloads().join("get-uniform.json"))
        .arg("--workload")
        .arg(workloads().join("load.json"))
        .args(["--engines", engines, "--keys", "3000", "--ops", "3000"])
        .args(["--value-size", "100", "--json", "--dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kvbench failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!v["machine"]["kernel"].as_str().unwrap().is_empty());
    let results = v["results"].as_array().unwrap();
    let n_engines = engines.split(',').count();
    assert_eq!(results.len(), 2 * n_engines, "{v:#}");
    for r in results {
        for f in [
            "engine",
            "workload",
            "ops_per_sec",
            "p50_us",
            "p99_us",
            "p999_us",
            "bytes_written",
            "disk_bytes",
            "peak_rss_bytes",
        ] {
            assert!(!r[f].is_null(), "{f} missing in {r:#}");
        }
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 0);
        if r["workload"] == "get-uniform" {
            assert_eq!(r["gets"], 3000);
            assert_eq!(r["gets_found"], 3000, "every present key is found: {r:#}");
        }
    }
    let tk = results.iter().find(|r| r["engine"] == "tierkv").unwrap();
    assert!(tk["engine_counters"]["reads_per_get"].as_f64().is_some());
    assert!(tk["dram_bytes_per_key"].as_f64().unwrap() > 0.0);
    // Saved: the JSON, the table and both charts.
    let saved: Vec<String> = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for suffix in [".json", ".md", "-ops.svg", "-latency.svg"] {
        assert!(saved.iter().any(|f| f.ends_with(suffix)), "{saved:?}");
    }
}

#[test]
fn bad_workload_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(workloads().join("ycsb-a.json")).unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, spec.replace("\"get\": 0.5", "\"get\": 0.9")).unwrap();
    let out = kvbench()
        .args(["run", "--workload"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json") && err.contains("mix"), "{err}");

    let out = kvbench()
        .args(["run", "--engines", "nosuch", "--workload"])
        .arg(workloads().join("load.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown engine `nosuch`"));
}

/// `kvbench io` without fio: the device-read figures come from the engine's counters, so they are
/// exact on any machine; throughput is only checked to be positive.
#[test]
fn io_mode_counts_device_reads_per_get() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = kvbench()
        .args([
            "io",
            "--keys",
            "20000",
            "--depths",
            "1,32",
            "--seconds",
            "0.2",
        ])
        .args([
            "--repeat",
            "1",
            "--sample-gets",
            "2000",
            "--no-fio",
            "--json",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kvbench io failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |name: &str| {
        v[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} in {v:#}"))
    };
    assert!((1.0..=2.05).contains(&f("reads_per_present_get")), "{v:#}");
    assert!(f("reads_per_present_get_index_cached") <= 1.05, "{v:#}");
    assert!(f("reads_per_absent_get") <= 0.02, "{v:#}");
    assert!(v["data_file_bytes"].as_u64().unwrap() > 20000 * 100);
    let depths = v["depths"].as_array().unwrap();
    assert_eq!(depths.len(), 2);
    for d in depths {
        assert!(d["keys_per_sec"].as_f64().unwrap() > 0.0, "{d}");
        assert!(d["device_reads_per_key"].as_f64().unwrap() >= 1.0, "{d}");
        assert!(d["fio_iops"].is_null());
    }
}
