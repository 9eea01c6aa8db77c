//! Helpers shared by the integration tests: run the built `kvtool` binary against a fresh store,
//! with stdin, and look at its exit code, stdout and stderr.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary store directory that disappears with the value.
pub struct Store {
    pub dir: tempfile::TempDir,
}

impl Store {
    pub fn new() -> Store {
        Store {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The store path (a subdirectory, so the store is created by kvtool).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    /// A file path inside the temp dir (outside the store).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kvtool --db STORE --shards 2 ARGS...`
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(None, args, None)
    }

    /// Like [`Store::run`], with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        self.run_in(None, args, Some(input))
    }

    /// Runs in directory `cwd`.
    pub fn run_in(&self, cwd: Option<&Path>, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut full: Vec<std::ffi::OsString> = vec![
            "--db".into(),
            self.path().into_os_string(),
            "--shards".into(),
            "2".into(),
        ];
        full.extend(args.iter().map(|a| a.into()));
        run_kvtool(cwd, &full, input)
    }

    /// Every key and value in the store, via `export --escape`, sorted.
    pub fn contents(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.run(&["-q", "export", "--format", "jsonl", "--escape"]);
        assert_eq!(r.code, 0, "export failed: {}", r.stderr_text());
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = r
            .stdout_text()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("export line is JSON");
                (b64(&v["key"]), b64(&v["value"]))
            })
            .collect();
        out.sort();
        out
    }

    /// The sorted keys of the store, as text.
    pub fn keys(&self) -> Vec<String> {
        self.contents()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).expect("UTF-8 key"))
            .collect()
    }
}

fn b64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("string"))
        .expect("base64")
}

/// Runs kvtool with exactly `args`.
pub fn run_kvtool(cwd: Option<&Path>, args: &[std::ffi::OsString], input: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvtool"));
    cmd.args(args)
        .env_remove("KVTOOL_DB")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn kvtool");
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let out = child.wait_with_output().expect("wait for kvtool");
    Run::from(out)
}

/// What a run produced.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().expect("exited normally"),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr_text()
            )
        })
    }

    /// stdout parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout_text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }

    /// Asserts the exit code, showing stderr when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr_text(),
            String::from_utf8_lossy(&self.stdout)
        );
        self
    }
}
