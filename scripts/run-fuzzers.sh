#!/bin/sh
# Runs every libFuzzer target for a bounded time over its checked-in seed
# corpus and prints the executions per target. Fails on any crash; the
# crashing input is kept under BUILD/fuzz-artifacts/ to become a regression
# test. FUZZ_SECONDS (default 30) bounds each target.
set -eu
BUILD=${1:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
found=0
for dir in "$ROOT"/fuzz/*/; do
  name=$(basename "$dir")
  bin="$BUILD/fuzz/$name/fuzz_$name"
  [ -x "$bin" ] || continue
  found=$((found + 1))
  work="$BUILD/fuzz-work/$name"
  art="$BUILD/fuzz-artifacts/$name/"
  mkdir -p "$work" "$art"
  log="$BUILD/fuzz-work/$name.log"
  if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$art" "$work" "$dir/corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz_$name: ${runs:-?} executions in ${SECONDS_EACH}s, no crash"
  else
    echo "fuzz_$name: FAILED (see $log; input under $art)"
    tail -n 30 "$log"
    status=1
  fi
done
[ "$found" -gt 0 ] || { echo "run-fuzzers: no fuzz targets built under $BUILD/fuzz"; exit 1; }
exit $status
