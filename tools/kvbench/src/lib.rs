//! # kvbench — tierkv against the engines users would pick instead
//!
//! One workload spec (`bench-data/workloads/*.json`, parsed by [`tiersim::WorkloadSpec`]), several
//! engines, one machine, one run. In-process engines ([`engines`]) each run in a child process of
//! their own (`kvbench one`) so that bytes written, peak RSS and disk usage are measured per engine by
//! the kernel ([`measure`]); external peers (RocksDB's `db_bench`, tkrzw's `tkrzw_dbm_perf`) run as
//! processes with equivalent flags ([`external`]). Results are JSON ([`result`]), a Markdown table
//! and SVG charts ([`report`]).
//!
//! `kvbench io` ([`iobench`]) measures the engine's device reads per get and `multi_get` throughput
//! at several queue depths beside `fio` on the same files. `kvbench readers` ([`readers`]) measures
//! `get` thread scaling and a read-only process's throughput beside a loading writer process.
//!
//! Start reading at [`driver`] (what is timed and how), then [`engines`] (one adapter per engine).
//! `docs/benchmarks.md` explains the method, the flag mappings of the external tools and the results.

pub mod driver;
pub mod engines;
pub mod external;
pub mod hist;
pub mod iobench;
pub mod measure;
pub mod orchestrate;
pub mod readers;
pub mod report;
pub mod result;
pub mod workload;
