#!/bin/sh
# bench/scale/run.sh BUILD_DIR - flat cost as the hub grows. For 100 and
# then 100,000 models of one owner (plus one model with as many epochs:
# 100, then 100,000), filled through chubd's own store by
# bench_scale_fill, the real chubd is started on a free loopback port and
# measure.py times (p50/p99, one keep-alive connection) the first and the
# last page of GET /v1/models, GET /v1/models/{id}, the big model's metrics
# read-back (time, rate, chubd's peak memory) and its ?points=1280 answer,
# then page.cjs times the model page in Chromium until its charts are
# drawn. Each figure is printed at both sizes with the ratio and the
# ceiling (2.0). BENCH_SCALE_MODELS changes the large size (default
# 100000). Figures only; nothing is asserted.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case $BUILD in /*) ;; *) [ -d "$BUILD" ] || BUILD=$ROOT/$BUILD ;; esac
BUILD=$(cd "$BUILD" && pwd)
FILL="$BUILD/bench/scale/bench_scale_fill"
CHUBD_BIN=$(find "$BUILD" -name chubd -type f -perm -u+x 2>/dev/null | head -n1)
MODULES="$BUILD/tests/browser/npm/node_modules"
LARGE=${BENCH_SCALE_MODELS:-100000}
# A p99 of 1000 requests is their tenth slowest; of 200 it would be the
# second, which one stall on a shared machine decides.
REQUESTS=${BENCH_SCALE_REQUESTS:-1000}
LOADS=${BENCH_SCALE_LOADS:-10}
[ -x "$FILL" ] && [ -n "$CHUBD_BIN" ] || {
  echo "bench/scale: build bench_scale_fill and chubd first" >&2
  exit 1
}
BROWSER=1
if ! command -v node >/dev/null 2>&1 || [ ! -d "$MODULES/playwright-core" ] ||
  [ ! -x /usr/bin/chromium ]; then
  echo "bench/scale: no node, playwright-core ($MODULES) or Chromium:" \
    "the page figure is skipped" >&2
  BROWSER=
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/chub-bench-scale-XXXXXX")
. "$ROOT/tests/support/chubd.sh"
cleanup() {
  chubd_cleanup
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'cleanup; exit 130' HUP INT PIPE TERM

# One size: fill a data dir, start chubd on it, measure, stop.
one_size() {
  size=$1
  data="$OUT/data-$size"
  mkdir -p "$data"
  "$FILL" "$data" owner "$size" "$size" >"$OUT/fill-$size.txt"
  big=$(awk '$1 == "big" { print $2 }' "$OUT/fill-$size.txt")
  sed -n 's/^fill /  fill: /p' "$OUT/fill-$size.txt"
  chubd_start "$CHUBD_BIN" "$data" --rate-limit 1000000 --rate-burst 1000000
  trap cleanup EXIT
  trap 'cleanup; exit 130' HUP INT PIPE TERM
  python3 "$HERE/measure.py" run "$CHUBD_URL" "$CHUBD_KEY" "$CHUBD_PID" \
    "$big" "$size" "$OUT/http-$size.json" "$REQUESTS"
  if [ -n "$BROWSER" ]; then
    node "$HERE/page.cjs" --modules "$MODULES" --url "$CHUBD_URL" \
      --model "$big" --loads "$LOADS" --out "$OUT/page-$size.json"
  fi
  chubd_stop
}

echo "  sizes: 100 and $LARGE models (+1 with as many epochs);" \
  "$REQUESTS requests per figure, $LOADS page loads"
one_size 100
chubd_cleanup
one_size "$LARGE"
if [ -n "$BROWSER" ]; then
  python3 "$HERE/measure.py" report "$OUT/http-100.json" \
    "$OUT/http-$LARGE.json" "$OUT/page-100.json" "$OUT/page-$LARGE.json"
else
  python3 "$HERE/measure.py" report "$OUT/http-100.json" \
    "$OUT/http-$LARGE.json"
fi
