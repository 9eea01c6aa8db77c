//! What the kernel measures: a child process's peak RSS and bytes written (`wait4` rusage: `ru_maxrss`
//! and `ru_oublock`, the latter being the task I/O accounting's `write_bytes` ÷ 512, all threads
//! included), a directory's allocated bytes, and the machine description. The one `unsafe` FFI call
//! of the crate lives here.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::result::Machine;

/// A finished child process and what it cost.
#[derive(Debug)]
pub struct Measured {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Peak resident set size, bytes.
    pub peak_rss_bytes: u64,
    /// Bytes it caused to be written to storage.
    pub bytes_written: u64,
}

/// Runs `cmd` to completion, capturing its output, and measures it.
pub fn run_measured(cmd: &mut Command) -> Result<Measured> {
    let prog = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {prog}"))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().context("no stdout pipe")?;
    let mut err = child.stderr.take().context("no stderr pipe")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let mut stdout = Vec::new();
    out.read_to_end(&mut stdout)
        .with_context(|| format!("reading the output of {prog}"))?;
    let stderr = err_reader.join().unwrap_or_default();
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child (std has not waited on it), and both pointers refer to
    // live, writable locals of the right types for the duration of the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if rc != pid {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("waiting for {prog}"));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code,
        peak_rss_bytes: ru.ru_maxrss.max(0) as u64 * 1024,
        bytes_written: ru.ru_oublock.max(0) as u64 * 512,
    })
}

/// Allocated bytes (blocks × 512) of every file under `path`; 0 when it does not exist.
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.blocks() * 512;
    }
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| dir_bytes(&e.path()))
        .sum()
}

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The machine, with the file system that holds `dir`.
pub fn machine(dir: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_bytes = first_line_value(&meminfo, "MemTotal")
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let (mut device, mut fs, mut best) = (String::new(), String::new(), 0);
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 3 && dir.starts_with(f[1]) && f[1].len() >= best {
            best = f[1].len();
            device = f[0].to_string();
            fs = f[2].to_string();
        }
    }
    let git_commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Machine {
        cpu: first_line_value(&cpuinfo, "model name").unwrap_or_default(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_bytes,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        file_system: fs,
        device,
        dir: dir.display().to_string(),
        git_commit,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_writing_child() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let m = run_measured(Command::new("sh").args([
            "-c",
            &format!("head -c 1048576 /dev/zero > {}; echo done", f.display()),
        ]))
        .unwrap();
        assert_eq!(m.code, Some(0));
        assert_eq!(m.stdout.trim(), "done");
        assert!(m.peak_rss_bytes > 0);
        assert!(dir_bytes(dir.path()) >= 1 << 20);
        assert!(machine(dir.path()).cores >= 1);
    }
}
