//! TSV input: `key<TAB>value` per line, split at the first tab; a line holding only a key deletes that
//! key (the Kyoto Cabinet convention); empty lines are ignored. Without `--escape` keys and values are
//! raw bytes (no tab in a key, no newline, no NUL); with it they carry C-style escapes. A carriage return
//! before the newline (a CRLF file) and a last line without a newline (a truncated file) are errors:
//! taking them literally would silently store a wrong value, or turn a cut `key<TAB>value` into a delete.

use std::io::Read;

use super::lines::{Line, LineReader, MAX_LINE};
use super::{check_key, check_value, Bad, Item, Source};
use crate::escape::unescape;

/// Parses TSV records.
#[derive(Debug)]
pub struct TsvSource {
    lines: LineReader,
    escape: bool,
}

impl TsvSource {
    /// A TSV parser over `reader`; `escape` decodes C-style escapes.
    pub fn new(reader: Box<dyn Read>, escape: bool) -> Self {
        TsvSource {
            lines: LineReader::new(reader),
            escape,
        }
    }
}

impl Source for TsvSource {
    fn next_record(&mut self) -> anyhow::Result<Option<Result<Item, Bad>>> {
        let escape = self.escape;
        loop {
            let (n, line) = match self.lines.next_line()? {
                None => return Ok(None),
                Some(l) => l,
            };
            let (text, complete) = match line {
                Line::TooLong => {
                    return Ok(Some(Err(Bad::new(
                        n,
                        None,
                        format!("line longer than {MAX_LINE} bytes"),
                    ))))
                }
                Line::Text(t, c) => (t, c),
            };
            if text.is_empty() && complete {
                continue;
            }
            return Ok(Some(parse_line(text, complete, escape).map_err(
                |(col, reason)| Bad::new(n, col.map(|c| c as u64 + 1), reason),
            )));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.lines.consumed()
    }
}

/// Parses one line; errors carry the 0-based byte column of the problem.
pub fn parse_line(
    text: &[u8],
    complete: bool,
    escape: bool,
) -> Result<Item, (Option<usize>, String)> {
    if let Some(i) = memchr::memchr(0, text) {
        return Err((
            Some(i),
            "NUL byte in a text line (binary data needs --escape and \\0 or \\x00)".into(),
        ));
    }
    if !complete {
        return Err((
            None,
            "no newline at the end of the file: the last line is incomplete (truncated file?)"
                .into(),
        ));
    }
    if text.last() == Some(&b'\r') {
        return Err((
            Some(text.len() - 1),
            "carriage return at the end of the line (CRLF line ends? convert with dos2unix, or write \\r with --escape)"
                .into(),
        ));
    }
    let (key, value, value_col) = match memchr::memchr(b'\t', text) {
        Some(t) => (&text[..t], Some(&text[t + 1..]), t + 1),
        None => (text, None, 0),
    };
    let decode = |field: &[u8], col: usize| -> Result<Vec<u8>, (Option<usize>, String)> {
        if escape {
            unescape(field).map_err(|e| (Some(col + e.offset), e.reason))
        } else {
            Ok(field.to_vec())
        }
    };
    let key = decode(key, 0)?;
    check_key(&key).map_err(|r| (Some(0), r))?;
    match value {
        None => Ok(Item::Delete(key)),
        Some(v) => {
            let v = decode(v, value_col)?;
            check_value(&v).map_err(|r| (Some(value_col), r))?;
            Ok(Item::Put(key, v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_deletes_and_tabs_in_values() {
        assert_eq!(
            parse_line(b"k\tv\tw", true, false),
            Ok(Item::Put(b"k".to_vec(), b"v\tw".to_vec()))
        );
        assert_eq!(
            parse_line(b"k", true, false),
            Ok(Item::Delete(b"k".to_vec()))
        );
        assert_eq!(
            parse_line(b"k\t", true, false),
            Ok(Item::Put(b"k".to_vec(), vec![]))
        );
    }

    #[test]
    fn errors_have_columns() {
        assert_eq!(parse_line(b"\tv", true, false).unwrap_err().0, Some(0));
        assert_eq!(parse_line(b"k\tv\r", true, false).unwrap_err().0, Some(3));
        assert_eq!(parse_line(b"k\tab\\q", true, true).unwrap_err().0, Some(4));
        assert!(parse_line(b"k\tv", false, false).is_err());
        assert_eq!(
            parse_line(b"a\\tb\tc\\x00", true, true),
            Ok(Item::Put(b"a\tb".to_vec(), b"c\0".to_vec()))
        );
    }
}
