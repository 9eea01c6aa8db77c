//! The process-kill loop (issue 8, point 4): the built `kvtool` runs `load`, `compact` and `rebalance`
//! on one real store and is `kill -9`ed at a random moment of each run; after every cycle an oracle
//! checks the reopened store through `kvtool` itself (`stats`, `check`, `export`, `get`).
//!
//! What the oracle demands, per cycle (the store before the cycle is the state the previous cycle
//! verified):
//! - a load that exited 0 left exactly the old state plus every record of its input; one that stopped
//!   on its planted bad record (exit 3) left the old state plus every record before it;
//! - a killed load left, **in every shard**, the old state plus a prefix of that shard's records of the
//!   input (`kvtool load` buffers each shard's log separately, so the cut may differ between shards, see
//!   docs/cli.md; with more writers than shards, each writer's part of a shard), and that prefix reaches at least the last sync point the load acknowledged on stderr
//!   (`--sync-every` with `--progress`). So nothing acknowledged is lost, no value is one that was never
//!   written for its key (values encode key, cycle and record number), and no record is kept while an
//!   earlier one of its shard is lost;
//! - a compact or rebalance, killed or not, lost and changed nothing; a rebalance leaves the old or the
//!   new shard count, a finished one the new; after some killed loads a compact or rebalance runs at
//!   once, unchecked, so its open is the recovery (and may be killed too): the load's rules still hold;
//! - `kvtool check` exits 0, `export` is the oracle's state, and `get` agrees on sampled present and
//!   absent keys; no run exits with anything but 0, its expected 3, or SIGKILL (a panic is 101).
//!
//! `KVTOOL_KILL_CYCLES` (default 200) sets the number of cycles, `KVTOOL_KILL_SEED` the seed (the
//! operations and their parameters follow from it; kill moments follow the clock),
//! `KVTOOL_KILL_VERBOSE=1` prints a line per cycle. `tools/kill-loop.sh` runs the long mode. On a
//! failure the store, the failing cycle's input and the log are kept and their path is printed.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;
use rand::{Rng, SeedableRng};
use tierkv::hash::KeyHash;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// One record of a load input: a put (`Some(value)`) or a delete (`None`).
type Op = (Vec<u8>, Option<Vec<u8>>);

/// Distinct keys the loads draw from: small enough that loads overwrite and delete each other's keys.
const KEYS: u32 = 4000;

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// The value of record `rec` of cycle `cycle` for `key`: it names all three, so a value that lands on
/// the wrong key or comes from the wrong record can never pass for the right one. Mostly under a page,
/// sometimes several pages (values of a page or more take the data file's extent path).
fn value(key: &[u8], cycle: u64, rec: usize, rng: &mut SmallRng) -> Vec<u8> {
    let len = if rng.gen_bool(0.05) {
        rng.gen_range(4096..12_000)
    } else {
        rng.gen_range(0..1500)
    };
    let mut v = format!("{}:c{cycle}:r{rec}:", String::from_utf8_lossy(key)).into_bytes();
    let fill = b'a' + ((cycle as usize + rec) % 26) as u8;
    v.resize(v.len() + len, fill);
    v
}

/// The kvtool processes of the loop, counted by kind and outcome.
#[derive(Debug, Default)]
struct Counts {
    loads_done: u64,
    loads_aborted: u64,
    loads_killed: u64,
    /// Killed loads that had acknowledged at least one sync point.
    loads_killed_after_ack: u64,
    compacts_done: u64,
    compacts_killed: u64,
    rebalances_done: u64,
    rebalances_killed: u64,
    /// Killed rebalances after which the store had the new layout (the kill came after the switch).
    rebalances_killed_switched: u64,
    records_written: u64,
    /// Sum over killed loads of the records written minus the records that survived: what the kills cut.
    records_cut: u64,
    /// Cycles where a compact or rebalance ran right after a killed load, with no check in between.
    chained: u64,
}

/// What one cycle runs.
enum Job {
    Load {
        ops: Vec<Op>,
        /// The planted bad record comes after `ops` (the load stops there with exit 3).
        bad: bool,
        sync_every: Option<u64>,
        /// `--writers`: may exceed the shard count, and then several writers share a shard's log.
        writers: u32,
        batch: u32,
    },
    Compact,
    Rebalance {
        to: u32,
    },
}

impl Job {
    fn kind(&self) -> usize {
        match self {
            Job::Load { .. } => 0,
            Job::Compact => 1,
            Job::Rebalance { .. } => 2,
        }
    }
}

/// How a kvtool run ended.
struct Ended {
    status: ExitStatus,
    stderr: String,
    /// The largest `--skip-records` a completed `synced:` line acknowledged (0 if none).
    acked: u64,
    elapsed: Duration,
}

impl Ended {
    fn killed(&self) -> bool {
        self.status.signal() == Some(SIGKILL)
    }
}

const SIGKILL: i32 = 9;

struct Loop {
    dir: PathBuf,
    store: PathBuf,
    rng: SmallRng,
    model: Model,
    shards: u32,
    counts: Counts,
    /// Typical run time per job kind, to spread the kill moments over the whole run.
    typical: [Duration; 3],
    log: std::fs::File,
    verbose: bool,
}

impl Loop {
    fn kvtool(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kvtool"));
        c.env_remove("KVTOOL_DB").arg("--db").arg(&self.store);
        c
    }

    /// Runs kvtool to the end (the checking commands) and returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, Vec<u8>, String) {
        let out = self
            .kvtool()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn kvtool");
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("kvtool {args:?} died of signal {:?}", out.status.signal()));
        (
            code,
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn plan(&mut self, cycle: u64) -> Job {
        let r: f64 = self.rng.gen();
        if r < 0.6 {
            let n = if self.rng.gen_bool(0.1) {
                self.rng.gen_range(8000..25_000)
            } else {
                self.rng.gen_range(1..8000)
            };
            let ops = (0..n)
                .map(|rec| {
                    let k = key(self.rng.gen_range(0..KEYS));
                    if self.rng.gen_bool(0.12) {
                        (k, None)
                    } else {
                        let v = value(&k, cycle, rec, &mut self.rng);
                        (k, Some(v))
                    }
                })
                .collect();
            Job::Load {
                ops,
                bad: self.rng.gen_bool(0.08),
                sync_every: self
                    .rng
                    .gen_bool(0.75)
                    .then(|| self.rng.gen_range(50..3000)),
                writers: *[1u32, 2, 4].choose(&mut self.rng).unwrap(),
                batch: *[1u32, 10, 100, 1000].choose(&mut self.rng).unwrap(),
            }
        } else if r < 0.8 {
            Job::Compact
        } else {
            self.rebalance_job()
        }
    }

    fn rebalance_job(&mut self) -> Job {
        let choices: Vec<u32> = [1, 2, 4, 8, 16]
            .into_iter()
            .filter(|&n| n != self.shards)
            .collect();
        Job::Rebalance {
            to: *choices.choose(&mut self.rng).unwrap(),
        }
    }

    /// Session options: a small log so flushes (and their back-pressure) run all through a load.
    fn session_args(&mut self) -> Vec<String> {
        let mut a = Vec::new();
        a.push("--log-capacity".into());
        a.push(
            [16u64 << 10, 64 << 10, 256 << 10, 4 << 20]
                .choose(&mut self.rng)
                .unwrap()
                .to_string(),
        );
        if self.rng.gen_bool(0.3) {
            a.push("--hot-capacity".into());
            a.push((256u64 << 10).to_string());
        }
        if self.rng.gen_bool(0.2) {
            a.push("--no-background-flush".into());
        }
        a
    }

    /// Starts the job and kills it at a random moment within about its usual run time.
    fn execute(&mut self, job: &Job) -> Ended {
        let session = self.session_args();
        let mut cmd = self.kvtool();
        cmd.args(&session);
        let input = self.dir.join("input.tsv");
        match job {
            Job::Load {
                ops,
                bad,
                sync_every,
                writers,
                batch,
            } => {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
                for (k, v) in ops {
                    f.write_all(k).unwrap();
                    if let Some(v) = v {
                        f.write_all(b"\t").unwrap();
                        f.write_all(v).unwrap();
                    }
                    f.write_all(b"\n").unwrap();
                }
                if *bad {
                    // An empty key: the load commits and syncs everything before it and exits 3.
                    f.write_all(b"\tplanted bad record\n").unwrap();
                    for i in 0..50 {
                        writeln!(f, "after-bad-{i}\tnever written").unwrap();
                    }
                }
                f.flush().unwrap();
                drop(f);
                cmd.arg("load").arg(&input).arg("--progress");
                if let Some(n) = sync_every {
                    cmd.arg("--sync-every").arg(n.to_string());
                }
                cmd.args(["--writers", &writers.to_string()]);
                cmd.args(["--batch-size", &batch.to_string()]);
            }
            Job::Compact => {
                if self.rng.gen_bool(0.5) {
                    let shard = self.rng.gen_range(0..self.shards).to_string();
                    cmd.args(["compact", "--shard", &shard]);
                } else {
                    // Compact every shard with any dead bytes at all.
                    cmd.args(["--compact-dead-fraction", "0.0001", "compact"]);
                }
            }
            Job::Rebalance { to } => {
                cmd.args(["rebalance", "--shards", &to.to_string()]);
            }
        }
        let typical = self.typical[job.kind()];
        // Mostly within the usual run time, so most runs die in the middle; some runs are let finish.
        let kill_after = if self.rng.gen_bool(0.1) {
            None
        } else {
            Some(typical.mul_f64(self.rng.gen_range(0.0..1.1)))
        };
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kvtool");
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut text = String::new();
            let mut acked = 0u64;
            let mut line = Vec::new();
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = String::from_utf8_lossy(&line);
                text.push_str(&l);
                // Only a whole line is an acknowledgement (a kill can cut a line short).
                if l.ends_with('\n') && l.starts_with("kvtool: load: synced: ") {
                    let n = l
                        .trim_end()
                        .rsplit(' ')
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .expect("a synced line ends with its --skip-records count");
                    acked = acked.max(n);
                }
            }
            (text, acked)
        });
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if kill_after.is_some_and(|k| start.elapsed() >= k) {
                // SIGKILL; a child that exited meanwhile is reaped as it ended.
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_micros(300));
        };
        let elapsed = start.elapsed();
        let (stderr, acked) = reader.join().unwrap();
        let ended = Ended {
            status,
            stderr,
            acked,
            elapsed,
        };
        if !ended.killed() {
            // Learn the run time of this kind of job from the runs that finished.
            let t = &mut self.typical[job.kind()];
            *t = (*t * 3 + elapsed) / 4;
        }
        ended
    }

    /// Checks the store after one cycle — one run, or a killed load and the maintenance run that
    /// followed it without a check between (so that run's open recovers the killed load's logs, and
    /// may itself be killed while doing so) — and makes its contents the next cycle's starting state.
    fn verify(&mut self, cycle: u64, runs: &[(Job, Ended)]) -> Result<(), String> {
        for (job, ended) in runs {
            let want = match job {
                Job::Load { bad: true, .. } => 3,
                _ => 0,
            };
            if !ended.killed() && ended.status.code() != Some(want) {
                return Err(format!(
                    "kvtool exited with {:?} (signal {:?}), expected {want} or SIGKILL; stderr:\n{}",
                    ended.status.code(),
                    ended.status.signal(),
                    ended.stderr
                ));
            }
        }

        let (code, out, err) = self.run(&["--json", "stats"]);
        if code != 0 {
            return Err(format!("stats after the cycle exited {code}: {err}"));
        }
        let stats: serde_json::Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
        let shards = stats["shards"].as_u64().ok_or("stats has no shard count")? as u32;
        let (code, _, err) = self.run(&["check"]);
        if code != 0 {
            return Err(format!("kvtool check exited {code}:\n{err}"));
        }
        let found = self.export()?;
        let pre = &self.model;

        // Contents: only a load changes them; compact and rebalance, killed or not, change nothing.
        match &runs[0] {
            (Job::Load { ops, writers, .. }, ended) => {
                // Records reach a shard's log in input order from each writer: the unit that keeps
                // a prefix is the shard, or the writer's part of it when writers outnumber shards.
                let bits = self.shards.trailing_zeros().max(writers.trailing_zeros());
                if ended.killed() {
                    let cut = check_killed_load(pre, ops, ended.acked as usize, bits, &found)?;
                    self.counts.loads_killed += 1;
                    self.counts.loads_killed_after_ack += u64::from(ended.acked > 0);
                    self.counts.records_cut += cut;
                } else {
                    let mut want = pre.clone();
                    apply(&mut want, ops);
                    if found != want {
                        return Err(format!(
                            "a completed load (exit {:?}) left a store that is not the old state plus its input:\n{}",
                            ended.status.code(),
                            diff(&want, &found, pre, ops)
                        ));
                    }
                    match ended.status.code() {
                        Some(3) => self.counts.loads_aborted += 1,
                        _ => self.counts.loads_done += 1,
                    }
                }
                self.counts.records_written += ops.len() as u64;
            }
            (_, ended) => {
                if &found != pre {
                    return Err(format!(
                        "a {} compact/rebalance changed the contents:\n{}",
                        if ended.killed() {
                            "killed"
                        } else {
                            "completed"
                        },
                        diff(pre, &found, pre, &[])
                    ));
                }
            }
        }

        // Layout: a rebalance that finished leaves its count, a killed one the old or the new.
        let mut layouts = vec![self.shards];
        for (job, ended) in runs {
            let killed = ended.killed();
            match job {
                Job::Load { .. } => {}
                Job::Compact if killed => self.counts.compacts_killed += 1,
                Job::Compact => self.counts.compacts_done += 1,
                Job::Rebalance { to } if killed => {
                    layouts.push(*to);
                    self.counts.rebalances_killed += 1;
                    self.counts.rebalances_killed_switched += u64::from(shards == *to);
                }
                Job::Rebalance { to } => {
                    layouts = vec![*to];
                    self.counts.rebalances_done += 1;
                }
            }
        }
        if !layouts.contains(&shards) {
            return Err(format!(
                "the store has {shards} shards; after {} shards and these runs it may have only {layouts:?}",
                self.shards
            ));
        }
        if runs.len() > 1 {
            self.counts.chained += 1;
        }
        self.check_gets(&found)?;
        if self.verbose {
            let what: Vec<String> = runs
                .iter()
                .map(|(job, ended)| {
                    format!(
                        "{} {} after {:?} (acked {})",
                        ["load", "compact", "rebalance"][job.kind()],
                        if ended.killed() { "killed" } else { "finished" },
                        ended.elapsed,
                        ended.acked
                    )
                })
                .collect();
            eprintln!(
                "cycle {cycle}: {}; {} keys, {shards} shards",
                what.join(", then "),
                found.len()
            );
        }
        self.model = found;
        self.shards = shards;
        Ok(())
    }

    fn export(&self) -> Result<Model, String> {
        let (code, out, err) = self.run(&["-q", "export", "--format", "jsonl", "--escape"]);
        if code != 0 {
            return Err(format!("export exited {code}: {err}"));
        }
        let mut m = Model::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            let k = b64(&v["key"]);
            if m.insert(k.clone(), b64(&v["value"])).is_some() {
                return Err(format!(
                    "export lists key {:?} twice",
                    String::from_utf8_lossy(&k)
                ));
            }
        }
        Ok(m)
    }

    /// `kvtool get` of some present and some absent keys agrees with the export.
    fn check_gets(&mut self, found: &Model) -> Result<(), String> {
        let keys: Vec<Vec<u8>> = (0..48).map(|_| key(self.rng.gen_range(0..KEYS))).collect();
        let mut args = vec!["--json".to_string(), "get".to_string()];
        args.extend(keys.iter().map(|k| String::from_utf8(k.clone()).unwrap()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = self.run(&args);
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        if lines.len() != keys.len() {
            return Err(format!(
                "get printed {} lines for {} keys: {err}",
                lines.len(),
                keys.len()
            ));
        }
        let mut missing = false;
        for (k, l) in keys.iter().zip(&lines) {
            let got = l["value"].as_str().map(|s| s.as_bytes().to_vec());
            missing |= got.is_none();
            if l["key"].as_str().map(str::as_bytes) != Some(k.as_slice())
                || got.as_ref() != found.get(k)
            {
                return Err(format!(
                    "get {:?} gave {l} but export has {:?}",
                    String::from_utf8_lossy(k),
                    found
                        .get(k)
                        .map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned())
                ));
            }
        }
        if code != i32::from(missing) {
            return Err(format!(
                "get exited {code} (missing keys: {missing}): {err}"
            ));
        }
        Ok(())
    }
}

fn b64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("string"))
        .expect("base64")
}

fn apply(m: &mut Model, ops: &[Op]) {
    for (k, v) in ops {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
}

fn shard_of(key: &[u8], bits: u32) -> usize {
    KeyHash::of(key).shard(bits) as usize
}

/// A killed load: in every part (the keys whose hash starts with the same `bits` bits) the store must
/// be the old state plus a prefix of that part's records, at least as long as the acknowledged records
/// (the `acked` first records of the input) hold for that part. Returns how many records the kill cut (written but not kept).
fn check_killed_load(
    pre: &Model,
    ops: &[Op],
    acked: usize,
    bits: u32,
    found: &Model,
) -> Result<u64, String> {
    let n = 1usize << bits;
    let mut per_shard: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, (k, _)) in ops.iter().enumerate() {
        per_shard[shard_of(k, bits)].push(i);
    }
    let split = |m: &Model| {
        let mut v: Vec<Model> = vec![Model::new(); n];
        for (k, val) in m {
            v[shard_of(k, bits)].insert(k.clone(), val.clone());
        }
        v
    };
    let pre_s = split(pre);
    let found_s = split(found);
    let mut cut = 0u64;
    for s in 0..n {
        let idx = &per_shard[s];
        let must = idx.iter().take_while(|&&i| i < acked).count();
        let mut model = pre_s[s].clone();
        let f = &found_s[s];
        let mut mismatches = model.iter().filter(|(k, v)| f.get(*k) != Some(*v)).count()
            + f.keys().filter(|k| !model.contains_key(*k)).count();
        let mut kept = None;
        for p in 0..=idx.len() {
            if mismatches == 0 && p >= must {
                kept = Some(p);
                break;
            }
            if p == idx.len() {
                break;
            }
            let (k, v) = &ops[idx[p]];
            let before = model.get(k) == f.get(k);
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
            let after = model.get(k) == f.get(k);
            match (before, after) {
                (true, false) => mismatches += 1,
                (false, true) => mismatches -= 1,
                _ => {}
            }
        }
        match kept {
            Some(p) => cut += (idx.len() - p) as u64,
            None => {
                // The closest admissible cut, to say what differs there.
                let mut best = (usize::MAX, must);
                let mut model = pre_s[s].clone();
                let mut shard_ops = Vec::new();
                for p in 0..=idx.len() {
                    if p >= must {
                        let d = model.iter().filter(|(k, v)| f.get(*k) != Some(*v)).count()
                            + f.keys().filter(|k| !model.contains_key(*k)).count();
                        if d < best.0 {
                            best = (d, p);
                        }
                    }
                    if p < idx.len() {
                        let op = ops[idx[p]].clone();
                        apply(&mut model, std::slice::from_ref(&op));
                        shard_ops.push(op);
                    }
                }
                let mut want = pre_s[s].clone();
                apply(&mut want, &shard_ops[..best.1]);
                return Err(format!(
                    "killed load: part {s} of {n} (top hash bits) is no prefix of its {} records at or after the {must} acknowledged \
                     (input acknowledged through record {acked}); closest cut {} with {} differences:\n{}",
                    idx.len(),
                    best.1,
                    best.0,
                    diff(&want, f, &pre_s[s], &shard_ops)
                ));
            }
        }
    }
    Ok(cut)
}

/// Up to 10 keys where `found` differs from `want`, each classified: lost, wrong value (never written
/// for that key), or a value from another point of the history.
fn diff(want: &Model, found: &Model, pre: &Model, ops: &[Op]) -> String {
    let short = |v: Option<&Vec<u8>>| match v {
        None => "absent".to_string(),
        Some(v) => format!("{:?}", String::from_utf8_lossy(&v[..v.len().min(32)])),
    };
    let mut keys: Vec<&Vec<u8>> = want
        .keys()
        .chain(found.keys())
        .filter(|k| want.get(*k) != found.get(*k))
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = format!("{} keys differ\n", keys.len());
    for k in keys.iter().take(10) {
        let f = found.get(*k);
        let written = f.is_some_and(|f| {
            pre.get(*k) == Some(f)
                || ops
                    .iter()
                    .any(|(ok, ov)| ok == *k && ov.as_ref() == Some(f))
        });
        let what = match (want.get(*k), f) {
            (Some(_), None) => "LOST",
            (_, Some(_)) if !written => "WRONG VALUE (never written for this key)",
            _ => "a value from another point of the history (a newer write lost, or a later one kept out of order)",
        };
        out += &format!(
            "  {:?}: want {} found {} — {what}\n",
            String::from_utf8_lossy(k),
            short(want.get(*k)),
            short(f)
        );
    }
    out
}

/// Runs `cycles` kill cycles with `seed`; panics with the kept store's path on the first failure.
fn kill_loop(cycles: u64, seed: u64, verbose: bool) -> Counts {
    let dir = tempfile::Builder::new()
        .prefix("kvtool-kill-loop-")
        .tempdir()
        .unwrap();
    let log_path = dir.path().join("cycles.log");
    let mut lp = Loop {
        dir: dir.path().to_path_buf(),
        store: dir.path().join("store"),
        rng: SmallRng::seed_from_u64(seed),
        model: Model::new(),
        shards: 0,
        counts: Counts::default(),
        typical: [Duration::from_millis(60); 3],
        log: std::fs::File::create(&log_path).unwrap(),
        verbose,
    };
    // The store is created by a run that is not killed; every cycle after it may be.
    lp.shards = *[1u32, 2, 4, 8].choose(&mut lp.rng).unwrap();
    let shards = lp.shards.to_string();
    let (code, _, err) = lp.run(&["--shards", &shards, "put", "first-key", "first-value"]);
    assert_eq!(code, 0, "creating the store: {err}");
    lp.model
        .insert(b"first-key".to_vec(), b"first-value".to_vec());
    let started = Instant::now();
    for cycle in 0..cycles {
        let job = lp.plan(cycle);
        let ended = lp.execute(&job);
        let mut runs = vec![(job, ended)];
        if matches!(runs[0].0, Job::Load { .. }) && runs[0].1.killed() && lp.rng.gen_bool(0.3) {
            // No check in between: this run's open is the first after the kill.
            let then = if lp.rng.gen_bool(0.5) {
                Job::Compact
            } else {
                lp.rebalance_job()
            };
            let ended = lp.execute(&then);
            runs.push((then, ended));
        }
        for (job, ended) in &runs {
            let _ = writeln!(
                lp.log,
                "cycle {cycle}: {} {:?} after {:?} acked {}",
                ["load", "compact", "rebalance"][job.kind()],
                ended.status,
                ended.elapsed,
                ended.acked
            );
        }
        if let Err(e) = lp.verify(cycle, &runs) {
            let kept = dir.keep();
            let stderr: Vec<&str> = runs.iter().map(|(_, e)| e.stderr.as_str()).collect();
            let _ = writeln!(
                lp.log,
                "FAILED: {e}\nkvtool stderr:\n{}",
                stderr.join("\n---\n")
            );
            panic!(
                "kill loop seed {seed}, cycle {cycle}: {e}\n\
                 kvtool stderr:\n{}\nstore, input and log kept in {}",
                stderr.join("\n---\n"),
                kept.display()
            );
        }
        if cycle % 100 == 99 {
            eprintln!(
                "{} cycles in {:.0} s: {:?}",
                cycle + 1,
                started.elapsed().as_secs_f64(),
                lp.counts
            );
        }
    }
    lp.counts
}

#[test]
fn kill_minus_nine_during_load_compact_rebalance_loses_nothing_acknowledged() {
    let cycles: u64 = std::env::var("KVTOOL_KILL_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("KVTOOL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0004);
    let verbose = std::env::var_os("KVTOOL_KILL_VERBOSE").is_some();
    let started = Instant::now();
    let c = kill_loop(cycles, seed, verbose);
    eprintln!(
        "kill loop: {cycles} cycles, seed {seed}, {:.0} s: {c:?}",
        started.elapsed().as_secs_f64()
    );
    // The loop must really have killed each kind of job in the middle, and let some finish.
    if cycles >= 100 {
        let share = |n: u64| n * 100 / cycles;
        assert!(share(c.loads_killed) >= 15, "too few loads killed: {c:?}");
        assert!(
            c.loads_killed_after_ack >= 5,
            "too few killed loads had acknowledged a sync: {c:?}"
        );
        assert!(c.records_cut > 0, "no kill ever cut a load short: {c:?}");
        assert!(
            c.loads_done + c.loads_aborted >= 3,
            "too few loads finished: {c:?}"
        );
        assert!(
            c.loads_aborted >= 1,
            "no load stopped on its bad record: {c:?}"
        );
        assert!(
            share(c.compacts_killed) >= 5,
            "too few compacts killed: {c:?}"
        );
        assert!(
            share(c.rebalances_killed) >= 5,
            "too few rebalances killed: {c:?}"
        );
        assert!(
            c.compacts_done + c.rebalances_done >= 2,
            "no maintenance run finished: {c:?}"
        );
        assert!(
            c.rebalances_killed_switched >= 1,
            "no rebalance was killed after its switch to the new layout: {c:?}"
        );
        assert!(
            c.chained >= 3,
            "too few maintenance runs right after a killed load: {c:?}"
        );
    }
}
