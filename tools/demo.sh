#!/usr/bin/env bash
# The README's run command: builds kvtool, loads the sample data into ./demo-store and queries it.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-./demo-store}
cargo build --quiet --release -p kvtool
kv() { ./target/release/kvtool --db "$store" "$@"; }
kv load bench-data/samples/cities.tsv
kv get city:paris:0015 city:tokyo:0019
kv get city:nowhere:9999 || echo "(city:nowhere:9999 is absent: exit code $?)"
kv stats
