#!/bin/sh
# bench/upload/run.sh BUILD_DIR - a 1 GiB checkpoint through libchub to
# chubd, beside the disk's own write+fsync rate for the same size on the
# same filesystem, in alternating rounds (bench_upload.c says why), with
# the peak memory growth of both ends. BENCH_MIB changes the size,
# BENCH_UPLOAD_ROUNDS the rounds (3). Figures only; nothing is asserted.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case $BUILD in /*) ;; *) [ -d "$BUILD" ] || BUILD=$ROOT/$BUILD ;; esac
BUILD=$(cd "$BUILD" && pwd)
BIN="$BUILD/bench/upload/bench_upload"
CHUBD_BIN=$(find "$BUILD" -name chubd -type f -perm -u+x 2>/dev/null | head -n1)
[ -x "$BIN" ] && [ -n "$CHUBD_BIN" ] || {
  echo "bench/upload: build bench_upload and chubd first" >&2
  exit 1
}
. "$ROOT/tests/support/chubd.sh"
chubd_start "$CHUBD_BIN" - --max-upload 17179869184 --metrics
trap chubd_cleanup EXIT
trap 'chubd_cleanup; exit 130' HUP INT PIPE TERM
mkdir -p "$CHUBD_WORK/client"
"$BIN" "$CHUBD_URL" "$CHUBD_KEY" "$CHUBD_PID" "$CHUBD_WORK/client" \
  "${BENCH_MIB:-1024}" "${BENCH_UPLOAD_ROUNDS:-3}"
# How libchub gave the SHA-256 (after the file: hashed while sent, read once).
curl -s "$CHUBD_URL/metrics" | sed -n 's/^chubd_uploads_received_total{digest="\(.*\)"} \([1-9][0-9]*\)$/uploads with the digest given as: \1 (\2)/p'
