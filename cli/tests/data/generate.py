#!/usr/bin/env python3
"""Writes the malformed-input corpus under malformed/ and its manifest.

Each case is one input file whose good records (keys k1, k2, ...) come before exactly one bad record.
manifest.jsonl holds one object per file: the extra `load` arguments, the expected exit code, the exact
error line kvtool prints on stderr (FILE:LINE[:COLUMN]: reason), and the keys that must be committed.
Run from this directory: python3 generate.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "malformed")
LONG = "k" * 1025

cases = []


def case(name, data, error, keys, args=(), exit=3):
    if isinstance(data, str):
        data = data.encode()
    cases.append((name, data, {"file": name, "args": list(args), "exit": exit,
                              "error": f"{name}:{error}", "keys": keys}))


# --- TSV ---
case("tsv_empty_key.tsv", "k1\tv1\n\tv2\n", "2:1: empty key", ["k1"])
case("tsv_empty_key_delete.tsv", "k1\tv1\nk2\tv2\n\t\n", "3:1: empty key", ["k1", "k2"])
case("tsv_key_too_long.tsv", f"k1\tv1\n{LONG}\tv\n",
     "2:1: key of 1025 bytes exceeds the limit of 1024 bytes", ["k1"])
case("tsv_key_too_long_delete.tsv", f"k1\tv1\n{LONG}\n",
     "2:1: key of 1025 bytes exceeds the limit of 1024 bytes", ["k1"])
case("tsv_nul_in_value.tsv", b"k1\tv1\nk2\tv\x00x\n",
     "2:5: NUL byte in a text line (binary data needs --escape and \\0 or \\x00)", ["k1"])
case("tsv_nul_in_key.tsv", b"k1\tv1\nk\x002\tv\n",
     "2:2: NUL byte in a text line (binary data needs --escape and \\0 or \\x00)", ["k1"])
CR = "carriage return at the end of the line (CRLF line ends? convert with dos2unix, or write \\r with --escape)"
case("tsv_crlf.tsv", "k1\tv1\r\nk2\tv2\r\n", f"1:6: {CR}", [])
case("tsv_crlf_later.tsv", "k1\tv1\nk2\tv2\nk3\tv3\r\n", f"3:6: {CR}", ["k1", "k2"])
case("tsv_crlf_key_only.tsv", "k1\tv1\nk2\r\n", f"2:3: {CR}", ["k1"])
TRUNC = "no newline at the end of the file: the last line is incomplete (truncated file?)"
case("tsv_truncated.tsv", "k1\tv1\nk2\tv2\nk3\tval", f"3: {TRUNC}", ["k1", "k2"])
case("tsv_truncated_key_only.tsv", "k1\tv1\nk2", f"2: {TRUNC}", ["k1"])
case("tsv_binary_file.tsv", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
     "1:4: NUL byte in a text line (binary data needs --escape and \\0 or \\x00)", [])
case("tsv_utf16.tsv", "k1\tv1\n".encode("utf-16-le"),
     "1:2: NUL byte in a text line (binary data needs --escape and \\0 or \\x00)", [])
HEX = "\\x must be followed by two hex digits"
case("tsv_escape_bad_hex.tsv", "k1\tv1\nk2\tab\\x4g\n", f"2:6: {HEX}", ["k1"], ["--escape"])
case("tsv_escape_short_hex.tsv", "k1\tv1\nk2\tv\\x4\n", f"2:5: {HEX}", ["k1"], ["--escape"])
case("tsv_escape_unknown.tsv", "k1\tv1\nk2\t\\q\n",
     "2:4: unknown escape \\q (known: \\t \\n \\r \\0 \\\\ \\xNN)", ["k1"], ["--escape"])
case("tsv_escape_backslash_at_end.tsv", "k1\tv1\nk2\\\tv2\n",
     "2:3: backslash at end of field (write \\\\ for a backslash)", ["k1"], ["--escape"])
case("tsv_escape_key_too_long.tsv", "k1\tv1\n" + "\\x41" * 1025 + "\tv\n",
     "2:1: key of 1025 bytes exceeds the limit of 1024 bytes", ["k1"], ["--escape"])
case("tsv_escape_truncated.tsv", "k1\tv1\nk2\tv\\x4", f"2: {TRUNC}", ["k1"], ["--escape"])

# --- CSV ---
case("csv_unterminated_quote.csv", 'key,value\nk1,v1\nk2,"never closed\nk3,v3\n',
     "3: unterminated quoted field: the record runs to the end of the input (truncated file?)", ["k1"])
case("csv_truncated_in_quote.csv", 'key,value\nk1,v1\nk2,v2\nk3,"abc',
     "4: unterminated quoted field: the record runs to the end of the input (truncated file?)",
     ["k1", "k2"])
case("csv_truncated_mid_record.csv", "key,value\nk1,v1\nk2",
     "3: 1 fields, but the header has 2 columns", ["k1"])
case("csv_missing_column.csv", "key,value\nk1,v1\nk2\nk3,v3\n",
     "3: 1 fields, but the header has 2 columns", ["k1"])
case("csv_extra_column.csv", "key,value\nk1,v1\nk2,v2,x\n",
     "3: 3 fields, but the header has 2 columns", ["k1"])
case("csv_empty_key.csv", "key,value\nk1,v1\n,v2\n", '3: column 1 ("key"): empty key', ["k1"])
case("csv_key_too_long.csv", f"key,value\nk1,v1\n{LONG},v\n",
     '3: column 1 ("key"): key of 1025 bytes exceeds the limit of 1024 bytes', ["k1"])
case("csv_bad_utf8_row.csv", b"key,value\nk1,v1\nk2,\xff\xfe\n",
     '3: column 2 ("value"): invalid UTF-8 (the row is stored as JSON, which must be UTF-8; use --value-column for binary)',
     ["k1"])
case("csv_bad_utf8_header.csv", b"key,\xffvalue\nk1,v1\n", "1: header column 2 is not valid UTF-8", [])
case("csv_no_key_column.csv", "key,value\nk1,v1\n",
     '1: no key column named "id" in the header (columns: key, value)', [], ["--key-column", "id"])
case("csv_no_value_column.csv", "key,value\nk1,v1\n",
     '1: no value column named "val" in the header (columns: key, value)', [],
     ["--value-column", "val"])
case("csv_nul.csv", b"key,value\nk1,v1\nk2,a\x00b\n", '3: column 2 ("value"): NUL byte in a text field', ["k1"])
case("csv_multiline_then_short.csv", 'key,value\nk1,"line one\nline two"\nk2\n',
     "4: 1 fields, but the header has 2 columns", ["k1"])

# --- JSONL ---
case("jsonl_invalid_json.jsonl", '{"key":"k1","value":"v1"}\n{"key":"k2","value":}\n',
     "2:21: invalid JSON: expected value", ["k1"])
case("jsonl_trailing_comma.jsonl", '{"key":"k1","value":"v1"}\n{"key":"k2","value":"v2",}\n',
     "2:26: invalid JSON: trailing comma", ["k1"])
case("jsonl_not_object.jsonl", '{"key":"k1","value":"v1"}\n["k2","v2"]\n', "2:1: expected a JSON object", ["k1"])
case("jsonl_missing_key.jsonl", '{"key":"k1","value":"v1"}\n{"value":"v2"}\n', '2: no "key" field', ["k1"])
case("jsonl_missing_value.jsonl", '{"key":"k1","value":"v1"}\n{"key":"k2"}\n', '2: no "value" field', ["k1"])
case("jsonl_key_not_string.jsonl", '{"key":"k1","value":"v1"}\n{"key":2,"value":"v2"}\n',
     '2: field "key" must be a string', ["k1"])
case("jsonl_empty_key.jsonl", '{"key":"k1","value":"v1"}\n{"key":"","value":"v2"}\n', "2: empty key", ["k1"])
case("jsonl_key_too_long.jsonl", '{"key":"k1","value":"v1"}\n{"key":"%s","value":"v"}\n' % LONG,
     "2: key of 1025 bytes exceeds the limit of 1024 bytes", ["k1"])
case("jsonl_bad_utf8.jsonl", b'{"key":"k1","value":"v1"}\n{"key":"k\xff2","value":"v2"}\n',
     "2:10: invalid UTF-8 (JSON text must be UTF-8; use --escape with base64 for binary)", ["k1"])
case("jsonl_nul.jsonl", b'{"key":"k1","value":"v1"}\n{"key":"k2","value":"a\x00b"}\n',
     "2:23: invalid JSON: control character (\\u0000-\\u001F) found while parsing a string", ["k1"])
case("jsonl_truncated.jsonl", '{"key":"k1","value":"v1"}\n{"key":"k2","val',
     "2:16: invalid JSON: EOF while parsing a string", ["k1"])
case("jsonl_lone_surrogate.jsonl", '{"key":"k1","value":"v1"}\n{"key":"\\ud800x","value":"v2"}\n',
     "2:15: invalid JSON: unexpected end of hex escape", ["k1"])
case("jsonl_two_objects.jsonl", '{"key":"k1","value":"v1"}\n{"key":"k2","value":"v2"} {"key":"k3"}\n',
     "2:27: invalid JSON: trailing characters", ["k1"])
case("jsonl_bad_base64.jsonl", '{"key":"azE=","value":"djE="}\n{"key":"!!","value":"djI="}\n',
     '2: field "key": invalid base64: Invalid symbol 33, offset 0.', ["k1"], ["--escape"])
case("jsonl_no_custom_field.jsonl", '{"key":"k1","value":"v1"}\n', '1: no "id" field', [], ["--key-field", "id"])
case("jsonl_crlf_then_bad.jsonl", '{"key":"k1","value":"v1"}\r\n{"key":"k2","value":"v2"}\r\n{"key":"k3"\r\n',
     "3:12: invalid JSON: EOF while parsing an object", ["k1", "k2"])

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))
with open(os.path.join(HERE, "manifest.jsonl"), "w") as m:
    for name, data, entry in cases:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        m.write(json.dumps(entry) + "\n")
print(f"{len(cases)} cases")
