#!/bin/sh
# bench/chubd/run.sh BUILD_DIR - chubd's request rate against nginx, and
# chubd's memory while it takes a 1 GiB checkpoint.
#
# Both servers run on loopback in this one run, so the ratio compares them
# on the same machine at the same moment: nginx answering `return 200 "{}"`
# is the ceiling for an HTTP server here, chubd does the real work (auth,
# JSON decode, validation, a SQLite insert per request). wrk sends the same
# metrics POST to both (metrics.lua: a new epoch per request, so every
# chubd request inserts a row). Then a sparse 1 GiB file is uploaded with
# curl and chubd's peak RSS (VmHWM) is printed before and after: it should
# not grow with the upload's size. Figures only; nothing is asserted.
set -eu

BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case $BUILD in /*) ;; *) [ -d "$BUILD" ] || BUILD=$ROOT/$BUILD ;; esac
BUILD=$(cd "$BUILD" && pwd)
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}

for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench/chubd: $tool is not installed (make deps installs it)" >&2
    exit 1
  }
done
CHUBD_BIN=$(find "$BUILD" -name chubd -type f -perm -u+x 2>/dev/null | head -n1)
[ -n "$CHUBD_BIN" ] || {
  echo "bench/chubd: no chubd binary under $BUILD (build it first)" >&2
  exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chubd-bench-XXXXXX")
NGINX_PID=
cleanup() {
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
  chubd_cleanup
  rm -rf "$WORK"
}
# chubd.sh installs its own EXIT trap in chubd_start; ours replaces it
# after the start and calls its cleanup too.
. "$ROOT/tests/support/chubd.sh"

# chubd: its own temp data dir, a key, a model, a rate limit out of the way.
chubd_start "$CHUBD_BIN" - --rate-limit 1000000 --rate-burst 1000000 || {
  rm -rf "$WORK"
  exit 1
}
trap cleanup EXIT
trap 'cleanup; exit 130' HUP INT PIPE TERM
MODEL=$(curl -sf -X POST -H "x-api-key: $CHUBD_KEY" \
  -H "Content-Type: application/json" \
  -d '{"config": {"batchSize": 16, "epochs": 100, "imageSize": 640, "patience": 100, "device": "cpu", "cache": "ram"}, "dataset": {"name": "coco8.yaml"}, "lineage": {"architecture": {"name": "yolo11n"}}, "meta": {"name": "bench.pt"}}' \
  "$CHUBD_URL/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')

# nginx: a config of our own, as the current user, in the foreground.
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_body_buffer_size 1m;
  client_max_body_size 16m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type application/json; return 200 "{}"; }
  }
}
EOF
nginx -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
i=0
until curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/"; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
    echo "bench/chubd: nginx did not start:" >&2
    cat "$WORK/nginx/logs/error.log" >&2
    exit 1
  fi
  sleep 0.05
done

run_wrk() { # URL KEY -> the RESULT line of metrics.lua
  BENCH_PATH=/v1/models/$MODEL BENCH_KEY=$2 wrk -t "$THREADS" -c "$CONNS" \
    -d "${DURATION}s" -s "$HERE/metrics.lua" "$1" | grep '^RESULT'
}
field() { # LINE NAME
  printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s each; body: one metrics epoch per request, a new epoch every time (inserts)"
NG=$(run_wrk "http://127.0.0.1:$NGINX_PORT" "$CHUBD_KEY")
CH=$(run_wrk "$CHUBD_URL" "$CHUBD_KEY")
printf '%-6s %12s %12s %12s %10s %8s\n' server req/s p50_ms p99_ms requests non2xx
for s in nginx chubd; do
  if [ $s = nginx ]; then L=$NG; else L=$CH; fi
  printf '%-6s %12s %12s %12s %10s %8s\n' $s "$(field "$L" rps)" \
    "$(python3 -c "print('%.3f' % ($(field "$L" p50_us) / 1000))")" \
    "$(python3 -c "print('%.3f' % ($(field "$L" p99_us) / 1000))")" \
    "$(field "$L" requests)" "$(field "$L" non2xx)"
done
python3 -c "print('chubd/nginx requests/s ratio: %.3f' % ($(field "$CH" rps) / $(field "$NG" rps)))"
STORED=$(curl -sf -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$MODEL" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"].get("metrics_count"))')
echo "chubd stored metrics epochs after the run: $STORED"

kill -TERM "$NGINX_PID" 2>/dev/null || true
wait "$NGINX_PID" 2>/dev/null || true
NGINX_PID=

# 1 GiB checkpoint upload: peak RSS before and after.
hwm() { sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$CHUBD_PID/status"; }
truncate -s 1G "$WORK/big.pt"
echo "chubd VmHWM before the 1 GiB upload: $(hwm)"
OUT=$(curl -s -o "$WORK/upload.json" -w '%{http_code} %{time_total} %{speed_upload}' \
  -H "x-api-key: $CHUBD_KEY" -H "Expect:" \
  -F epoch=1 -F type=epoch -F isBest=False -F "last.pt=@$WORK/big.pt" \
  "$CHUBD_URL/v1/models/$MODEL/upload")
set -- $OUT
echo "upload: HTTP $1 in $2 s ($(python3 -c "print('%.0f' % ($3 / 1048576))") MiB/s): $(head -c 200 "$WORK/upload.json")"
echo "chubd VmHWM after the 1 GiB upload:  $(hwm)"
rm -f "$WORK/big.pt"
