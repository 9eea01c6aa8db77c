//! The library side of `kvtool`: the modules the binary (`main.rs`) shares with the fuzz targets in
//! `fuzz/` — the input parsers of `kvtool load` (`input`), the escapes they decode (`escape`) and the
//! engine seam they check limits against (`engine`). It owns no logic of its own; commands, output
//! and the argument grammar stay in the binary.

pub mod engine;
pub mod escape;
pub mod input;
