#!/bin/sh
# demo_test.sh - `make demo SERVE=0` runs to the end and leaves a trained
# model behind.
#
# Usage: demo_test.sh SOURCE_DIR BUILD_DIR CHUBD_SH
# Runs scripts/demo.sh with SERVE=0 on a short training run in a temporary
# state directory (CHUB_DEMO_DIR), then checks: exit status 0, the demo's
# chubd stopped again, the key and settings kept in the state directory,
# "View model at" printed; then a second run reuses the same key; then the
# real chubd restarted on the demo's data directory shows the models as
# trained to the demo's key.
set -u
SRC=$1
BUILD=$2
# shellcheck source=/dev/null # the path comes from CMake
. "$3"

fail() {
  echo "FAIL: $*" >&2
  [ -f "$STATE/train.log" ] && { echo "---- train.log" >&2; cat "$STATE/train.log" >&2; }
  [ -f "$STATE/chubd.log" ] && { echo "---- chubd.log" >&2; tail -n 40 "$STATE/chubd.log" >&2; }
  exit 1
}

STATE=$(mktemp -d "${TMPDIR:-/tmp}/chub-demo-test-XXXXXX") || exit 1
cleanup_state() {
  # A chubd the demo left behind (it should not) is stopped by its PID.
  if [ -s "$STATE/chubd.pid" ]; then
    kill -TERM "$(cat "$STATE/chubd.pid")" 2>/dev/null
  fi
  if [ -n "${CHUB_KEEP_TMP:-}" ]; then echo "keeping $STATE" >&2; else rm -rf "$STATE"; fi
}
trap cleanup_state EXIT
trap 'exit 143' INT TERM # so that the EXIT trap runs when ctest gives up

run_demo() {
  # A high first port keeps the test away from a demo a person may be
  # running on 8080; the search for a free port is the same.
  SERVE=0 BUILD=$BUILD CHUB_DEMO_DIR=$STATE CHUB_TESTING=1 DEMO_PORT=28080 \
    DEMO_ARGS="--limit 2000 --epochs 2" \
    timeout 300 sh "$SRC/scripts/demo.sh" >"$STATE/demo.out" 2>&1
}

run_demo
rc=$?
cat "$STATE/demo.out"
[ "$rc" -eq 0 ] || fail "demo.sh SERVE=0 exited $rc"
grep -q "View model at http://127.0.0.1:[0-9]*/models/" "$STATE/demo.out" ||
  fail "no 'View model at' line"
grep -q "epoch   2/2" "$STATE/demo.out" || fail "no per-epoch line for epoch 2"
[ -s "$STATE/api_key" ] || fail "no API key saved in the state directory"
[ -f "$STATE/config/settings.json" ] || fail "no demo-local settings.json"
grep -q "$(cat "$STATE/api_key")" "$STATE/config/settings.json" ||
  fail "the demo settings do not hold the demo key"
[ -f "$STATE/weights/best.bin" ] || fail "no best.bin"
[ ! -e "$STATE/chubd.pid" ] || fail "SERVE=0 left chubd.pid behind"
KEY1=$(cat "$STATE/api_key")

# Runs persist: a second demo reuses the key and adds a second model.
run_demo
rc=$?
[ "$rc" -eq 0 ] || { cat "$STATE/demo.out"; fail "second demo.sh exited $rc"; }
[ "$(cat "$STATE/api_key")" = "$KEY1" ] || fail "second run made a new key"

# The hub, started again on the demo's data, shows both models trained.
chubd_start "$BUILD/src/server/chubd" "$STATE/chubd" || fail "chubd restart"
trap 'chubd_cleanup; cleanup_state' EXIT
body=$(curl -sf -H "x-api-key: $KEY1" "$CHUBD_URL/v1/models?limit=10") ||
  fail "GET /v1/models with the demo key failed"
n=$(printf '%s' "$body" | grep -o '"status": *"trained"' | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 trained models, found $n in: $body"
echo "demo_test: ok"
