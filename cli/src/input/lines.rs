//! A line splitter over any reader: large reads, `memchr` for the newline, lines handed out as borrowed
//! byte slices (no `String`, no allocation per line). Bounds line length so a file without newlines
//! cannot exhaust memory.

use std::io::{ErrorKind, Read};

use crate::engine::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Longest accepted line: an escaped key and value (4 bytes per byte at worst) and some slack.
pub const MAX_LINE: usize = 4 * (MAX_KEY_LEN + MAX_VALUE_LEN) + 4096;

const CHUNK: usize = 1 << 20;

/// One line from [`LineReader::next_line`].
#[derive(Debug)]
pub enum Line<'a> {
    /// A line and whether it ended with `\n` (false only for the last line of an input).
    Text(&'a [u8], bool),
    /// A line longer than [`MAX_LINE`]; it is skipped up to its newline.
    TooLong,
}

/// Splits a reader into lines.
pub struct LineReader {
    inner: Box<dyn Read>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line: u64,
    consumed: u64,
}

impl std::fmt::Debug for LineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineReader")
            .field("line", &self.line)
            .finish()
    }
}

impl LineReader {
    /// A splitter over `inner`.
    pub fn new(inner: Box<dyn Read>) -> Self {
        LineReader {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            line: 0,
            consumed: 0,
        }
    }

    /// True when a complete line is already buffered, so the next call will not wait for input.
    pub fn has_buffered_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buf[self.start..self.end]).is_some()
    }

    /// Bytes handed out so far (newlines included).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line (with its 1-based number) without its `\n`, or `None` at the end of the input.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        let mut skipping = false;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let s = self.start;
                self.start += i + 1;
                self.consumed += i as u64 + 1;
                self.line += 1;
                if skipping {
                    return Ok(Some((self.line, Line::TooLong)));
                }
                return Ok(Some((self.line, Line::Text(&self.buf[s..s + i], true))));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let s = self.start;
                self.consumed += (self.end - s) as u64;
                self.start = self.end;
                self.line += 1;
                if skipping {
                    return Ok(Some((self.line, Line::TooLong)));
                }
                return Ok(Some((self.line, Line::Text(&self.buf[s..self.end], false))));
            }
            if self.end - self.start > MAX_LINE {
                // Drop what we have of the overlong line and keep looking for its end.
                self.consumed += (self.end - self.start) as u64;
                self.start = 0;
                self.end = 0;
                skipping = true;
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &'static [u8]) -> Vec<(Vec<u8>, bool)> {
        let mut r = LineReader::new(Box::new(data));
        let mut out = Vec::new();
        while let Some((_, l)) = r.next_line().unwrap() {
            match l {
                Line::Text(t, nl) => out.push((t.to_vec(), nl)),
                Line::TooLong => panic!("too long"),
            }
        }
        assert_eq!(r.consumed(), data.len() as u64);
        out
    }

    #[test]
    fn splits_and_flags_the_last_line() {
        assert_eq!(
            lines(b"a\nbc\n\nd"),
            vec![
                (b"a".to_vec(), true),
                (b"bc".to_vec(), true),
                (vec![], true),
                (b"d".to_vec(), false)
            ]
        );
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn long_lines_cross_chunks() {
        let big: &'static [u8] =
            Vec::leak([vec![b'x'; 3 * CHUNK + 5], b"\nend\n".to_vec()].concat());
        let l = lines(big);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].0.len(), 3 * CHUNK + 5);
        assert_eq!(l[1].0, b"end");
    }
}
