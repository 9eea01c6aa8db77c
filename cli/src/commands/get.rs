//! `kvtool get`: prints the values of keys given as arguments or read from a file (`--keys-from`),
//! fetched with `multi_get` in chunks. Output forms: raw value bytes (one key), one value per line
//! (several keys), `key<TAB>value` with C escapes (`--escape`), or JSON lines (`--json`). Large chunks
//! of keys are split across threads (one per core), their answers printed in key order. A missing key
//! is reported on stderr and makes the exit code 1; the other keys are still printed.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{input_name, key_arg, open_input};
use crate::config::Global;
use crate::engine::Reader;
use crate::escape::escape_into;
use crate::input::lines::{Line, LineReader};
use crate::output::stdout;

/// Keys looked up together; a chunk is split across the lookup threads.
const CHUNK: usize = 8192;

/// Smallest share of a chunk worth a thread of its own.
const MIN_SHARE: usize = 512;

/// Arguments of `kvtool get`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Output:
  one key, no flag    the value's raw bytes, nothing added
  several keys        each value followed by a newline
  --escape            key<TAB>value per line with C escapes (loadable by `kvtool load --escape`)
  --json              {\"key\":..,\"value\":..} or {\"key\":..,\"found\":false} per line (base64 with --escape)
Exit code 1 when a key is missing (named on stderr); the others are still printed.")]
pub struct GetArgs {
    /// Keys to read.
    #[arg(value_name = "KEY")]
    pub keys: Vec<std::ffi::OsString>,
    /// Read keys from FILE, one per line (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub keys_from: Option<PathBuf>,
    /// C-style escapes in keys and output (base64 with --json).
    #[arg(long)]
    pub escape: bool,
    /// Lookup threads (0 = one per core, up to 8).
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    pub threads: usize,
}

/// How values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Raw,
    Lines,
    Escaped,
    Json { base64: bool },
}

/// Runs `kvtool get`.
pub fn run(a: &GetArgs, g: &Global) -> anyhow::Result<u8> {
    if a.keys.is_empty() && a.keys_from.is_none() {
        anyhow::bail!("no keys: give KEY arguments or --keys-from FILE");
    }
    let mut keys = Vec::with_capacity(a.keys.len());
    for k in &a.keys {
        keys.push(key_arg(k, a.escape)?);
    }
    let form = if g.json {
        Form::Json { base64: a.escape }
    } else if a.escape {
        Form::Escaped
    } else if keys.len() == 1 && a.keys_from.is_none() {
        Form::Raw
    } else {
        Form::Lines
    };
    let db = g.open_for_reading()?;
    let mut w = Writer {
        threads: std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8),
        out: stdout(),
        form,
        missing: 0,
        buf: Vec::with_capacity(4096),
    };
    for chunk in keys.chunks(CHUNK) {
        w.lookup(&db, chunk)?;
    }
    if let Some(path) = &a.keys_from {
        let name = input_name(path);
        let mut lines = LineReader::new(open_input(path)?);
        let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(CHUNK);
        while let Some((n, line)) = lines
            .next_line()
            .with_context(|| format!("cannot read {name}"))?
        {
            let text = match line {
                Line::TooLong => anyhow::bail!("{name}:{n}: line too long for a key"),
                Line::Text(t, _) => t,
            };
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            let key = if a.escape {
                crate::escape::unescape(text)
                    .map_err(|e| anyhow::anyhow!("{name}:{n}:{}: {}", e.offset + 1, e.reason))?
            } else {
                text.to_vec()
            };
            crate::input::check_key(&key).map_err(|r| anyhow::anyhow!("{name}:{n}: {r}"))?;
            chunk.push(key);
            if chunk.len() == CHUNK {
                w.lookup(&db, &chunk)?;
                chunk.clear();
            }
        }
        w.lookup(&db, &chunk)?;
    }
    w.out.flush()?;
    let missing = w.missing;
    drop(w);
    db.close().context("cannot close the store")?;
    Ok(if missing > 0 {
        crate::EXIT_NOT_FOUND
    } else {
        crate::EXIT_OK
    })
}

struct Writer {
    threads: usize,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    form: Form,
    missing: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn lookup(&mut self, db: &Reader, keys: &[Vec<u8>]) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let values = lookup(db, keys, self.threads).context("cannot read from the store")?;
        for (k, v) in keys.iter().zip(values) {
            match v {
                Some(v) => self.write(k, &v)?,
                None => {
                    self.missing += 1;
                    eprintln!("kvtool: get: key not found: {}", k.escape_ascii());
                    if let Form::Json { base64 } = self.form {
                        let key = json_text(k, base64, "key")?;
                        serde_json::to_writer(
                            &mut self.out,
                            &serde_json::json!({"key": key, "found": false}),
                        )?;
                        self.out.write_all(b"\n")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, k: &[u8], v: &[u8]) -> anyhow::Result<()> {
        match self.form {
            Form::Raw => self.out.write_all(v)?,
            Form::Lines => {
                self.out.write_all(v)?;
                self.out.write_all(b"\n")?;
            }
            Form::Escaped => {
                self.buf.clear();
                escape_into(k, &mut self.buf);
                self.buf.push(b'\t');
                escape_into(v, &mut self.buf);
                self.buf.push(b'\n');
                self.out.write_all(&self.buf)?;
            }
            Form::Json { base64 } => {
                let obj = serde_json::json!({
                    "key": json_text(k, base64, "key")?,
                    "value": json_text(v, base64, "value")?,
                });
                serde_json::to_writer(&mut self.out, &obj)?;
                self.out.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

/// `multi_get` of `keys`, split across up to `threads` threads; values come back in key order.
fn lookup(db: &Reader, keys: &[Vec<u8>], threads: usize) -> tierkv::Result<Vec<Option<Vec<u8>>>> {
    let parts = threads.min(keys.len() / MIN_SHARE).max(1);
    if parts == 1 {
        return db.multi_get(keys);
    }
    let share = keys.len().div_ceil(parts);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(share)
            .map(|c| s.spawn(move || db.multi_get(c)))
            .collect();
        let mut values = Vec::with_capacity(keys.len());
        for h in handles {
            values.extend(h.join().expect("lookup thread panicked")?);
        }
        Ok(values)
    })
}

/// Bytes as a JSON string: base64, or UTF-8 text (an error naming `--escape` otherwise).
pub fn json_text(b: &[u8], base64: bool, what: &str) -> anyhow::Result<String> {
    if base64 {
        return Ok(crate::escape::b64_encode(b));
    }
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => anyhow::bail!(
            "a {what} is not valid UTF-8 and cannot be written as JSON text; add --escape for base64 ({what} bytes: {})",
            b.escape_ascii()
        ),
    }
}
