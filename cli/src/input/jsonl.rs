//! JSONL input: one JSON object per line, key and value in named fields (default `key`, `value`). A
//! string value is stored as its text; any other JSON value as its JSON text. With `--escape` the key
//! and string values are base64. Blank lines are ignored; CRLF line ends are fine (JSON whitespace).

use std::io::Read;

use serde_json::{Map, Value};

use super::lines::{Line, LineReader, MAX_LINE};
use super::{check_key, check_value, Bad, Item, ParseOptions, Source};
use crate::escape::b64_decode;

/// Parses JSONL records.
#[derive(Debug)]
pub struct JsonlSource {
    lines: LineReader,
    escape: bool,
    key_field: String,
    value_field: String,
}

impl JsonlSource {
    /// A JSONL parser over `reader`.
    pub fn new(reader: Box<dyn Read>, opts: &ParseOptions) -> Self {
        JsonlSource {
            lines: LineReader::new(reader),
            escape: opts.escape,
            key_field: opts.key_field.clone(),
            value_field: opts.value_field.clone(),
        }
    }
}

impl Source for JsonlSource {
    fn next_record(&mut self) -> anyhow::Result<Option<Result<Item, Bad>>> {
        loop {
            let (n, line) = match self.lines.next_line()? {
                None => return Ok(None),
                Some(l) => l,
            };
            let text = match line {
                Line::TooLong => {
                    return Ok(Some(Err(Bad::new(
                        n,
                        None,
                        format!("line longer than {MAX_LINE} bytes"),
                    ))))
                }
                Line::Text(t, _) => t,
            };
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let obj = match parse_object(text) {
                Ok(o) => o,
                Err((col, reason)) => return Ok(Some(Err(Bad::new(n, col, reason)))),
            };
            let item = self.item(&obj).map_err(|reason| Bad::new(n, None, reason));
            return Ok(Some(item));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.lines.consumed()
    }
}

impl JsonlSource {
    fn item(&self, obj: &Map<String, Value>) -> Result<Item, String> {
        let key = match obj.get(&self.key_field) {
            None => return Err(format!("no \"{}\" field", self.key_field)),
            Some(Value::String(s)) => self.bytes(&self.key_field, s)?,
            Some(_) => return Err(format!("field \"{}\" must be a string", self.key_field)),
        };
        check_key(&key)?;
        let value = match obj.get(&self.value_field) {
            None => return Err(format!("no \"{}\" field", self.value_field)),
            Some(Value::String(s)) => self.bytes(&self.value_field, s)?,
            Some(other) => other.to_string().into_bytes(),
        };
        check_value(&value)?;
        Ok(Item::Put(key, value))
    }

    fn bytes(&self, field: &str, s: &str) -> Result<Vec<u8>, String> {
        if self.escape {
            b64_decode(s).map_err(|e| format!("field \"{field}\": {e}"))
        } else {
            Ok(s.as_bytes().to_vec())
        }
    }
}

/// Parses one line as a JSON object; errors carry the 1-based byte column when known.
pub fn parse_object(text: &[u8]) -> Result<Map<String, Value>, (Option<u64>, String)> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err((
            Some(e.valid_up_to() as u64 + 1),
            "invalid UTF-8 (JSON text must be UTF-8; use --escape with base64 for binary)".into(),
        ));
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err((Some(1), "expected a JSON object".into())),
        Err(e) => Err((Some(e.column() as u64), json_reason(&e))),
    }
}

/// serde_json's message without its trailing " at line L column C" (the caller prints the position).
pub fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    };
    format!("invalid JSON: {s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_errors() {
        assert!(parse_object(br#"{"key":"a","value":1}"#).is_ok());
        let (col, reason) = parse_object(br#"{"key":"a",}"#).unwrap_err();
        assert_eq!(col, Some(12));
        assert!(
            reason.starts_with("invalid JSON: trailing comma"),
            "{reason}"
        );
        assert_eq!(
            parse_object(b"[1]").unwrap_err().1,
            "expected a JSON object"
        );
        assert_eq!(parse_object(b"{\"k\xff\"}").unwrap_err().0, Some(4));
    }
}
