//! kvtool's three import parsers (`kvtool load --format tsv|csv|jsonl`, `cli/src/input/`) on
//! arbitrary bytes, plus a TSV round trip. Input: `selector | data`; the selector picks the format
//! and its options (escapes, CSV key and value columns).
//!
//! Properties: no parser panics or hangs, and none returns an I/O error on an in-memory input; every
//! accepted record is well-formed (key 1..=1024 bytes, value within the engine's limit); every bad
//! record carries a 1-based line number inside the input, and line numbers never go backwards; a
//! fatal error ends the stream. With the escape option, lines made by escaping arbitrary keys and
//! values parse back to exactly those keys and values.
#![no_main]

use kvtool::escape::escape_into;
use kvtool::input::{self, check_key, check_value, Format, Item, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    match selector % 8 {
        0 => drop(parse(Format::Tsv, opts(false), data)),
        1 => drop(parse(Format::Tsv, opts(true), data)),
        2 => drop(parse(Format::Csv, opts(false), data)),
        3 => {
            let mut o = opts(false);
            o.key_column = Some("k".into());
            o.value_column = Some("v".into());
            drop(parse(Format::Csv, o, data))
        }
        4 => drop(parse(Format::Jsonl, opts(false), data)),
        5 => drop(parse(Format::Jsonl, opts(true), data)),
        _ => tsv_round_trip(data),
    }
});

fn opts(escape: bool) -> ParseOptions {
    ParseOptions {
        escape,
        key_column: None,
        value_column: None,
        key_field: "key".into(),
        value_field: "value".into(),
    }
}

/// Parses `data` to the end and checks every record; returns the accepted items.
fn parse(format: Format, o: ParseOptions, data: &[u8]) -> Vec<Item> {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let mut src = input::open(format, Box::new(std::io::Cursor::new(data.to_vec())), &o)
        .expect("open a parser");
    let mut items = Vec::new();
    let mut last_line = 0u64;
    // Every record consumes at least one byte, so the stream ends within `len + 2` records.
    for _ in 0..data.len() + 2 {
        let rec = src
            .next_record()
            .unwrap_or_else(|e| panic!("{format:?}: I/O error on an in-memory input: {e:#}"));
        match rec {
            None => return items,
            Some(Ok(item)) => {
                match &item {
                    Item::Put(k, v) => {
                        check_key(k).expect("accepted key within limits");
                        check_value(v).expect("accepted value within limits");
                    }
                    Item::Delete(k) => check_key(k).expect("accepted key within limits"),
                }
                items.push(item);
            }
            Some(Err(bad)) => {
                assert!(
                    (1..=lines).contains(&bad.line),
                    "{format:?}: bad record at line {} of a {lines}-line input: {}",
                    bad.line,
                    bad.reason
                );
                assert!(
                    bad.line >= last_line,
                    "{format:?}: line numbers went backwards"
                );
                assert!(
                    bad.column.is_none_or(|c| c >= 1),
                    "0 is not a 1-based column"
                );
                assert!(!bad.reason.is_empty());
                last_line = bad.line;
                if bad.fatal {
                    return items;
                }
            }
        }
        assert!(src.bytes_read() <= data.len() as u64);
    }
    panic!(
        "{format:?}: the parser did not end within {} records",
        data.len() + 2
    );
}

/// Splits `data` at 0xFF bytes into alternating keys and values, writes them as escaped TSV lines
/// and checks they parse back exactly (an empty value is written as a put with an empty value).
fn tsv_round_trip(data: &[u8]) {
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let mut text = Vec::new();
    let mut want = Vec::new();
    for pair in parts.chunks(2) {
        let key = pair[0];
        let value = pair.get(1).copied().unwrap_or(b"");
        if check_key(key).is_err() {
            continue;
        }
        escape_into(key, &mut text);
        text.push(b'\t');
        escape_into(value, &mut text);
        text.push(b'\n');
        want.push(Item::Put(key.to_vec(), value.to_vec()));
    }
    let got = parse(Format::Tsv, opts(true), &text);
    assert_eq!(got, want, "escaped TSV did not parse back");
}
