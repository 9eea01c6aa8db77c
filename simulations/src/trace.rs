//! CSV traces (`op,key,value_size` with a header line): reading them, summarising them into a
//! [`Workload`] (sizes, mix, skew measured from the trace), and replaying them. `op` is `get`, `put`,
//! `update` or `delete`; `value_size` is ignored for gets and deletes.
//!
//! Replay semantics: every key that some `put`/`update` writes is loaded first (with its first value
//! size); then the trace runs in order. A `get` of a key no line writes counts as a missing-key get.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::skew::AccessCurve;
use crate::workload::{LoadOps, Op, Workload};

/// One trace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOp {
    /// `get`, `put`, `update` or `delete`.
    pub op: TraceKind,
    /// The key bytes.
    pub key: Vec<u8>,
    /// Value size for writes.
    pub value_size: u64,
}

/// A trace operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// Read.
    Get,
    /// Write (new or existing key).
    Put,
    /// Remove.
    Delete,
}

/// Reads every line of a trace.
pub fn read(path: &Path) -> Result<Vec<TraceOp>> {
    let err = |line: u64, reason: String| Error::Trace {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| err(0, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            err(
                1,
                format!("header lacks column `{name}` (need op,key,value_size)"),
            )
        })
    };
    let (c_op, c_key, c_size) = (col("op")?, col("key")?, col("value_size")?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| err(line, e.to_string()))?;
        let field = |c: usize| rec.get(c).unwrap_or("");
        let op = match field(c_op) {
            "get" | "read" => TraceKind::Get,
            "put" | "insert" | "update" | "set" => TraceKind::Put,
            "delete" | "del" => TraceKind::Delete,
            other => return Err(err(line, format!("unknown op `{other}`"))),
        };
        let key = field(c_key).as_bytes().to_vec();
        if key.is_empty() || key.len() > tierkv::MAX_KEY_LEN {
            return Err(err(line, format!("key length {} out of range", key.len())));
        }
        let value_size = match op {
            TraceKind::Put => field(c_size)
                .parse::<u64>()
                .map_err(|e| err(line, format!("value_size: {e}")))?,
            _ => 0,
        };
        if value_size > tierkv::MAX_VALUE_LEN as u64 {
            return Err(err(
                line,
                format!("value_size {value_size} above the limit"),
            ));
        }
        out.push(TraceOp {
            op,
            key,
            value_size,
        });
    }
    if out.is_empty() {
        return Err(err(1, "trace holds no operation".into()));
    }
    Ok(out)
}

/// Summarises a trace into the model the simulations read.
pub fn summarize(path: &Path) -> Result<Workload> {
    let ops = read(path)?;
    let written: std::collections::HashSet<&[u8]> = ops
        .iter()
        .filter(|o| o.op == TraceKind::Put)
        .map(|o| o.key.as_slice())
        .collect();
    let mut seen: std::collections::HashSet<&[u8]> = Default::default();
    let mut access: HashMap<&[u8], u64> = HashMap::new();
    let (mut gets, mut missing, mut puts, mut updates, mut deletes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut vsum, mut vsq, mut ksum) = (0f64, 0f64, 0f64);
    for o in &ops {
        match o.op {
            TraceKind::Get => {
                gets += 1;
                if written.contains(o.key.as_slice()) {
                    *access.entry(&o.key).or_default() += 1;
                } else {
                    missing += 1;
                }
            }
            TraceKind::Put => {
                if seen.insert(&o.key) {
                    puts += 1;
                    ksum += o.key.len() as f64;
                } else {
                    updates += 1;
                    *access.entry(&o.key).or_default() += 1;
                }
                vsum += o.value_size as f64;
                vsq += (o.value_size as f64).powi(2);
            }
            TraceKind::Delete => deletes += 1,
        }
    }
    let n = ops.len() as f64;
    let writes = (puts + updates).max(1) as f64;
    // Accessed keys by popularity, with never-accessed written keys at the tail.
    let mut counts: Vec<u64> = access.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.resize(written.len().max(counts.len()), 0);
    let total: u64 = counts.iter().sum();
    let points = if total == 0 {
        vec![(1.0, 1.0)]
    } else {
        let step = (counts.len() / 200).max(1);
        let mut acc = 0u64;
        let mut pts = Vec::new();
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if (i + 1) % step == 0 || i + 1 == counts.len() {
                pts.push((
                    (i + 1) as f64 / counts.len() as f64,
                    acc as f64 / total as f64,
                ));
            }
        }
        pts
    };
    Ok(Workload {
        name: path.display().to_string(),
        keys: written.len().max(1) as u64,
        growth_per_day: 0.0,
        key_bytes: ksum / puts.max(1) as f64,
        value_bytes: vsum / writes,
        value_bytes_m2: vsq / writes,
        gets_per_op: gets as f64 / n,
        // The loaded keys are written once up front; the trace's first put of a key is its load.
        puts_per_op: 0.0,
        updates_per_op: updates as f64 / n,
        deletes_per_op: deletes as f64 / n,
        requests_per_sec: 1.0,
        missing_fraction: if gets == 0 {
            0.0
        } else {
            missing as f64 / gets as f64
        },
        curve: AccessCurve::Empirical { points },
    })
}

/// The load phase and run phase of a trace replay (see the module docs).
pub fn replay(path: &Path) -> Result<(LoadOps, Vec<Op>)> {
    let ops = read(path)?;
    let mut first: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut load = Vec::new();
    for o in &ops {
        if o.op == TraceKind::Put && !first.contains_key(&o.key) {
            first.insert(o.key.clone(), o.value_size);
            load.push((o.key.clone(), o.value_size as usize));
        }
    }
    let mut loaded_once: std::collections::HashSet<Vec<u8>> = Default::default();
    let run = ops
        .into_iter()
        .filter_map(|o| match o.op {
            TraceKind::Get if first.contains_key(&o.key) => Some(Op::Get(o.key)),
            TraceKind::Get => Some(Op::GetMissing(o.key)),
            // The first write of a key is the load; later ones are updates.
            TraceKind::Put if loaded_once.insert(o.key.clone()) => None,
            TraceKind::Put => Some(Op::Put(o.key, o.value_size as usize)),
            TraceKind::Delete => Some(Op::Delete(o.key)),
        })
        .collect();
    Ok((load, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_small_trace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "op,key,value_size\nput,a,100\nput,b,300\nget,a,\nget,a,\nget,zz,\nput,a,200\ndelete,b,\n",
        )
        .unwrap();
        let w = summarize(&p).unwrap();
        assert_eq!(w.keys, 2);
        assert!((w.value_bytes - 200.0).abs() < 1e-9);
        assert!((w.missing_fraction - 1.0 / 3.0).abs() < 1e-9);
        assert!((w.gets_per_op - 3.0 / 7.0).abs() < 1e-9);
        // Key `a` draws every access: the top half of the keys gets all of them.
        assert!((w.curve.hit_fraction(0.5) - 1.0).abs() < 1e-9);
        let (load, run) = replay(&p).unwrap();
        assert_eq!(load.len(), 2);
        assert_eq!(run.len(), 5);
    }

    #[test]
    fn bad_trace_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "op,key,value_size\nput,a,100\nfrob,b,1\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("t.csv line 3") && e.contains("frob"), "{e}");
        std::fs::write(&p, "op,key\nput,a\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("value_size"), "{e}");
    }
}
