//! `kvtool batch`: applies a JSON-lines script of `put`, `delete` and `get` operations in order. Writes
//! are grouped into `WriteBatch`es between reads; each `get` first commits the writes before it, so it
//! sees them, and answers with one JSON line on stdout. A bad line stops the script: operations before
//! it are committed and synced, the line is named as `FILE:LINE:COLUMN: reason`, and the exit code is 3.
//! Answers are flushed whenever the script has no complete line waiting, so `batch` also works as a
//! coprocess that answers each get as soon as it is asked.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use super::get::json_text;
use super::{input_name, open_input};
use crate::config::Global;
use crate::engine::{Db, WriteBatch};
use crate::escape::b64_decode;
use crate::input::jsonl::parse_object;
use crate::input::lines::{Line, LineReader};
use crate::input::{check_key, check_value};
use crate::output::stdout;

const BATCH: usize = 1000;

/// Arguments of `kvtool batch`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Input, one JSON object per line:
  {\"op\":\"put\",\"key\":\"k\",\"value\":\"v\"}   (a non-string value is stored as its JSON text)
  {\"op\":\"delete\",\"key\":\"k\"}
  {\"op\":\"get\",\"key\":\"k\"}   answers {\"key\":\"k\",\"value\":\"v\"} or {\"key\":\"k\",\"found\":false}
With --escape, keys and string values are base64, in the input and in the answers.")]
pub struct BatchArgs {
    /// The script; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Keys and values are base64.
    #[arg(long)]
    pub escape: bool,
}

enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>, String),
}

/// Runs `kvtool batch`.
pub fn run(a: &BatchArgs, g: &Global) -> anyhow::Result<u8> {
    let path = a.file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let name = input_name(&path);
    let mut lines = LineReader::new(open_input(&path)?);
    let db = g.open(true)?;
    let mut script = Script {
        db: &db,
        out: stdout(),
        batch: WriteBatch::with_capacity(BATCH),
        applied: 0,
        escape: a.escape,
    };
    let ran = script.run(&mut lines, &name);
    // Whatever stopped the script, the writes before it are committed and made durable.
    let committed = script.commit();
    let flushed = script.out.flush().map_err(anyhow::Error::from);
    let synced = db.sync().context("cannot sync the store");
    let bad = ran.and_then(|bad| committed.and(flushed).and(synced).map(|()| bad))?;
    let applied = script.applied;
    drop(script);
    db.close().context("cannot close the store")?;
    match bad {
        None => Ok(crate::EXIT_OK),
        Some(line) => {
            eprintln!("{line}");
            eprintln!(
                "kvtool: batch stopped on bad input; the {applied} operations before it are committed and synced"
            );
            Ok(crate::EXIT_BAD_INPUT)
        }
    }
}

/// A script being applied: pending writes, answers, and the count of operations applied.
struct Script<'a, W: Write> {
    db: &'a Db,
    out: W,
    batch: WriteBatch,
    /// Writes handed to the store and gets answered.
    applied: u64,
    escape: bool,
}

impl<W: Write> Script<'_, W> {
    /// Applies lines until the end of the script (`None`) or a bad line (its error line).
    fn run(&mut self, lines: &mut LineReader, name: &str) -> anyhow::Result<Option<String>> {
        loop {
            if !lines.has_buffered_line() {
                // About to wait for input: let a coprocess see the answers so far.
                self.out.flush()?;
            }
            let Some((n, line)) = lines
                .next_line()
                .with_context(|| format!("cannot read {name}"))?
            else {
                return Ok(None);
            };
            let text = match line {
                Line::TooLong => return Ok(Some(format!("{name}:{n}: line too long"))),
                Line::Text(t, _) => t,
            };
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let op = match parse_object(text) {
                Err((Some(c), reason)) => return Ok(Some(format!("{name}:{n}:{c}: {reason}"))),
                Err((None, reason)) => return Ok(Some(format!("{name}:{n}: {reason}"))),
                Ok(obj) => match parse_op(&obj, self.escape) {
                    Ok(op) => op,
                    Err(r) => return Ok(Some(format!("{name}:{n}: {r}"))),
                },
            };
            match op {
                Op::Put(k, v) => {
                    self.batch.put(k, v);
                }
                Op::Delete(k) => {
                    self.batch.delete(k);
                }
                Op::Get(k, shown) => self.get(&k, shown)?,
            }
            if self.batch.len() >= BATCH {
                self.commit()?;
            }
        }
    }

    /// Answers a get, after committing the writes before it.
    fn get(&mut self, key: &[u8], shown: String) -> anyhow::Result<()> {
        self.commit()?;
        let answer = match self.db.get(key).context("cannot read from the store")? {
            Some(v) => json!({"key": shown, "value": json_text(&v, self.escape, "value")?}),
            None => json!({"key": shown, "found": false}),
        };
        serde_json::to_writer(&mut self.out, &answer)?;
        self.out.write_all(b"\n")?;
        self.applied += 1;
        Ok(())
    }

    /// Hands the pending writes to the store.
    fn commit(&mut self) -> anyhow::Result<()> {
        if !self.batch.is_empty() {
            self.db
                .write_batch(&self.batch)
                .context("cannot write a batch to the store")?;
            self.applied += self.batch.len() as u64;
            self.batch.clear();
        }
        Ok(())
    }
}

fn parse_op(obj: &Map<String, Value>, escape: bool) -> Result<Op, String> {
    let op = match obj.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("field \"op\" must be a string".into()),
        None => return Err("no \"op\" field (put, delete or get)".into()),
    };
    let bytes = |field: &str, s: &str| -> Result<Vec<u8>, String> {
        if escape {
            b64_decode(s).map_err(|e| format!("field \"{field}\": {e}"))
        } else {
            Ok(s.as_bytes().to_vec())
        }
    };
    let (key, shown) = match obj.get("key") {
        Some(Value::String(s)) => (bytes("key", s)?, s.clone()),
        Some(_) => return Err("field \"key\" must be a string".into()),
        None => return Err("no \"key\" field".into()),
    };
    check_key(&key)?;
    match op {
        "put" => {
            let value = match obj.get("value") {
                Some(Value::String(s)) => bytes("value", s)?,
                Some(other) => other.to_string().into_bytes(),
                None => return Err("no \"value\" field in a put".into()),
            };
            check_value(&value)?;
            Ok(Op::Put(key, value))
        }
        "delete" => Ok(Op::Delete(key)),
        "get" => Ok(Op::Get(key, shown)),
        other => Err(format!(
            "unknown op \"{other}\" (expected put, delete or get)"
        )),
    }
}
