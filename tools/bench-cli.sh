#!/usr/bin/env bash
# Benchmark of kvtool against the issue-4 targets:
#   load of an N-line TSV (VALUE-byte values) >= 1,000,000 records/s end to end, parse included;
#   the progress bar costs < 2 % (bar vs --quiet, both on a pseudo-terminal);
#   get --keys-from of GETS keys >= 500,000 keys/s.
# The load is also timed with one writer thread (--writers 1; the default is one per core, at most 4),
# to show what the parallel writers bring on this machine.
# Usage: tools/bench-cli.sh            (N=10000000 VALUE=100 GETS=1000000 SHARDS=8 RUNS=3)
#        N=1000000 tools/bench-cli.sh  (a quick run)
# WORK=DIR keeps the generated data there (default: a temp dir removed at the end).
set -euo pipefail

N=${N:-10000000}
VALUE=${VALUE:-100}
GETS=${GETS:-1000000}
SHARDS=${SHARDS:-8}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${WORK:-}" ]]; then
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

echo "== building kvtool (release)" >&2
(cd "$ROOT" && cargo build --release -q -p kvtool 2> "$WORK/build.log") || { cat "$WORK/build.log" >&2; exit 1; }
BIN="$ROOT/target/release/kvtool"

DATA="$WORK/data-$N-$VALUE.tsv"
KEYS="$WORK/keys-$GETS-$N.txt"
if [[ ! -s "$DATA" ]]; then
    echo "== generating $N records with $VALUE-byte values" >&2
    awk -v n="$N" -v w="$VALUE" 'BEGIN {
        v = sprintf("%" w "s", ""); gsub(/ /, "v", v)
        for (i = 0; i < n; i++) printf "key%012d\t%s\n", i, v }' > "$DATA"
fi
if [[ ! -s "$KEYS" ]]; then
    awk -v g="$GETS" -v n="$N" 'BEGIN { srand(42); for (i = 0; i < g; i++) printf "key%012d\n", int(rand() * n) }' > "$KEYS"
fi
BYTES=$(stat -c %s "$DATA")

now() { date +%s.%N; }
# best of RUNS wall-clock seconds of "$@" (each run on a fresh store when it loads)
best() {
    local best="" t0 t1 dt
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/db"
        if [[ "$1" == get ]]; then
            "$BIN" --db "$WORK/db-get" -q get --keys-from "$KEYS" > /dev/null
            t0=$(now); "$BIN" --db "$WORK/db-get" -q get --keys-from "$KEYS" > /dev/null; t1=$(now)
        else
            t0=$(now); "$@" > /dev/null; t1=$(now)
        fi
        dt=$(echo "$t1 - $t0" | bc -l)
        if [[ -z "$best" ]] || (( $(echo "$dt < $best" | bc -l) )); then best=$dt; fi
    done
    echo "$best"
}
rate() { echo "scale=0; $1 / $2" | bc -l; }

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $N records, $BYTES bytes" >&2

PARSE=$(best "$BIN" -q load --dry-run "$DATA")
QUIET=$(best "$BIN" --db "$WORK/db" --shards "$SHARDS" -q load "$DATA")
ONE=$(best "$BIN" --db "$WORK/db" --shards "$SHARDS" -q load --writers 1 "$DATA")
# The bar needs a terminal on stderr: run under script(1), which provides a pseudo-terminal. Its cost
# is measured against the same load under the same pseudo-terminal with --quiet, so the wrapper's own
# cost cancels out.
BAR=$(best script -qec "'$BIN' --db '$WORK/db' --shards $SHARDS load '$DATA'" /dev/null)
PTYQ=$(best script -qec "'$BIN' --db '$WORK/db' --shards $SHARDS -q load '$DATA'" /dev/null)
rm -rf "$WORK/db-get"
"$BIN" --db "$WORK/db-get" --shards "$SHARDS" -q load "$DATA"
GET=$(best get)

printf '%-34s %10s %14s %10s\n' "measurement" "seconds" "per second" "target"
printf '%-34s %10.3f %14s %10s\n' "parse only (load --dry-run)" "$PARSE" "$(rate "$N" "$PARSE")" ""
printf '%-34s %10.3f %14s %10s\n' "load --quiet (end to end)" "$QUIET" "$(rate "$N" "$QUIET")" ">=1000000"
printf '%-34s %10.3f %14s %10s\n' "load --quiet, one writer thread" "$ONE" "$(rate "$N" "$ONE")" ""
printf '%-34s %10.3f %14s %10s\n' "load with progress bar (pty)" "$BAR" "$(rate "$N" "$BAR")" ""
printf '%-34s %10.3f %14s %10s\n' "load --quiet (same pty)" "$PTYQ" "$(rate "$N" "$PTYQ")" ""
printf '%-34s %10.2f %%\n' "progress bar cost" "$(echo "100 * ($BAR - $PTYQ) / $PTYQ" | bc -l)"
printf '%-34s %10.3f %14s %10s\n' "get --keys-from ($GETS keys)" "$GET" "$(rate "$GETS" "$GET")" ">=500000"
printf '%-34s %10.1f MB/s\n' "load input rate" "$(echo "$BYTES / $QUIET / 1000000" | bc -l)"
