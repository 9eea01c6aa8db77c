//! C-style escapes for text formats (`--escape`): `\t \n \r \0 \\ \xNN`, so that any bytes, binary
//! included, survive a trip through a line-oriented file. Also the base64 used for binary data in JSON
//! (`--escape` with `--format jsonl`, `--json` or `batch`). Owns no I/O.

use base64::Engine as _;

/// Appends `input` to `out` with C-style escapes. Valid UTF-8 text other than control characters and
/// the backslash is copied as is; every other byte becomes `\xNN` (or `\t`, `\n`, `\r`, `\\`).
pub fn escape_into(input: &[u8], out: &mut Vec<u8>) {
    if input
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
    {
        out.extend_from_slice(input);
        return;
    }
    for chunk in input.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0..0x20 | 0x7f => hex(b, out),
                _ => out.push(b),
            }
        }
        for &b in chunk.invalid() {
            hex(b, out);
        }
    }
}

fn hex(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
}

/// `input` with C-style escapes, as a new vector.
#[cfg(test)]
pub fn escape(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 8);
    escape_into(input, &mut out);
    out
}

/// A malformed escape: 0-based byte offset of its backslash within the input, and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct EscapeError {
    pub offset: usize,
    pub reason: String,
}

/// Decodes C-style escapes. Unknown escapes and a truncated `\x` are errors, never passed through.
pub fn unescape(input: &[u8]) -> Result<Vec<u8>, EscapeError> {
    if !input.contains(&b'\\') {
        return Ok(input.to_vec());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let err = |reason: String| EscapeError { offset: i, reason };
        match input.get(i + 1) {
            None => {
                return Err(err(
                    "backslash at end of field (write \\\\ for a backslash)".into(),
                ))
            }
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let digits = input.get(i + 2..i + 4);
                let v = digits
                    .and_then(|d| std::str::from_utf8(d).ok())
                    .filter(|s| s.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|s| u8::from_str_radix(s, 16).ok());
                match v {
                    Some(v) => out.push(v),
                    None => return Err(err("\\x must be followed by two hex digits".into())),
                }
                i += 4;
                continue;
            }
            Some(&c) => {
                return Err(err(format!(
                    "unknown escape \\{} (known: \\t \\n \\r \\0 \\\\ \\xNN)",
                    c.escape_ascii()
                )))
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Standard base64 with padding.
pub fn b64_encode(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Decodes standard base64 (padding required).
pub fn b64_decode(input: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(input)
        .map_err(|e| format!("invalid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8)
            .chain(b"h\xc3\xa9llo \\x".iter().copied())
            .collect();
        let e = escape(&all);
        assert!(!e.contains(&b'\t') && !e.contains(&b'\n') && !e.contains(&b'\r'));
        assert!(std::str::from_utf8(&e).is_ok());
        assert_eq!(unescape(&e).unwrap(), all);
    }

    #[test]
    fn utf8_text_is_kept() {
        assert_eq!(escape("héllo wörld".as_bytes()), "héllo wörld".as_bytes());
        assert_eq!(escape(b"a\tb\\"), b"a\\tb\\\\");
    }

    #[test]
    fn bad_escapes_are_named() {
        assert_eq!(unescape(b"ab\\").unwrap_err().offset, 2);
        assert!(unescape(b"\\x4").unwrap_err().reason.contains("two hex"));
        assert!(unescape(b"\\xg1").is_err());
        assert!(unescape(b"x\\q").unwrap_err().reason.contains("\\q"));
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(b64_decode(&b64_encode(b"\x00\xff")).unwrap(), b"\x00\xff");
        assert!(b64_decode("!!").is_err());
    }
}
