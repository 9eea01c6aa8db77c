//! CSV input (RFC 4180: quoted fields, embedded commas, quotes and newlines; a header row), parsed by
//! the `csv` crate. The key comes from `--key-column` (default: the first column); the value from
//! `--value-column`, or, when none is given, the whole row as a JSON object in header order.
//!
//! The `csv` crate accepts an unterminated quote by reading to the end of the input; that is how a
//! truncated file looks. So the raw bytes of the last record (kept from the tail of the input) are
//! checked: an odd number of quote characters in them means a quoted field never closed.

use std::io::Read;

use csv::{ByteRecord, ErrorKind};

use super::{check_key, check_value, Bad, Item, ParseOptions, Source};

/// Bytes of input kept to re-examine the last record; a longer last record falls back to the quote
/// count of the whole input.
const TAIL: usize = 1 << 20;

/// Keeps the tail of the input and counts all its quote characters.
struct TailKeeper {
    inner: Box<dyn Read>,
    quotes: u64,
    tail: Vec<u8>,
    /// Input offset of `tail[0]`.
    tail_start: u64,
}

impl Read for TailKeeper {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.quotes += memchr::memchr_iter(b'"', &buf[..n]).count() as u64;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 2 * TAIL {
            let drop = self.tail.len() - TAIL;
            self.tail.drain(..drop);
            self.tail_start += drop as u64;
        }
        Ok(n)
    }
}

impl TailKeeper {
    /// True when the input from byte `from` to its end holds an odd number of quote characters.
    fn odd_quotes_from(&self, from: u64) -> bool {
        match from.checked_sub(self.tail_start) {
            Some(i) if (i as usize) <= self.tail.len() => {
                memchr::memchr_iter(b'"', &self.tail[i as usize..]).count() % 2 == 1
            }
            _ => self.quotes % 2 == 1,
        }
    }
}

struct Header {
    names: Vec<String>,
    key: usize,
    value: Option<usize>,
}

/// Parses CSV records.
pub struct CsvSource {
    rdr: csv::Reader<TailKeeper>,
    key_column: Option<String>,
    value_column: Option<String>,
    header: Option<Header>,
    /// The record read ahead, so the last one can be checked against the quote count.
    ahead: Option<Result<ByteRecord, csv::Error>>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource").finish_non_exhaustive()
    }
}

impl CsvSource {
    /// A CSV parser over `reader`.
    pub fn new(reader: Box<dyn Read>, opts: &ParseOptions) -> Self {
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(TailKeeper {
                inner: reader,
                quotes: 0,
                tail: Vec::new(),
                tail_start: 0,
            });
        CsvSource {
            rdr,
            key_column: opts.key_column.clone(),
            value_column: opts.value_column.clone(),
            header: None,
            ahead: None,
            started: false,
            done: false,
        }
    }

    fn read_one(&mut self) -> Option<Result<ByteRecord, csv::Error>> {
        let mut rec = ByteRecord::new();
        match self.rdr.read_byte_record(&mut rec) {
            Ok(true) => Some(Ok(rec)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads the header row and resolves the key and value columns.
    fn start(&mut self) -> anyhow::Result<Result<(), Bad>> {
        let fatal = |reason: String| {
            let mut b = Bad::new(1, None, reason);
            b.fatal = true;
            Ok(Err(b))
        };
        let rec = match self.read_one() {
            None => {
                self.done = true;
                return Ok(Ok(()));
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(r)) => r,
        };
        let mut names = Vec::with_capacity(rec.len());
        for (i, f) in rec.iter().enumerate() {
            match std::str::from_utf8(f) {
                Ok(s) => names.push(s.to_string()),
                Err(_) => return fatal(format!("header column {} is not valid UTF-8", i + 1)),
            }
        }
        let find = |want: &Option<String>, what: &str| -> Result<Option<usize>, String> {
            match want {
                None => Ok(None),
                Some(w) => names.iter().position(|n| n == w).map(Some).ok_or_else(|| {
                    format!(
                        "no {what} column named \"{w}\" in the header (columns: {})",
                        names.join(", ")
                    )
                }),
            }
        };
        let key = match find(&self.key_column, "key") {
            Ok(k) => k.unwrap_or(0),
            Err(r) => return fatal(r),
        };
        let value = match find(&self.value_column, "value") {
            Ok(v) => v,
            Err(r) => return fatal(r),
        };
        if names.iter().all(|n| n.is_empty()) {
            return fatal("empty header row".into());
        }
        self.header = Some(Header { names, key, value });
        self.ahead = self.read_one();
        Ok(Ok(()))
    }

    fn item(&self, rec: &ByteRecord) -> Result<Item, Bad> {
        let h = self.header.as_ref().expect("header read before records");
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |col: usize, reason: String| {
            Bad::new(
                line,
                None,
                format!("column {} (\"{}\"): {reason}", col + 1, h.names[col]),
            )
        };
        if rec.len() != h.names.len() {
            return Err(Bad::new(
                line,
                None,
                format!(
                    "{} fields, but the header has {} columns",
                    rec.len(),
                    h.names.len()
                ),
            ));
        }
        for (i, f) in rec.iter().enumerate() {
            if f.contains(&0) {
                return Err(bad(i, "NUL byte in a text field".into()));
            }
        }
        let key = rec[h.key].to_vec();
        check_key(&key).map_err(|r| bad(h.key, r))?;
        let value = match h.value {
            Some(v) => rec[v].to_vec(),
            None => {
                let mut out = Vec::with_capacity(rec.as_slice().len() + 16 * rec.len());
                out.push(b'{');
                for (i, f) in rec.iter().enumerate() {
                    let s = std::str::from_utf8(f).map_err(|_| {
                        bad(i, "invalid UTF-8 (the row is stored as JSON, which must be UTF-8; use --value-column for binary)".into())
                    })?;
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &h.names[i]).expect("writing to a Vec");
                    out.push(b':');
                    serde_json::to_writer(&mut out, s).expect("writing to a Vec");
                }
                out.push(b'}');
                out
            }
        };
        check_value(&value).map_err(|r| bad(h.value.unwrap_or(0), r))?;
        Ok(Item::Put(key, value))
    }
}

impl Source for CsvSource {
    fn next_record(&mut self) -> anyhow::Result<Option<Result<Item, Bad>>> {
        if !self.started {
            self.started = true;
            if let Err(bad) = self.start()? {
                self.done = true;
                return Ok(Some(Err(bad)));
            }
        }
        if self.done {
            return Ok(None);
        }
        let current = match self.ahead.take() {
            None => {
                self.done = true;
                return Ok(None);
            }
            Some(c) => c,
        };
        self.ahead = self.read_one();
        let rec = match current {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return match e.into_kind() {
                    ErrorKind::Io(io) => Err(io.into()),
                    other => Ok(Some(Err(Bad::new(line, None, format!("{other:?}"))))),
                };
            }
        };
        let from = rec.position().map_or(0, |p| p.byte());
        if self.ahead.is_none() && self.rdr.get_ref().odd_quotes_from(from) {
            let line = rec.position().map_or(0, |p| p.line());
            return Ok(Some(Err(Bad::new(
                line,
                None,
                "unterminated quoted field: the record runs to the end of the input (truncated file?)",
            ))));
        }
        Ok(Some(self.item(&rec)))
    }

    fn bytes_read(&self) -> u64 {
        self.rdr.position().byte()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: Vec<u8>, opts: &ParseOptions) -> Vec<Result<Item, Bad>> {
        let mut src = CsvSource::new(Box::new(std::io::Cursor::new(data)), opts);
        let mut out = Vec::new();
        while let Some(r) = src.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    fn value_column() -> ParseOptions {
        ParseOptions {
            value_column: Some("v".into()),
            ..ParseOptions::default()
        }
    }

    #[test]
    fn a_stray_quote_earlier_does_not_blame_the_last_record() {
        let r = all(b"k,v\na,b\"c\nd,e\n".to_vec(), &value_column());
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    }

    #[test]
    fn unterminated_quote_in_a_record_longer_than_the_tail() {
        let mut data = b"k,v\na,1\nb,\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * TAIL));
        data.push(b'\n');
        let r = all(data, &value_column());
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok());
        let bad = r[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(bad.reason.starts_with("unterminated quoted field"));
    }

    #[test]
    fn quoted_fields_with_separators_and_an_empty_input() {
        let r = all(b"k,v\n\"a,1\",\"x\"\"y\nz\"\n".to_vec(), &value_column());
        assert_eq!(r, vec![Ok(Item::Put(b"a,1".to_vec(), b"x\"y\nz".to_vec()))]);
        assert!(all(Vec::new(), &value_column()).is_empty());
    }
}
