//! # tiersim — capacity planning for tierkv
//!
//! Answers the design note's questions — "the number of shards, the SSD/HDD ratio, how often to rebuild
//! the filter, the map parameters, how often the SSD dies" — from device profiles and workload specs
//! (`bench-data/`), measuring with the engine's own hash, Robin Hood table and Bloom filter where a
//! formula alone would be a guess, and checking itself against a real store (`validate`).
//!
//! Start reading at [`plan`], which runs every model for one workload. Each model returns a plain
//! serialisable result with a `table()` for humans and the main curve for plotting; the `kvtool
//! simulate` subcommands only parse arguments and print. `docs/simulations.md` gives the formulas and
//! their sources.

#![warn(missing_docs)]

pub mod bloom;
pub mod device;
pub mod error;
pub mod hotwalk;
pub mod lifetime;
pub mod model;
pub mod plan;
pub mod ratio;
pub mod shards;
pub mod skew;
pub mod svg;
pub mod table;
pub mod trace;
pub mod validate;
pub mod workload;

pub use device::{DeviceKind, DeviceProfile};
pub use error::{Error, Result};
pub use workload::{Workload, WorkloadSpec};
