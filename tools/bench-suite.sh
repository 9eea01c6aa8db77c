#!/usr/bin/env bash
# The standard kvbench suite on a fresh machine: installs the peers, builds kvbench with every
# in-process peer, runs each workload on every engine (interleaved, REPEAT times, median kept) and
# writes the results to bench-data/results/ (JSON per workload, Markdown, SVG), then prints the
# merged table (also saved as bench-data/results/latest.md with charts latest-ops.svg and
# latest-latency.svg).
#
# Usage: tools/bench-suite.sh                    (KEYS=10000000 OPS=2000000 VALUE=100 REPEAT=3)
#        KEYS=1000000 OPS=500000 REPEAT=1 tools/bench-suite.sh      (a quick run)
#        WORKLOADS="load get-uniform" ENGINES=tierkv,rocksdb tools/bench-suite.sh
# DIR=PATH puts the stores there (default: a temporary directory on the same file system as /tmp).
set -euo pipefail

KEYS=${KEYS:-10000000}
OPS=${OPS:-2000000}
VALUE=${VALUE:-100}
REPEAT=${REPEAT:-3}
THREADS=${THREADS:-1}
ENGINES=${ENGINES:-tierkv,rocksdb,tkrzw,candystore,fjall,redb}
WORKLOADS=${WORKLOADS:-load get-uniform get-zipf get-missing ycsb-a ycsb-b ycsb-c ycsb-d ycsb-f delete-heavy}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench-data/results"

"$ROOT/tools/install-peers.sh"
echo "== building kvbench (release, all in-process peers)" >&2
(cd "$ROOT" && cargo build --release -q -p kvbench --features peers)
BIN="$ROOT/target/release/kvbench"

DIR_ARGS=()
if [[ -n "${DIR:-}" ]]; then DIR_ARGS=(--dir "$DIR"); fi
FILES=()
for w in $WORKLOADS; do
    echo "== $w: $ENGINES, $KEYS keys, $OPS ops, $VALUE-byte values, $REPEAT repeats" >&2
    before=$(ls "$OUT"/*.json 2>/dev/null | sort || true)
    (cd "$ROOT" && "$BIN" run --workload "bench-data/workloads/$w.json" --engines "$ENGINES" \
        --keys "$KEYS" --ops "$OPS" --value-size "$VALUE" --threads "$THREADS" \
        --repeat "$REPEAT" --out "$OUT" "${DIR_ARGS[@]}" > /dev/null)
    after=$(ls "$OUT"/*.json | sort)
    FILES+=($(comm -13 <(echo "$before") <(echo "$after")))
done
"$BIN" report --svg "$OUT/latest-" "${FILES[@]}" | tee "$OUT/latest.md"
