#!/usr/bin/env bash
# The project's test command (README): formatting, lints, then every test of the workspace.
# Long soak modes are separate: see docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace 2>&1 | tee target/test-output.txt
summary=$(grep -E '^test result:' target/test-output.txt | awk '{p+=$4; f+=$6; s+=$8} END {print p" passed, "f" failed, "s" skipped"}')
echo "tests: $summary"
