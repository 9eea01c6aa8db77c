//! `kvtool export`: writes every live key with its value, as TSV or JSONL, to stdout or a file. The
//! output loads back with `kvtool load` (same `--format` and `--escape`) into the same contents, byte
//! for byte; a record the chosen form cannot carry (a tab in a raw TSV key, non-UTF-8 in JSON text)
//! stops the export with an error naming the key and the flag that fixes it, never a lossy line.
//! `-o FILE` writes a temporary file renamed into place at the end, so a failed export leaves no
//! partial file.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::get::json_text;
use crate::config::Global;
use crate::escape::{b64_encode, escape_into};
use crate::output::{bytes, print_json, rate, stdout};

/// Output formats of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// key<TAB>value per line.
    Tsv,
    /// {"key":..,"value":..} per line.
    Jsonl,
}

/// Arguments of `kvtool export`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Round trip: `kvtool --db A export --escape | kvtool --db B load --escape` copies every key and value
byte for byte (likewise with --format jsonl on both sides). Keys come shard by shard, unordered.")]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "tsv")]
    pub format: ExportFormat,
    /// C-style escapes (tsv) or base64 (jsonl), so any bytes survive.
    #[arg(long)]
    pub escape: bool,
    /// Write to FILE instead of stdout (replaced atomically at the end).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Summary {
    keys: u64,
    bytes: u64,
    seconds: f64,
    keys_per_second: f64,
    output: Option<PathBuf>,
}

/// Runs `kvtool export`.
pub fn run(a: &ExportArgs, g: &Global) -> anyhow::Result<u8> {
    if g.json && a.output.is_none() {
        anyhow::bail!(
            "--json prints a summary on stdout, which the export itself uses: add -o FILE"
        );
    }
    let db = g.open_for_reading()?;
    let start = Instant::now();
    let (mut out, tmp): (Box<dyn Write>, Option<PathBuf>) = match &a.output {
        None => (Box::new(stdout()), None),
        Some(path) => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".tmp-{}", std::process::id()));
            let tmp = path.with_file_name(name);
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            (
                Box::new(std::io::BufWriter::with_capacity(1 << 16, f)),
                Some(tmp),
            )
        }
    };
    let mut keys = 0u64;
    let mut written = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    let mut line = Vec::with_capacity(4096);
    db.scan(|k, v| {
        line.clear();
        if let Err(e) = format_record(a, k, v, &mut line) {
            failure = Some(e);
            return false;
        }
        if let Err(e) = out.write_all(&line) {
            failure = Some(e.into());
            return false;
        }
        keys += 1;
        written += line.len() as u64;
        true
    })
    .context("cannot read the store")?;
    let result = match failure {
        Some(e) => Err(e),
        None => out.flush().map_err(anyhow::Error::from),
    };
    drop(out);
    if let Err(e) = result {
        if let Some(t) = &tmp {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    if let (Some(t), Some(path)) = (&tmp, &a.output) {
        std::fs::File::open(t)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", t.display()))?;
        std::fs::rename(t, path)
            .with_context(|| format!("cannot rename {} to {}", t.display(), path.display()))?;
    }
    db.close().context("cannot close the store")?;
    let seconds = start.elapsed().as_secs_f64();
    let s = Summary {
        keys,
        bytes: written,
        seconds,
        keys_per_second: rate(keys, seconds),
        output: a.output.clone(),
    };
    if g.json {
        print_json(&s)?;
    } else if !g.quiet {
        eprintln!(
            "kvtool: export: {keys} keys, {} in {seconds:.2} s ({:.0} keys/s)",
            bytes(written),
            s.keys_per_second
        );
    }
    Ok(crate::EXIT_OK)
}

fn format_record(a: &ExportArgs, k: &[u8], v: &[u8], line: &mut Vec<u8>) -> anyhow::Result<()> {
    match (a.format, a.escape) {
        (ExportFormat::Tsv, true) => {
            escape_into(k, line);
            line.push(b'\t');
            escape_into(v, line);
        }
        (ExportFormat::Tsv, false) => {
            let bad_key = k.iter().any(|&b| matches!(b, b'\t' | b'\n' | b'\r' | 0));
            let bad_value = v.iter().any(|&b| matches!(b, b'\n' | 0)) || v.last() == Some(&b'\r');
            if bad_key || bad_value {
                anyhow::bail!(
                    "the {} of key \"{}\" holds a tab, newline, carriage return or NUL that raw TSV cannot carry; add --escape",
                    if bad_key { "key" } else { "value" },
                    k.escape_ascii()
                );
            }
            line.extend_from_slice(k);
            line.push(b'\t');
            line.extend_from_slice(v);
        }
        (ExportFormat::Jsonl, true) => {
            serde_json::to_writer(
                &mut *line,
                &serde_json::json!({"key": b64_encode(k), "value": b64_encode(v)}),
            )?;
        }
        (ExportFormat::Jsonl, false) => {
            let obj = serde_json::json!({
                "key": json_text(k, false, "key")?,
                "value": json_text(v, false, "value")?,
            });
            serde_json::to_writer(&mut *line, &obj)?;
        }
    }
    line.push(b'\n');
    Ok(())
}
