#!/usr/bin/env bash
# The process-kill loop's long mode: kvtool load, compact and rebalance on one real store, each run
# killed with SIGKILL at a random moment, every cycle checked by the oracle in cli/tests/kill_loop.rs
# (the same test runs 200 cycles under `cargo test`). See docs/reliability.md.
#
#   tools/kill-loop.sh [CYCLES] [SEED]       # defaults: 10000 cycles, a seed from the clock
#   KVTOOL_KILL_VERBOSE=1 tools/kill-loop.sh 500 42   # a line per cycle
#
# On a failure the test prints the seed, the cycle, what differs, and the kept store directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export KVTOOL_KILL_CYCLES="${1:-10000}"
export KVTOOL_KILL_SEED="${2:-$(date +%s)}"
echo "kill loop: $KVTOOL_KILL_CYCLES cycles, seed $KVTOOL_KILL_SEED" >&2
# Progress every 100 cycles goes to stderr with KVTOOL_KILL_VERBOSE; without it only the summary.
exec nice cargo test -p kvtool --test kill_loop -- --nocapture
