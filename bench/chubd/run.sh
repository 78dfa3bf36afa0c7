#!/bin/sh
# bench/chubd/run.sh BUILD_DIR - chubd's request rate against nginx (on
# SQLite; on PostgreSQL, one instance and two behind nginx with
# deploy/nginx/chubd-team.conf, on a durable throwaway cluster), and chubd's
# memory while it takes a 1 GiB checkpoint.
#
# Both servers run on loopback in this one run, taking turns (nginx, chubd,
# nginx, ..., nginx: BENCH_ROUNDS chubd runs of BENCH_DURATION seconds,
# default 5 of 4), so the ratio compares them on the same machine at the
# same moment; the figure is the median of each chubd run's rate against
# the mean of the nginx runs around it. nginx answering `return 200 "{}"`
# is the ceiling for an HTTP server here, chubd does the real work (auth,
# JSON decode, validation, a SQLite insert per request, on stable storage
# before the answer). wrk sends the same metrics POST to both (metrics.lua:
# a new epoch per request, so every chubd request inserts a row). Beside
# the rates: the CPU time each server spent per request (user + system, all
# threads, from /proc), which a noisy machine moves far less than the
# rates, and chubd's split between its HTTP threads (its own loop, which
# serves the metrics uploads, and libmicrohttpd's) and its committer;
# the same uploads served by chubd's own work (key cache, body, store and
# group commit) behind a bare epoll loop (bare.c), whose difference from
# chubd is what chubd's HTTP layer (its loop: parsing, routing, limits,
# rate limits, counters) costs; chubd's commits in its runs on
# SQLite and on one PostgreSQL (how many uploads each carried, how often
# one ended) and what one small
# write + fdatasync costs on this disk, measured in chubd's data directory
# right after: each SQLite commit, and so each answer, waits for one. Then
# a sparse 1 GiB file is uploaded with curl and chubd's peak RSS (VmHWM) is
# printed before and after: it should not grow with the upload's size.
# BENCH_CONNECTIONS (32) and BENCH_THREADS (2) are wrk's. Figures only;
# nothing is asserted.
set -eu

BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
case $BUILD in /*) ;; *) [ -d "$BUILD" ] || BUILD=$ROOT/$BUILD ;; esac
BUILD=$(cd "$BUILD" && pwd)
DURATION=${BENCH_DURATION:-4}
ROUNDS=${BENCH_ROUNDS:-5}
case $ROUNDS in '' | *[!0-9]* | 0 | 0*)
  echo "bench/chubd: BENCH_ROUNDS=$ROUNDS is not a whole number of at least 1" >&2
  exit 1
  ;;
esac
case $DURATION in '' | *[!0-9]* | 0 | 0*)
  echo "bench/chubd: BENCH_DURATION=$DURATION is not a whole number of seconds, at least 1" >&2
  exit 1
  ;;
esac
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}

for tool in wrk nginx curl awk truncate; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench/chubd: $tool is not installed (make deps installs it)" >&2
    exit 1
  }
done
CHUBD_BIN=$(find "$BUILD" -name chubd -type f -perm -u+x 2>/dev/null | head -n1)
FSYNC_BIN=$(find "$BUILD" -name bench_fsync -type f -perm -u+x 2>/dev/null | head -n1)
BARE_BIN=$(find "$BUILD" -name bench_bare -type f -perm -u+x 2>/dev/null | head -n1)
[ -n "$CHUBD_BIN" ] && [ -n "$FSYNC_BIN" ] && [ -n "$BARE_BIN" ] || {
  echo "bench/chubd: no chubd, bench_fsync or bench_bare binary under $BUILD (build it first)" >&2
  exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chubd-bench-XXXXXX")
BARE_PID=
stop_bare() {
  if [ -n "$BARE_PID" ]; then
    kill -TERM "$BARE_PID" 2>/dev/null || true
    wait "$BARE_PID" 2>/dev/null || true
    BARE_PID=
  fi
}
NGINX_PID=
stop_nginx() {
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  fi
}
cleanup() {
  stop_bare
  stop_nginx
  chubd_cleanup
  rm -rf "$WORK"
}
# chubd.sh installs its own traps in chubd_start; ours replace them after
# the start and call its cleanup too.
. "$ROOT/tests/support/chubd.sh"
. "$ROOT/tests/support/nginx.sh"

# chubd: its own temp data dir, a key, a model, a rate limit and the
# per-address connection limit (all of wrk's come from one address) out of
# the way. --metrics: its commit counters, read before and after its wrk run.
chubd_start "$CHUBD_BIN" - --rate-limit 1000000 --rate-burst 1000000 \
  --max-per-ip 1024 --metrics || {
  rm -rf "$WORK"
  exit 1
}
trap cleanup EXIT
trap 'cleanup; exit 130' HUP INT PIPE TERM
MODEL=$(curl -sf -X POST -H "x-api-key: $CHUBD_KEY" \
  -H "Content-Type: application/json" \
  -d '{"config": {"batchSize": 16, "epochs": 100, "imageSize": 640, "patience": 100, "device": "cpu", "cache": "ram"}, "dataset": {"name": "coco8.yaml"}, "lineage": {"architecture": {"name": "yolo11n"}}, "meta": {"name": "bench.pt"}}' \
  "$CHUBD_URL/v1/models" | sed -n 's/.*"id": *"\([A-Za-z0-9]\{20\}\)".*/\1/p')
[ -n "$MODEL" ] || {
  echo "bench/chubd: chubd did not create a model" >&2
  exit 1
}

# nginx: a config of our own, as the current user, in the foreground, on a
# random port (another port if that one is taken) below the kernel's range
# for outgoing connections (ip_local_port_range, from 32768 by default),
# where wrk's own sockets, and those still in TIME_WAIT, never are.
mkdir -p "$WORK/nginx/logs"
listen_port() { # SEED -> a port from 20000 to 32767
  awk -v s="$1" 'BEGIN { srand(s); print int(20000 + rand() * 12768) }'
}
start_nginx() { # ATTEMPT
  NGINX_PORT=$(listen_port "$$$1")
  cat >"$WORK/nginx/nginx.conf" <<CONF
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
CONF
  nginx -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" \
    -c "$WORK/nginx/nginx.conf" &
  NGINX_PID=$!
  n=0
  until curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/"; do
    n=$((n + 1))
    if [ $n -gt 100 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
      stop_nginx
      return 1
    fi
    sleep 0.05
  done
}
attempt=1
until start_nginx $attempt; do
  attempt=$((attempt + 1))
  if [ $attempt -gt 5 ]; then
    echo "bench/chubd: nginx did not start:" >&2
    cat "$WORK/nginx/logs/error.log" >&2
    exit 1
  fi
done

# Each run's epochs start at RUN * 10,000,000 (metrics.lua), so that runs
# on one database insert epochs no run stored before: a run re-sending
# stored epochs would measure replaces, which cost the store less.
run_wrk() { # URL KEY RUN -> the RESULT line of metrics.lua
  BENCH_EPOCH_BASE=$(($3 * 10000000)) \
    BENCH_PATH=/v1/models/$MODEL BENCH_KEY=$2 wrk -t "$THREADS" -c "$CONNS" \
    -d "${DURATION}s" -s "$HERE/metrics.lua" "$1" | grep '^RESULT'
}
field() { # LINE NAME
  printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
ms() { # MICROSECONDS -> milliseconds with 3 decimals
  awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'
}

# CPU time, in clock ticks (user + system), of process $1 and of its
# children (nginx's workers); a process's threads are in its own figure.
cpu_ticks() {
  want=$1 total=0
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    pid=${f#/proc/} && pid=${pid%/stat}
    # shellcheck disable=SC2086 # the fields after "(comm) ", split on purpose
    set -- ${line##*) }
    if [ "$pid" = "$want" ] || [ "$2" = "$want" ]; then
      total=$((total + ${12} + ${13}))
    fi
  done
  echo "$total"
}
# CPU time, in clock ticks, of the threads of process $1 named $2.
thread_ticks() {
  want=$2 total=0
  for f in /proc/"$1"/task/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    comm=${line#*(} && comm=${comm%%)*}
    [ "$comm" = "$want" ] || continue
    # shellcheck disable=SC2086 # the fields after "(comm) ", split on purpose
    set -- ${line##*) }
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}
echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s each; body: one metrics epoch per request, a new epoch every time (inserts); nginx and chubd on SQLite take $ROUNDS turns (rows: their sums)"
commits() { # URL -> "UPLOADS COMMITS" committed so far by chubd's group commit
  curl -sf "$1/metrics" | awk '
    $1 == "chubd_metrics_commit_requests_sum" { u = $2 }
    $1 == "chubd_metrics_commit_requests_count" { c = $2 }
    END { print u + 0, c + 0 }'
}
syncs() { # URL -> "SECONDS SYNCS": chubd's syncs of its SQLite log so far
  curl -sf "$1/metrics" | awk '
    $1 == "chubd_store_log_sync_seconds_sum" { s = $2 }
    $1 == "chubd_store_log_sync_seconds_count" { n = $2 }
    END { print s + 0, n + 0 }'
}
# The whole machine's CPU ticks so far: "BUSY ALL", where BUSY is user,
# nice, system, irq and softirq time and ALL adds idle and iowait (steal,
# time the host gave to others, is in neither).
machine_ticks() {
  awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6; exit }' /proc/stat
}
machine_add() { # VAR "BUSY ALL" "BUSY ALL" (before, after): adds the difference
  # shellcheck disable=SC2086 # two pairs, split on purpose
  set -- "$1" $2 $3
  eval "$1=\"\$((\${$1% *} + $4 - $2)) \$((\${$1#* } + $5 - $3))\""
}
http_ticks() { # PID -> ticks of chubd's HTTP threads
  echo $(($(thread_ticks "$1" MHD-worker) + $(thread_ticks "$1" chubd-lane)))
}
sum_runs() { # "LINE|LINE|..." -> one RESULT line: summed requests, rate
  # over the summed time, and the median of the runs' p50 and p99
  printf '%s\n' "$1" | tr '|' '\n' | awk -v d="$DURATION" '
    /RESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      n++; req += f["requests"]; bad += f["non2xx"]; sock += f["sockerr"]; p50[n] = f["p50_us"]; p99[n] = f["p99_us"]
    }
    function med(a, m,   i, j, t) {
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END { if (n) printf "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d sockerr=%d\n", req / (n * d), med(p50, n), med(p99, n), req, bad, sock }'
}
ng_round() { # one nginx run, added to NG_RUNS and NG_TICKS (nginx stores
  # nothing, so every run may send the same epochs)
  t0=$(cpu_ticks "$NGINX_PID")
  m0=$(machine_ticks)
  line=$(run_wrk "http://127.0.0.1:$NGINX_PORT" "$CHUBD_KEY" 0)
  machine_add NG_MACHINE "$m0" "$(machine_ticks)"
  NG_TICKS=$((NG_TICKS + $(cpu_ticks "$NGINX_PID") - t0))
  NG_RUNS="$NG_RUNS${NG_RUNS:+|}$line"
  NG_RATES="$NG_RATES $(field "$line" rps)"
}
# nginx and chubd take turns, nginx first and last (nginx, chubd, nginx,
# ..., nginx): the machine's speed drifts from one minute to the next, so
# each chubd run is compared with the mean of the nginx runs just before
# and after it, and the median of those ratios is the figure. Rates and
# CPU times below are the sums over the rounds.
NG_RUNS='' NG_RATES='' NG_TICKS=0 CH_RUNS='' CH_RATES='' CH_TICKS=0 CH_HTTP=0 CH_COMMIT=0
NG_MACHINE="0 0" CH_MACHINE="0 0"
C0=$(commits "$CHUBD_URL")
S0=$(syncs "$CHUBD_URL")
ng_round
r=1
while [ $r -le "$ROUNDS" ]; do
  T0=$(cpu_ticks "$CHUBD_PID")
  H0=$(http_ticks "$CHUBD_PID")
  K0=$(thread_ticks "$CHUBD_PID" chubd-commit)
  m0=$(machine_ticks)
  line=$(run_wrk "$CHUBD_URL" "$CHUBD_KEY" $((10 + r)))
  machine_add CH_MACHINE "$m0" "$(machine_ticks)"
  CH_TICKS=$((CH_TICKS + $(cpu_ticks "$CHUBD_PID") - T0))
  CH_HTTP=$((CH_HTTP + $(http_ticks "$CHUBD_PID") - H0))
  CH_COMMIT=$((CH_COMMIT + $(thread_ticks "$CHUBD_PID" chubd-commit) - K0))
  CH_RUNS="$CH_RUNS${CH_RUNS:+|}$line"
  CH_RATES="$CH_RATES $(field "$line" rps)"
  ng_round
  r=$((r + 1))
done
C1=$(commits "$CHUBD_URL")
S1=$(syncs "$CHUBD_URL")
NG=$(sum_runs "$NG_RUNS")
CH=$(sum_runs "$CH_RUNS")
FSYNC=$("$FSYNC_BIN" "$CHUBD_DATA" 400 || true)
STORED=$(curl -sf -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$MODEL" |
  sed -n 's/.*"metrics_count": *\([0-9]*\).*/\1/p')

# The same uploads to chubd's own work behind a bare epoll loop (bare.c),
# on chubd's data directory while chubd idles: the difference from chubd
# is what its HTTP layer costs.
BARE= BARE_TICKS=0
"$BARE_BIN" "$CHUBD_DATA" "$WORK/bare.port" 2 </dev/null 2>>"$WORK/bare.log" &
BARE_PID=$!
n=0
until [ -s "$WORK/bare.port" ] || [ $n -gt 100 ]; do
  n=$((n + 1))
  sleep 0.05
done
if [ -s "$WORK/bare.port" ]; then
  T0=$(cpu_ticks "$BARE_PID")
  BARE=$(run_wrk "http://127.0.0.1:$(cat "$WORK/bare.port")" "$CHUBD_KEY" 2)
  BARE_TICKS=$(($(cpu_ticks "$BARE_PID") - T0))
fi
stop_bare

# PostgreSQL: a throwaway cluster of its own (tests/support/pg.sh), one
# chubd on it, then two behind nginx with deploy/nginx/chubd-team.conf.
PG1= PG2= P0= P1=
# Its own directory under /tmp: the cluster's user must be able to enter
# it, and a socket path is at most 107 bytes. Durable, as deployed.
PGD=/tmp/chub-bench-pg-$$
export CHUB_PG_DURABLE=1
PGA_PID= PGB_PID= TEAM_PID=
stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}
stop_pg() {
  stop_pid "$TEAM_PID"
  stop_pid "$PGA_PID"
  stop_pid "$PGB_PID"
  TEAM_PID= PGA_PID= PGB_PID=
  [ -d "$PGD" ] && sh "$ROOT/tests/support/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
}
cleanup() {
  stop_pg
  stop_bare
  stop_nginx
  chubd_cleanup
  rm -rf "$WORK"
}
pg_chubd() { # NAME -> PID in PG_PID, port in PG_PORT
  mkdir -p "$WORK/$1"
  rm -f "$WORK/$1/port"
  "$CHUBD_BIN" --listen 127.0.0.1:0 --data "$WORK/$1" --db "$PGURL" \
    --blobs "$WORK/blobs" --rate-limit 1000000 --rate-burst 1000000 \
    --max-per-ip 1024 --metrics --port-file "$WORK/$1/port" </dev/null \
    2>>"$WORK/$1.log" &
  PG_PID=$!
  n=0
  until [ -s "$WORK/$1/port" ]; do
    n=$((n + 1))
    [ $n -gt 200 ] && return 1
    sleep 0.05
  done
  PG_PORT=$(cat "$WORK/$1/port")
}
if sh "$ROOT/tests/support/pg.sh" start "$PGD" >/dev/null 2>&1 &&
  sh "$ROOT/tests/support/pg.sh" db "$PGD" bench >/dev/null 2>&1; then
  PGURL="host=$PGD user=postgres dbname=bench"
  PGKEY=$("$CHUBD_BIN" --data "$WORK/a" --db "$PGURL" keys create bench)
  pg_chubd a && PGA_PID=$PG_PID && PGA_PORT=$PG_PORT
  PGMODEL=$(curl -sf -X POST -H "x-api-key: $PGKEY" \
    -H "Content-Type: application/json" \
    -d '{"config": {"epochs": 100}, "meta": {"name": "bench.pt"}}' \
    "http://127.0.0.1:$PGA_PORT/v1/models" |
    sed -n 's/.*"id": *"\([A-Za-z0-9]\{20\}\)".*/\1/p')
  MODEL_SQLITE=$MODEL
  MODEL=$PGMODEL
  P0=$(commits "http://127.0.0.1:$PGA_PORT")
  T0=$(cpu_ticks "$PGA_PID")
  PG1=$(run_wrk "http://127.0.0.1:$PGA_PORT" "$PGKEY" 3)
  PG1_TICKS=$(($(cpu_ticks "$PGA_PID") - T0))
  P1=$(commits "http://127.0.0.1:$PGA_PORT")
  pg_chubd b && PGB_PID=$PG_PID && PGB_PORT=$PG_PORT
  TEAM_PORT=$(listen_port $(($$ + 7)))
  mkdir -p "$WORK/team/logs"
  sed -e "s/127.0.0.1:8081/127.0.0.1:$PGA_PORT/" \
    -e "s/127.0.0.1:8082/127.0.0.1:$PGB_PORT/" \
    -e "s/listen 8080;/listen 127.0.0.1:$TEAM_PORT;/" \
    -e "s/limit_conn chubd_team_per_client 32;/limit_conn chubd_team_per_client 1024;/" \
    "$ROOT/deploy/nginx/chubd-team.conf" >"$WORK/team/team.conf"
  fixed_pid=$NGINX_PID
  nginx_run "$WORK/team" "$WORK/team/team.conf" 2
  TEAM_PID=$NGINX_PID
  NGINX_PID=$fixed_pid
  n=0
  until curl -sf -o /dev/null "http://127.0.0.1:$TEAM_PORT/v1/health"; do
    n=$((n + 1))
    [ $n -gt 100 ] && break
    sleep 0.05
  done
  PG2=$(run_wrk "http://127.0.0.1:$TEAM_PORT" "$PGKEY" 4)
  MODEL=$MODEL_SQLITE
  stop_pg
else
  echo "bench/chubd: no PostgreSQL cluster could be started (install postgresql); skipping it"
fi

printf '%-24s %12s %12s %12s %10s %8s %8s\n' server req/s p50_ms p99_ms requests non2xx sockerr
row() { # NAME LINE
  [ -n "$2" ] || return 0
  printf '%-24s %12s %12s %12s %10s %8s %8s\n' "$1" "$(field "$2" rps)" \
    "$(ms "$(field "$2" p50_us)")" "$(ms "$(field "$2" p99_us)")" \
    "$(field "$2" requests)" "$(field "$2" non2xx)" "$(field "$2" sockerr)"
}
row "nginx (fixed 200)" "$NG"
row "chubd sqlite" "$CH"
row "chubd's work, bare loop" "$BARE"
row "chubd postgresql" "$PG1"
row "2 chubd pg + nginx" "$PG2"
ratio() { # NAME LINE
  [ -n "$2" ] || return 0
  awk -v c="$(field "$2" rps)" -v n="$(field "$NG" rps)" -v w="$1" \
    'BEGIN { printf "%s/nginx requests/s ratio: %.3f\n", w, c / n }'
}
# shellcheck disable=SC2086 # lists of rates, split on purpose
echo $NG_RATES / $CH_RATES | awk '{
  for (i = 1; $i != "/"; i++) ng[i] = $i
  for (j = i + 1; j <= NF; j++) { k = j - i; r[k] = $j / ((ng[k] + ng[k + 1]) / 2); list = list sprintf(" %.3f", r[k]) }
  for (a = 1; a <= k; a++) for (b = a + 1; b <= k; b++) if (r[b] < r[a]) { t = r[a]; r[a] = r[b]; r[b] = t }
  m = k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2
  printf "chubd/nginx requests/s ratio: %.3f (median of %d rounds, each chubd run against the mean of the nginx runs before and after it:%s); target >= 0.5: %s\n", m, k, list, (m >= 0.5 ? "met" : "NOT met")
}'
ratio "chubd's work behind a bare epoll loop (bare.c: no HTTP layer)" "$BARE"
ratio "chubd postgresql" "$PG1"
ratio "two chubd on postgresql behind nginx" "$PG2"
echo "chubd stored metrics epochs after the run: $STORED"
commit_line() { # STORE "UPLOADS COMMITS" "UPLOADS COMMITS" (before, after) SECONDS
  [ -n "$2" ] && [ -n "$3" ] || return 0
  # shellcheck disable=SC2086 # "UPLOADS COMMITS" twice, split on purpose
  set -- "$1" $2 $3 "$4"
  awk -v s="$1" -v u=$(($4 - $2)) -v c=$(($5 - $3)) -v d="$6" 'BEGIN {
    if (c > 0)
      printf "chubd %s commits: %d in %ds, %.1f uploads each, one every %.0f us\n", s, c, d, u / c, d * 1e6 / c
  }'
}
# What each server spent per request: the figure that moves least with
# the machine's noise, since the rates above swing with whatever else runs.
cpu_us() { # TICKS LINE -> microseconds of CPU per request
  awk -v t="$1" -v r="$(field "$2" requests)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (r > 0) printf "%.1f", t * 1e6 / hz / r; else printf "-" }'
}
NG_US=$(cpu_us "$NG_TICKS" "$NG")
CH_US=$(cpu_us "$CH_TICKS" "$CH")
printf 'CPU per request (user + system, all threads): nginx %s us, chubd sqlite %s us (%s x nginx)' \
  "$NG_US" "$CH_US" "$(awk -v a="$CH_US" -v b="$NG_US" 'BEGIN { printf "%.1f", a / b }')"
if [ -n "$PG1" ]; then
  printf ', chubd postgresql %s us (chubd alone, not the database)' "$(cpu_us "$PG1_TICKS" "$PG1")"
fi
[ -z "$BARE" ] || printf ', chubd'"'"'s work behind a bare loop %s us' "$(cpu_us "$BARE_TICKS" "$BARE")"
printf '\n'
echo "chubd sqlite CPU per request by thread: HTTP threads (chubd-lane, MHD-worker) $(cpu_us "$CH_HTTP" "$CH") us, committer $(cpu_us "$CH_COMMIT" "$CH") us"
# The whole machine (wrk, the server, the kernel's network work): its CPU
# per request in the nginx and the chubd runs, how busy it was, and the
# rate chubd's cost per request would allow were every core busy with it.
# Below 0.5 of nginx's, that cost alone keeps chubd from the target on
# this machine; above it while the measured ratio is not, chubd waits (for
# the disk) more than it works.
awk -v ng="$NG_MACHINE" -v ch="$CH_MACHINE" -v nr="$(field "$NG" requests)" \
  -v cr="$(field "$CH" requests)" -v nrate="$(field "$NG" rps)" \
  -v hz="$(getconf CLK_TCK)" -v ncpu="$(getconf _NPROCESSORS_ONLN)" 'BEGIN {
  split(ng, n, " "); split(ch, c, " ")
  if (nr <= 0 || cr <= 0 || n[2] <= 0 || c[2] <= 0) exit
  nus = n[1] * 1e6 / hz / nr; cus = c[1] * 1e6 / hz / cr
  cap = ncpu * 1e6 / cus
  printf "whole machine (wrk, server, kernel) per request: nginx runs %.1f us (%.0f%% busy), chubd runs %.1f us (%.0f%% busy); with all %d cores busy at chubd'"'"'s cost: at most %.0f requests/s, %.2f of nginx'"'"'s rate\n", nus, 100 * n[1] / n[2], cus, 100 * c[1] / c[2], ncpu, cap, cap / nrate
}'
commit_line sqlite "$C0" "$C1" $((ROUNDS * DURATION))
# shellcheck disable=SC2086 # two pairs, split on purpose
set -- $S0 $S1
awk -v s=$(($4 - $2)) -v t="$(awk -v a="$3" -v b="$1" 'BEGIN { print a - b }')" \
  -v d=$((ROUNDS * DURATION)) 'BEGIN {
  if (s > 0)
    printf "chubd sqlite log syncs (fdatasync of the WAL, timed by chubd): %d, %.0f us each on average, the committer waiting for them %.0f%% of the time\n", s, t * 1e6 / s, 100 * t / d
}'
commit_line postgresql "$P0" "$P1" "$DURATION"
[ -z "$FSYNC" ] || echo "$FSYNC"
stop_nginx

# 1 GiB checkpoint upload: peak RSS before and after.
hwm() { sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$CHUBD_PID/status"; }
truncate -s 1G "$WORK/big.pt"
echo "chubd VmHWM before the 1 GiB upload: $(hwm)"
OUT=$(curl -s -o "$WORK/upload.json" -w '%{http_code} %{time_total} %{speed_upload}' \
  -H "x-api-key: $CHUBD_KEY" -H "Expect:" \
  -F epoch=1 -F type=epoch -F isBest=False -F "last.pt=@$WORK/big.pt" \
  "$CHUBD_URL/v1/models/$MODEL/upload")
# shellcheck disable=SC2086 # three fields, split on purpose
set -- $OUT
echo "upload: HTTP $1 in $2 s ($(awk -v b="$3" 'BEGIN { printf "%.0f", b / 1048576 }') MiB/s): $(head -c 200 "$WORK/upload.json")"
echo "chubd VmHWM after the 1 GiB upload:  $(hwm)"
rm -f "$WORK/big.pt"
