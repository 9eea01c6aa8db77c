#!/usr/bin/env bash
# Crash at every sync point, long mode: engine/tests/crash_points.rs (the test CI runs with 20 seeded
# workloads) over SEEDS workloads starting at seed START, split over PROCS processes, each under
# `nice`. Every case is one (workload, sync point, crash mode); the cases are summed at the end.
# See docs/reliability.md.
#
#   tools/crash-points.sh SEEDS [START] [PROCS]     # defaults: START 0, PROCS 2
#   CRASH_LOG_DIR=/some/dir tools/crash-points.sh 1600 1000 2   # keep the per-process logs there
#
# Built with the test profile (opt-level 2, debug assertions and overflow checks on). Each process
# logs a line per workload (`seed S: N cases, C so far`) to CRASH_LOG_DIR/procP.log (default: a new
# temporary directory, printed). On a failure the log names the seed, the crash point and the mode;
# rerun it with TIERKV_CRASH_SEEDS=1 TIERKV_CRASH_SEED_START=S TIERKV_CRASH_ONLY_SYNC=K
# TIERKV_CRASH_VERBOSE=1 cargo test -p tierkv --test crash_points -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:?usage: tools/crash-points.sh SEEDS [START] [PROCS]}"
start="${2:-0}"
procs="${3:-2}"
logs="${CRASH_LOG_DIR:-$(mktemp -d -t tierkv-crash.XXXXXX)}"
mkdir -p "$logs"

bin=$(cargo test -p tierkv --test crash_points --no-run --message-format=json |
    grep -o '"executable":"[^"]*crash_points[^"]*"' | tail -n 1 | cut -d '"' -f 4)
if [ ! -x "$bin" ]; then
    echo "crash-points: the test did not build" >&2
    exit 2
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${CRASH_COMMIT:-unknown}")
if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet HEAD -- engine; then
    commit="$commit + uncommitted changes in engine/"
fi
echo "crash points: seeds $start..$((start + seeds - 1)) over $procs processes, commit $commit, logs in $logs" >&2

began=$(date +%s)
pids=()
at=$start
for ((p = 0; p < procs; p++)); do
    n=$((seeds / procs + (p < seeds % procs ? 1 : 0)))
    echo "process $p: seeds $at..$((at + n - 1))" >&2
    TIERKV_CRASH_SEEDS=$n TIERKV_CRASH_SEED_START=$at TIERKV_CRASH_PROGRESS=1 \
        nice -n "${CRASH_NICE:-10}" "$bin" --nocapture >"$logs/proc$p.log" 2>&1 &
    pids+=($!)
    at=$((at + n))
done

failed=0
for ((p = 0; p < procs; p++)); do
    if ! wait "${pids[$p]}"; then
        failed=1
        echo "crash-points: process $p FAILED, see $logs/proc$p.log:" >&2
        grep -m 3 -E "panicked|FAILED" "$logs/proc$p.log" >&2 || true
    fi
done

# Cases and workloads from the per-workload lines (so a failed run still reports what passed).
cases=0
workloads=0
for ((p = 0; p < procs; p++)); do
    c=$(grep -o '[0-9]* so far' "$logs/proc$p.log" | tail -n 1 | cut -d ' ' -f 1)
    w=$(grep -c '^crash_points: seed ' "$logs/proc$p.log" || true)
    cases=$((cases + ${c:-0}))
    workloads=$((workloads + w))
done
secs=$(($(date +%s) - began))
if [ "$failed" = 0 ]; then
    result="all recovered a prefix"
else
    result="FAILED"
fi
echo "crash points: $cases cases over $workloads workloads (seeds $start..$((start + seeds - 1)), $procs processes, commit $commit) in $secs s: $result"
exit "$failed"
