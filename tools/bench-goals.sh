#!/usr/bin/env bash
# The issue-7 goal figures: tierkv against the fastest peers of the full suite (tools/bench-suite.sh),
# 10 000 000 keys, 100-byte values, REPEAT interleaved repeats, the median kept. Restricting each
# workload to the peers that were fastest in the full suite lets 3 repeats fit in ~25 minutes on a
# 2-core machine; run bench-suite.sh for every engine.
# Usage: tools/bench-goals.sh                       (KEYS=10000000 OPS=1000000 REPEAT=3)
set -euo pipefail
KEYS=${KEYS:-10000000}
OPS=${OPS:-1000000}
REPEAT=${REPEAT:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench-data/results"
"$ROOT/tools/install-peers.sh" >&2
(cd "$ROOT" && cargo build --release -q -p kvbench --features peers)
BIN="$ROOT/target/release/kvbench"
FILES=()
while read -r w engines; do
    before=$(ls "$OUT"/*.json 2>/dev/null | sort || true)
    (cd "$ROOT" && "$BIN" run --workload "bench-data/workloads/$w.json" --engines "$engines" \
        --keys "$KEYS" --ops "$OPS" --value-size 100 --repeat "$REPEAT" --out "$OUT" > /dev/null)
    after=$(ls "$OUT"/*.json | sort)
    FILES+=($(comm -13 <(echo "$before") <(echo "$after")))
done <<'LIST'
load tierkv,tkrzw,candystore
get-uniform tierkv,tkrzw,candystore
get-zipf tierkv,tkrzw,candystore
get-missing tierkv,fjall,candystore
ycsb-a tierkv,candystore
ycsb-b tierkv,candystore
LIST
"$BIN" report --svg "$OUT/goals-" "${FILES[@]}" | tee "$OUT/goals.md"
