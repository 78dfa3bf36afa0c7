#!/bin/sh
# `chubd migrate` of a hub the demo trainer filled: a SQLite chubd gets a
# trained model (the Fashion-MNIST example, a few epochs on a subset, its
# checkpoints and final weights), then the hub is copied into a database
# of the throwaway PostgreSQL cluster. The copy is run twice (the second
# copies nothing and still checks every count), and a chubd on
# PostgreSQL, pointed at the old weights with --blobs, must answer what the
# pages draw from (/ui/models, each model and its metrics) exactly as the
# SQLite chubd does, with the same key, and serve the same final weights.
# Both pages are then opened in Chromium and must draw the same charts.
# Usage: migrate_test.sh CHUBD TRAINER CHUBD_SH PG_SH [NODE_MODULES SHOTS]
#        (CHUB_TEST_PG set)
set -eu
CHUBD=$1
TRAINER=$2
PGDIR=${CHUB_TEST_PG:?needs the test cluster (CHUB_TEST_PG)}
PG_SH=$4
# The source hub is SQLite: chubd.sh must not put it on PostgreSQL.
unset CHUB_TEST_PG
. "$3"
chubd_start "$CHUBD"
SRC_DATA=$CHUBD_DATA
KEY=$CHUBD_KEY
work=$CHUBD_WORK/run
mkdir -p "$work"
PG_PID=
stop_pg_chubd() {
  if [ -n "$PG_PID" ]; then
    kill -TERM "$PG_PID" 2>/dev/null || true
    n=0
    while kill -0 "$PG_PID" 2>/dev/null && [ $n -lt 100 ]; do
      sleep 0.1
      n=$((n + 1))
    done
    kill -KILL "$PG_PID" 2>/dev/null || true
    PG_PID=
  fi
}
trap 'stop_pg_chubd; chubd_cleanup' EXIT
trap 'stop_pg_chubd; chubd_cleanup; exit 130' HUP INT TERM

# 1. The demo trainer fills the SQLite hub.
export CHUB_TESTING=1 CHUB_CONFIG_DIR="$work/config" CHUB_RUNS_DIR="$work/runs"
export CHUB_API_ROOT="$CHUBD_URL" CHUB_API_KEY="$KEY"
"$TRAINER" --model mlp-small.cfg --epochs 3 --limit 3000 --out "$work/out" \
  >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
grep -q "View model at" "$work/train.log"
chubd_stop

# 2. Copied into a database of its own, twice.
DBNAME=migrate_$(date +%s)_$$
sh "$PG_SH" db "$PGDIR" "$DBNAME"
URL="host=$PGDIR user=postgres dbname=$DBNAME"
"$CHUBD" migrate --from "$SRC_DATA" --to "$URL" >"$work/m1.log" 2>&1 || {
  cat "$work/m1.log"
  exit 1
}
cat "$work/m1.log"
for t in keys models metrics checkpoints datasets sessions events secrets projects \
  runs model_docs console; do
  grep -q "^  $t " "$work/m1.log" || { echo "migrate_test: no count for $t"; exit 1; }
done
"$CHUBD" migrate --from "$SRC_DATA" --to "$URL" >"$work/m2.log" 2>&1 || {
  cat "$work/m2.log"
  exit 1
}
if grep -q '([1-9][0-9]* copied now)' "$work/m2.log"; then
  echo "migrate_test: the second run copied rows again:"
  cat "$work/m2.log"
  exit 1
fi
# As if the first run had been cut before its last batches: rows missing
# on the target are copied by the next run, and only those.
psql=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
"$psql" -X -q -h "$PGDIR" -U postgres -d "$DBNAME" -v ON_ERROR_STOP=1 \
  -c "DELETE FROM metrics WHERE epoch = 2" -c "DELETE FROM checkpoints"
"$CHUBD" migrate --from "$SRC_DATA" --to "$URL" >"$work/m3.log" 2>&1 || {
  cat "$work/m3.log"
  exit 1
}
grep -q '^  metrics .*(1 copied now)' "$work/m3.log" &&
  grep -q '^  checkpoints .*(1 copied now)' "$work/m3.log" &&
  grep -q '^  models .*(0 copied now)' "$work/m3.log" || {
  echo "migrate_test: a resumed run did not copy exactly what was missing:"
  cat "$work/m3.log"
  exit 1
}
# A bad target is named, without any password.
if "$CHUBD" migrate --from "$SRC_DATA" \
  --to "postgresql://u:secretpw@127.0.0.1:1/none" >"$work/bad.log" 2>&1; then
  echo "migrate_test: a migration to an unreachable database succeeded"
  exit 1
fi
grep -q "cannot connect" "$work/bad.log"
if grep -q secretpw "$work/bad.log"; then
  echo "migrate_test: the password was printed"
  exit 1
fi

# 3. Both hubs up: SQLite again, and PostgreSQL on the old weights.
chubd_restart
PG_DATA=$CHUBD_WORK/pgdata
mkdir -p "$PG_DATA"
"$CHUBD" --listen 127.0.0.1:0 --data "$PG_DATA" --db "$URL" \
  --blobs "$SRC_DATA/blobs" --port-file "$PG_DATA/port" \
  </dev/null 2>"$work/pgchubd.log" &
PG_PID=$!
n=0
until [ -s "$PG_DATA/port" ]; do
  n=$((n + 1))
  if [ $n -gt 100 ] || ! kill -0 "$PG_PID" 2>/dev/null; then
    cat "$work/pgchubd.log"
    exit 1
  fi
  sleep 0.1
done
PG_URL=http://127.0.0.1:$(cat "$PG_DATA/port")

python3 - "$CHUBD_URL" "$PG_URL" "$KEY" "$work/model_id" <<'PY'
import hashlib, json, sys, urllib.request
a, b, key, id_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

def get(base, path, raw=False):
    req = urllib.request.Request(base + path, headers={"x-api-key": key})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
    return data if raw else json.loads(data.decode().replace(base, "BASE"))

def signless(v):
    """Signed URLs carry the moment they were made (expires, sig): the
    same link made a second later differs there and nowhere else."""
    if isinstance(v, dict):
        return {k: signless(x) for k, x in v.items()}
    if isinstance(v, list):
        return [signless(x) for x in v]
    if isinstance(v, str) and v.startswith("BASE/") and "?" in v:
        return v.split("?")[0]
    return v

def first_diff(x, y, where=""):
    if type(x) != type(y):
        return where or "/"
    if isinstance(x, dict):
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y:
                return where + "/" + k
            d = first_diff(x[k], y[k], where + "/" + k)
            if d:
                return d
        return None
    if isinstance(x, list):
        if len(x) != len(y):
            return where + " (length)"
        for i, (p, q) in enumerate(zip(x, y)):
            d = first_diff(p, q, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    return None if x == y else where or "/"

def same(path):
    x, y = signless(get(a, path)), signless(get(b, path))
    if x != y:
        at = first_diff(x, y)
        def pick(v):
            for part in at.replace("[", "/[").strip("/").split("/"):
                if part.startswith("["):
                    v = v[int(part[1:part.index("]")])]
                elif part and isinstance(v, dict):
                    v = v.get(part.split(" ")[0])
            return v
        sys.exit("migrate_test: %s differs at %s: sqlite %r, postgres %r"
                 % (path, at, pick(x), pick(y)))
    return x

models = same("/ui/models")["data"]["results"]
if len(models) != 1:
    sys.exit("migrate_test: %d models, want the demo's one" % len(models))
for m in models:
    mid = m["id"]
    open(id_file, "w").write(mid)
    model = same("/ui/models/" + mid)["data"]
    metrics = same("/ui/models/%s/metrics" % mid)["data"]
    same("/v1/models/" + mid)
    if len(metrics) != 3:
        sys.exit("migrate_test: %d epochs of metrics, want 3" % len(metrics))
    if model["status"] != "trained":
        sys.exit("migrate_test: status %s, want trained" % model["status"])
    best_a = get(a, "/v1/models/%s/weights/best" % mid, raw=True)
    best_b = get(b, "/v1/models/%s/weights/best" % mid, raw=True)
    if hashlib.sha256(best_a).digest() != hashlib.sha256(best_b).digest():
        sys.exit("migrate_test: the final weights differ")
    # A signed URL handed out before the move still works after it.
    url = get(a, "/v1/models/" + mid)["data"]["weights"].replace("BASE", b)
    with urllib.request.urlopen(url, timeout=30) as r:
        if hashlib.sha256(r.read()).digest() != hashlib.sha256(best_a).digest():
            sys.exit("migrate_test: the signed URL serves other bytes")
print("migrate_test: 1 model, 3 epochs, checkpoints and final weights the "
      "same on SQLite and PostgreSQL")
PY

# 4. What a person sees: the model's page on both hubs, in Chromium.
MODULES=${5:-}
if [ -n "$MODULES" ] && [ -d "$MODULES/playwright-core" ] && [ -x /usr/bin/chromium ]; then
  MODEL=$(cat "$work/model_id")
  node "$(dirname "$0")/../browser/pages_same.cjs" --modules "$MODULES" \
    --a "$CHUBD_URL" --b "$PG_URL" --model "$MODEL" --shots "$6"
else
  echo "migrate_test: no playwright-core or Chromium; the pages were compared as JSON only"
fi
