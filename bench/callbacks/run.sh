#!/bin/sh
# Runs the callback-cost benchmark of BUILD_DIR (default build): chub's HUB
# callbacks on the training thread with the hub slow and down, beside the
# reference's blocking-request pattern. Prints figures; asserts nothing.
set -eu
BUILD=${1:-build}
bin="$BUILD/bench/callbacks/bench_callbacks"
if [ ! -x "$bin" ]; then
  echo "bench/callbacks: $bin is not built (cmake --build $BUILD --target bench_callbacks)" >&2
  exit 1
fi
exec "$bin"
