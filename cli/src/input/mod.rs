//! Input formats of `kvtool load`: turning a byte stream into puts and deletes, one record at a time,
//! with the position of every bad record. `lines` is the buffered line splitter shared by the
//! line-oriented formats; `tsv`, `csv` and `jsonl` each own one format. Nothing here touches the store.

pub mod csv;
pub mod jsonl;
pub mod lines;
pub mod tsv;

use std::io::Read;
use std::path::Path;

use crate::engine::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `key<TAB>value` per line; a key alone deletes it.
    Tsv,
    /// RFC 4180 with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format a file name implies (`.csv`, `.jsonl`/`.ndjson`/`.json`, `.tsv`/`.tab`/`.txt`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "tsv" | "tab" | "txt" => Some(Format::Tsv),
            _ => None,
        }
    }
}

/// One good record.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// Set the key to the value.
    Put(Vec<u8>, Vec<u8>),
    /// Remove the key.
    Delete(Vec<u8>),
}

/// A bad record: where it is and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Bad {
    /// 1-based line where the record (or the problem) is.
    pub line: u64,
    /// 1-based byte column of the problem within that line, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub reason: String,
    /// True when the whole input is unusable (a bad CSV header): no later record can be read.
    pub fatal: bool,
}

impl Bad {
    /// A bad record at `line`, optional `column`.
    pub fn new(line: u64, column: Option<u64>, reason: impl Into<String>) -> Bad {
        Bad {
            line,
            column,
            reason: reason.into(),
            fatal: false,
        }
    }

    /// `NAME:LINE[:COLUMN]: reason`, the form every bad record is reported in.
    pub fn display(&self, name: &str) -> String {
        match self.column {
            Some(c) => format!("{name}:{}:{c}: {}", self.line, self.reason),
            None => format!("{name}:{}: {}", self.line, self.reason),
        }
    }
}

/// Format-specific parsing settings.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// TSV: C-style escapes; JSONL: base64 keys and string values.
    pub escape: bool,
    /// CSV: the key column (default: the first column).
    pub key_column: Option<String>,
    /// CSV: the value column (default: the whole row as a JSON object).
    pub value_column: Option<String>,
    /// JSONL: the key field.
    pub key_field: String,
    /// JSONL: the value field.
    pub value_field: String,
}

/// A stream of records.
pub trait Source {
    /// The next record, `Ok(None)` at the end; `Err` only for I/O errors reading the input.
    fn next_record(&mut self) -> anyhow::Result<Option<Result<Item, Bad>>>;
    /// Input bytes consumed so far.
    fn bytes_read(&self) -> u64;
}

/// Opens a parser for `format` over `reader`.
pub fn open(
    format: Format,
    reader: Box<dyn Read>,
    opts: &ParseOptions,
) -> anyhow::Result<Box<dyn Source>> {
    Ok(match format {
        Format::Tsv => Box::new(tsv::TsvSource::new(reader, opts.escape)),
        Format::Csv => Box::new(csv::CsvSource::new(reader, opts)),
        Format::Jsonl => Box::new(jsonl::JsonlSource::new(reader, opts)),
    })
}

/// Checks a key against the engine's limits; the error reason names the limit.
pub fn check_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN} bytes",
            key.len()
        ));
    }
    Ok(())
}

/// Checks a value against the engine's limit.
pub fn check_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!(
            "value of {} bytes exceeds the limit of {MAX_VALUE_LEN} bytes",
            value.len()
        ));
    }
    Ok(())
}
