#!/usr/bin/env bash
# The issue-5 figures: tierkv's device reads per get and multi_get throughput at queue depths
# 1, 8, 32 and 128 with direct I/O on every tier, beside fio's random 4 KiB read IOPS on the store's own
# data files at the same depths, interleaved in one run (REPEAT repeats, medians).
# Usage: tools/bench-io.sh [extra kvbench io flags]   (KEYS=2000000 SECONDS_PER_RUN=3 REPEAT=3
#        DIR=/var/tmp; the store must sit on a real file system, not a tmpfs: O_DIRECT needs one)
set -euo pipefail
KEYS=${KEYS:-2000000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
REPEAT=${REPEAT:-3}
DIR=${DIR:-/var/tmp}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench-data/results"
if ! command -v fio >/dev/null; then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq fio
fi
(cd "$ROOT" && cargo build --release -q -p kvbench)
WORK=$(mktemp -d "$DIR/tierkv-bench-io.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$ROOT/target/release/kvbench" io --dir "$WORK" --keys "$KEYS" --seconds "$SECONDS_PER_RUN" \
    --repeat "$REPEAT" --out "$OUT" "$@"
