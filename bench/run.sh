#!/bin/sh
# Runs every benchmark under bench/ against BUILD (default build). Each one
# prints its own figures (median, p99, and a ratio against a reference run in
# the same script); nothing here asserts a time.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for run in "$ROOT"/bench/*/run.sh; do
  [ -x "$run" ] || continue
  echo "== $(basename "$(dirname "$run")")"
  "$run" "$BUILD"
done
