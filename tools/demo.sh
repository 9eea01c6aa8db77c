#!/usr/bin/env bash
# The README's run command: builds the engine, loads the sample data into ./demo-store and queries it.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-./demo-store}
cargo run --quiet --release -p tierkv --example sample -- "$store" bench-data/samples/cities.tsv \
  city:paris:0015 city:tokyo:0019 city:nowhere:9999
