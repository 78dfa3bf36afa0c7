#!/bin/sh
# bench/conns/run.sh BUILD_DIR - chubd's resident memory with 1, 100 and
# 1000 idle keep-alive clients, and the growth per connection (the issue's
# ceiling: 64 KiB). Figures only; nothing is asserted.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case $BUILD in /*) ;; *) [ -d "$BUILD" ] || BUILD=$ROOT/$BUILD ;; esac
BUILD=$(cd "$BUILD" && pwd)
BIN="$BUILD/bench/conns/bench_conns"
CHUBD_BIN=$(find "$BUILD" -name chubd -type f -perm -u+x 2>/dev/null | head -n1)
[ -x "$BIN" ] && [ -n "$CHUBD_BIN" ] || {
  echo "bench/conns: build bench_conns and chubd first" >&2
  exit 1
}
# 1000 clients and chubd's side of them: more descriptors than the usual
# soft limit of 1024.
ulimit -n 4096 2>/dev/null || true
. "$ROOT/tests/support/chubd.sh"
chubd_start "$CHUBD_BIN" - --max-connections 2000 --max-per-ip 2000 \
  --idle-timeout 600
trap chubd_cleanup EXIT
trap 'chubd_cleanup; exit 130' HUP INT PIPE TERM
"$BIN" "$CHUBD_PORT" "$CHUBD_PID"
