#!/bin/sh
# Two chubd on one PostgreSQL database and one blob directory behind nginx,
# configured by deploy/nginx/chubd-team.conf as it is (only the ports are
# replaced): a real libchub trainer (the fault suite's synthetic trainer,
# checkpoints of a few MiB) reports through nginx while one instance is
# killed with SIGKILL in the middle of its metrics stream and checkpoint
# uploads. The client's retries land on the other instance; the run ends
# with its final sync; every epoch is there exactly once, one model, its
# final weights served whole by either instance, every blob on disk whole
# (named by its SHA-256), and both instances list the same totals.
# Usage: team_test.sh CHUBD TRAINER CHUB ROOT PG_SH   (CHUB_TEST_PG set)
set -eu
CHUBD=$1
TRAINER=$2
CHUB=$3
ROOT=$4
PG_SH=$5
PGDIR=${CHUB_TEST_PG:?needs the test cluster (CHUB_TEST_PG)}
command -v nginx >/dev/null || { echo "team_test: no nginx"; exit 1; }
. "$ROOT/tests/support/nginx.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/chub-team-XXXXXX")
A_PID= B_PID= NG_PID= T_PID=
stop_pid() { # PID: TERM, wait at most 10 s, then KILL
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  n=0
  while kill -0 "$1" 2>/dev/null && [ $n -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$T_PID"
  stop_pid "$NG_PID"
  stop_pid "$A_PID"
  stop_pid "$B_PID"
  [ -n "${CHUB_KEEP_TMP:-}" ] && echo "team_test: keeping $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'cleanup; exit 130' HUP INT TERM
fail() {
  echo "team_test: $*"
  for f in "$W"/a.log "$W"/b.log "$W"/trainer.log "$W"/nginx/error.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
  done
  exit 1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

DB=team_$(date +%s)_$$
sh "$PG_SH" db "$PGDIR" "$DB"
URL="host=$PGDIR user=postgres dbname=$DB"
mkdir -p "$W/a" "$W/b" "$W/blobs" "$W/nginx/logs" "$W/run"
NG_PORT=$(free_port)
PUBLIC=http://127.0.0.1:$NG_PORT
KEY=$("$CHUBD" --data "$W/a" --db "$URL" keys create team)

start_chubd() { # NAME -> sets ${NAME}_PID and ${NAME}_PORT
  rm -f "$W/$1/port"
  "$CHUBD" --listen 127.0.0.1:0 --data "$W/$1" --db "$URL" \
    --blobs "$W/blobs" --public-url "$PUBLIC" --max-per-ip 512 --metrics \
    --port-file "$W/$1/port" </dev/null 2>>"$W/$1.log" &
  pid=$!
  n=0
  until [ -s "$W/$1/port" ]; do
    n=$((n + 1))
    { [ $n -gt 100 ] || ! kill -0 $pid 2>/dev/null; } && fail "chubd $1 did not start"
    sleep 0.1
  done
  eval "${1}_PID=$pid; ${1}_PORT=$(cat "$W/$1/port")"
}
start_chubd a
A_PID=$a_PID A_PORT=$a_PORT
start_chubd b
B_PID=$b_PID B_PORT=$b_PORT

# nginx with the team file as shipped, only its ports changed.
sed -e "s/127.0.0.1:8081/127.0.0.1:$A_PORT/" \
  -e "s/127.0.0.1:8082/127.0.0.1:$B_PORT/" \
  -e "s/listen 8080;/listen 127.0.0.1:$NG_PORT;/" \
  "$ROOT/deploy/nginx/chubd-team.conf" >"$W/nginx/team.conf"
grep -q "127.0.0.1:$A_PORT" "$W/nginx/team.conf" || fail "the team file has no first upstream to replace"
nginx_run "$W/nginx" "$W/nginx/team.conf"
NG_PID=$NGINX_PID
n=0
until curl -sf -o /dev/null "$PUBLIC/v1/health"; do
  n=$((n + 1))
  { [ $n -gt 100 ] || ! kill -0 $NG_PID 2>/dev/null; } && fail "nginx did not start"
  sleep 0.1
done

# The trainer, through nginx, while instance a is killed mid-stream.
export CHUB_TESTING=1 CHUB_CONFIG_DIR="$W/run/config" CHUB_RUNS_DIR="$W/run/runs"
export CHUB_API_ROOT="$PUBLIC" CHUB_API_KEY="$KEY" CHUB_RETRY_SCALE=0.2
unset CHUB_WEB_ROOT CHUB_MODE CHUB_HUB
# Every epoch's metrics and checkpoint go at once: a steady stream of
# requests for the kill to cut into.
"$CHUB" settings rate_limit_metrics=0 rate_limit_ckpt=0 rate_limit_heartbeat=1 \
  >/dev/null || fail "chub settings failed"
EPOCHS=60
"$TRAINER" --dir "$W/run" --model team.pt --epochs $EPOCHS --sleep-ms 60 \
  --ckpt-bytes 4194304 --best-bytes 3145728 --info "$W/run/info" \
  >"$W/trainer.log" 2>&1 &
T_PID=$!
sleep 1.2
# Frozen first, so that what nginx hands it meanwhile is in flight (sent,
# unanswered) when it dies: a metrics POST or a checkpoint upload cut in
# the middle, not only connections refused afterwards.
kill -STOP "$A_PID"
# Killed once a request sits unread in one of its connections (Recv-Q of
# a socket on its port), bounded: at most 10 s.
n=0
until ss -tnH state established "( sport = :$A_PORT )" 2>/dev/null |
  awk '$1 > 0 { found = 1 } END { exit !found }'; do
  n=$((n + 1))
  [ $n -gt 100 ] && break
  sleep 0.1
done
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null || true
A_PID=
echo "team_test: instance a killed mid-stream"
n=0
while kill -0 "$T_PID" 2>/dev/null; do
  n=$((n + 1))
  [ $n -gt 1200 ] && fail "the trainer did not finish within 120 s"
  sleep 0.1
done
if wait "$T_PID"; then :; else fail "the trainer's final sync failed"; fi
T_PID=
MODEL=$(sed -n 's/^model_id //p' "$W/run/info" | head -n1)
[ -n "$MODEL" ] || fail "the trainer wrote no model id"

# a back on the same database and blobs: both must tell the same story.
start_chubd a
A_PID=$a_PID A_PORT=$a_PORT
python3 - "$PUBLIC" "http://127.0.0.1:$A_PORT" "http://127.0.0.1:$B_PORT" \
  "$KEY" "$MODEL" "$EPOCHS" "$W/run/best.pt" "$W/blobs" <<'PY'
import hashlib, json, os, sys, urllib.request
front, a, b, key, model, epochs, best, blobs = sys.argv[1:9]
epochs = int(epochs)

def get(base, path, raw=False):
    req = urllib.request.Request(base + path, headers={"x-api-key": key})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
    return data if raw else json.loads(data)

def fail(msg):
    sys.exit("team_test: " + msg)

for base, name in ((a, "a"), (b, "b"), (front, "nginx")):
    lst = get(base, "/v1/models")["data"]
    if lst["total"] != 1 or len(lst["results"]) != 1:
        fail("%s lists %d models, want 1" % (name, lst["total"]))
    rows, after = [], -1
    while True:
        page = get(base, "/v1/models/%s/metrics?after=%d&limit=1000"
                   % (model, after))["data"]
        rows += page
        if len(page) < 1000:
            break
        after = page[-1]["epoch"]
    got = [r["epoch"] for r in rows]
    if got != list(range(epochs)):
        fail("%s holds epochs %s, want 0..%d once each" % (name, got, epochs - 1))
    m = get(base, "/v1/models/" + model)["data"]
    if m["status"] != "trained":
        fail("%s says status %s" % (name, m["status"]))
    finals = [c for c in m.get("checkpoints", []) if c["type"] == "final"]
    if len(finals) != 1:
        fail("%s holds %d final checkpoints" % (name, len(finals)))
    want = hashlib.sha256(open(best, "rb").read()).hexdigest()
    data = get(base, "/v1/models/%s/weights/best" % model, raw=True)
    if hashlib.sha256(data).hexdigest() != want:
        fail("%s serves final weights that are not the trainer's best.pt" % name)
    with urllib.request.urlopen(m["weights"], timeout=30) as r:
        if hashlib.sha256(r.read()).hexdigest() != want:
            fail("the signed weights URL from %s serves other bytes" % name)

# No partial blob is visible: every file named by a SHA-256 holds exactly
# the bytes of that name (a killed upload leaves only a temporary).
n = 0
for f in os.listdir(blobs):
    if len(f) == 64:
        h = hashlib.sha256(open(os.path.join(blobs, f), "rb").read()).hexdigest()
        if h != f:
            fail("blob %s holds bytes whose SHA-256 is %s" % (f, h))
        n += 1
print("team_test: %d epochs once each, 1 model, final weights whole on a, b "
      "and nginx; %d blobs whole" % (epochs, n))

# Through nginx too, libchub gave each checkpoint's SHA-256 after the file
# (hashed while sending, the file read once), never as a header first.
def received(base, how):
    text = get(base, "/metrics", raw=True).decode()
    series = 'chubd_uploads_received_total{digest="%s"} ' % how
    line = [l for l in text.splitlines() if l.startswith(series)]
    return int(line[0][len(series):]) if line else 0
parts = received(a, "part") + received(b, "part")
headers = received(a, "header") + received(b, "header")
if parts == 0 or headers != 0:
    fail("behind nginx %d uploads gave their digest after the file and %d "
         "as a header, want some and 0" % (parts, headers))
PY
# The kill must have cut requests in flight, not only refused new ones.
cut=$(grep -c 'prematurely closed\|reset by peer\|timed out' "$W/nginx/error.log" || true)
[ "$cut" -gt 0 ] || fail "nginx saw no request to instance a cut in flight"
echo "team_test: passed ($cut requests cut in flight by the kill)"
