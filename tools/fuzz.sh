#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (docs/fuzzing.md) for SECONDS each, at most $FUZZ_JOBS (default 2)
# at a time, and prints per target: executions, coverage, corpus entries and the result. Exits
# non-zero when any target crashes; the crashing input is kept under fuzz/artifacts/<target>/.
#
#   tools/fuzz.sh SECONDS [TARGET...]     (no TARGET: every target)
#
# Needs only the stable toolchain: installs cargo-fuzz when missing, builds without sanitizers
# (`-s none`: sanitizers need nightly; coverage instrumentation and libFuzzer do not). Corpora grow
# in fuzz/corpus/<target>/ (ignored by git; the committed seeds are in fuzz/seeds/<target>/).
# Logs: fuzz/logs/<target>.log, or $FUZZ_LOG_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
jobs=${FUZZ_JOBS:-2}
all_targets=(decoders roundtrip log_recovery parsers model_ops)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
log_dir=${FUZZ_LOG_DIR:-fuzz/logs}
mkdir -p "$log_dir"
echo "fuzz: building every target"
cargo fuzz build -s none >"$log_dir/build.log" 2>&1 || {
  tail -40 "$log_dir/build.log" >&2
  exit 1
}
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release

# Runs one target; its exit status is libFuzzer's (0 = no crash within the time).
run_one() {
  local t=$1
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  # -timeout: an input running longer than 10 s is a hang; -rss_limit_mb: runaway memory is a crash.
  local rc=0
  "$bin_dir/$t" "fuzz/corpus/$t" "${seeds[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
    >"$log_dir/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$log_dir/$t.status"
}

pids=()
names=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  rm -f "$log_dir/$t.status"
  run_one "$t" &
  pids+=($!)
  names+=("$t")
done

failed=0
printf '%-14s %12s %8s %8s  %s\n' target executions cov corpus result
for i in "${!pids[@]}"; do
  t=${names[$i]}
  wait "${pids[$i]}" || true
  status=$(cat "$log_dir/$t.status" 2>/dev/null || echo 1)
  log="$log_dir/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    result="CRASH (exit $status) ${artifact:-see $log}"
    grep -m1 -E 'panicked at|ERROR: libFuzzer' "$log" >&2 || true
  fi
  printf '%-14s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "$corpus" "$result"
done
exit $failed
