#!/bin/sh
# demo.sh - `make demo`: a self-hosted hub and a C trainer reporting to it.
#
# Starts chubd on 127.0.0.1 at the first free port from 8080 with its data
# in $CHUB_DEMO_DIR/chubd (default ./.chub, so runs persist between demos),
# creates an API key once and keeps it in a demo-local settings directory
# ($CHUB_DEMO_DIR/config; the user's own settings are never touched), then
# trains the Fashion-MNIST example, which prints "View model at URL" as soon
# as the model exists. SERVE=1 keeps chubd serving until Ctrl-C; SERVE=0
# exits once the final model is synced, with the trainer's exit status.
#
# Environment: BUILD (build directory, default build), SERVE (1), CHUB_DEMO_DIR
# (state directory), DEMO_ARGS (extra trainer flags, e.g. "--limit 2000
# --epochs 2"), DEMO_PORT (first port to try, default 8080).
#
# A chubd left running by an earlier demo on the same state directory (its
# PID is in chubd.pid) is reused when it still answers; a stale PID file is
# replaced. Only the PID this script recorded is ever signalled.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SERVE=${SERVE:-1}
STATE=${CHUB_DEMO_DIR:-$PWD/.chub}
case "$STATE" in /*) ;; *) STATE=$PWD/$STATE ;; esac
FIRST_PORT=${DEMO_PORT:-8080}
DEMO_ARGS=${DEMO_ARGS:-}

CHUBD=$BUILD/src/server/chubd
CHUB=$BUILD/src/cli/chub
TRAINER=$BUILD/examples/fashion_mnist/fashion_mnist
PIDFILE=$STATE/chubd.pid
PORTFILE=$STATE/chubd.port
LOG=$STATE/chubd.log
KEYFILE=$STATE/api_key

say() { printf 'demo: %s\n' "$*"; }
die() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

for bin in "$CHUBD" "$CHUB" "$TRAINER"; do
  [ -x "$bin" ] || die "missing $bin (run 'make build' first, or set BUILD)"
done
command -v curl >/dev/null 2>&1 || die "curl is needed (scripts/deps.sh installs it)"
mkdir -p "$STATE/chubd" "$STATE/config" "$STATE/runs" "$STATE/weights" ||
  die "cannot create $STATE"

STARTED=0 # 1 when this script started chubd
PID=
URL=

# True when PID runs the chubd binary (not a recycled PID of something else).
is_chubd() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "chubd"
}

healthy() { curl -sf -o /dev/null --max-time 2 "$1/v1/health"; }

stop_chubd() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null
  i=0
  while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
  rm -f "$PIDFILE" "$PORTFILE"
  PID=
}

# Reuse a chubd from an earlier demo when its PID file is current.
if [ -s "$PIDFILE" ] && [ -s "$PORTFILE" ]; then
  old=$(head -n1 "$PIDFILE")
  port=$(head -n1 "$PORTFILE")
  if is_chubd "$old" && healthy "http://127.0.0.1:$port"; then
    PID=$old
    URL=http://127.0.0.1:$port
    say "reusing chubd (pid $PID) at $URL"
  elif is_chubd "$old"; then
    # Ours (its PID is in our file) but not answering: replace it.
    say "chubd (pid $old) from an earlier demo does not answer; restarting it"
    PID=$old
    stop_chubd
  else
    rm -f "$PIDFILE" "$PORTFILE"
  fi
fi

# Otherwise start one: try ports from FIRST_PORT until one binds.
if [ -z "$PID" ]; then
  port=$FIRST_PORT
  last=$((FIRST_PORT + 19))
  while [ "$port" -le "$last" ]; do
    rm -f "$PORTFILE"
    "$CHUBD" --listen "127.0.0.1:$port" --data "$STATE/chubd" \
      --port-file "$PORTFILE" </dev/null 2>>"$LOG" &
    PID=$!
    i=0
    while [ $i -lt 100 ] && [ ! -s "$PORTFILE" ] && kill -0 "$PID" 2>/dev/null; do
      sleep 0.1
      i=$((i + 1))
    done
    if [ -s "$PORTFILE" ]; then
      echo "$PID" >"$PIDFILE"
      STARTED=1
      URL=http://127.0.0.1:$(head -n1 "$PORTFILE")
      break
    fi
    if kill -0 "$PID" 2>/dev/null; then # alive but silent: give up on it
      kill -KILL "$PID" 2>/dev/null
      wait "$PID" 2>/dev/null
      PID=
      die "chubd did not start within 10 s; see $LOG"
    fi
    wait "$PID" 2>/dev/null
    PID=
    port=$((port + 1))
  done
  [ -n "$PID" ] || die "chubd could not listen on ports $FIRST_PORT-$last; see $LOG"
  say "chubd (pid $PID) serving $URL, data in $STATE/chubd"
fi

# From here on every exit path stops a chubd this script started (or, with
# SERVE=1, the one it serves).
on_exit() {
  if [ "$STARTED" = 1 ] || [ "$SERVE" = 1 ]; then
    stop_chubd
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

export CHUB_CONFIG_DIR="$STATE/config"
# The demo's settings are its own; keep a caller's environment from
# overriding them.
unset CHUB_API_KEY CHUB_API_ROOT CHUB_WEB_ROOT CHUB_HUB CHUB_MODE CHUB_RUNS_DIR

# One API key for the demo, created on the first run (or again when the
# data directory no longer knows it).
KEY=
[ -s "$KEYFILE" ] && KEY=$(head -n1 "$KEYFILE")
if [ -z "$KEY" ] || ! curl -sf -o /dev/null --max-time 5 -X POST \
  -H "x-api-key: $KEY" "$URL/v1/auth"; then
  KEY=$("$CHUBD" --data "$STATE/chubd" keys create demo 2>>"$LOG") ||
    die "cannot create an API key; see $LOG"
  (umask 077 && echo "$KEY" >"$KEYFILE")
  say "created API key ${KEY%"${KEY#??????}"}... (saved in $KEYFILE)"
fi

"$CHUB" settings "api_key=$KEY" "api_root=$URL" \
  "rate_limit_ckpt=5" "runs_dir=$STATE/runs" "hub=true" "mode=online" \
  >/dev/null || die "cannot write the demo settings in $CHUB_CONFIG_DIR"

say "training Fashion-MNIST; open the model's page to watch it live"
# The output also goes to a log so that the model's URL can be shown again
# at the end; the trainer's status travels through a file because a pipe
# keeps only the last command's.
rm -f "$STATE/train.status"
{
  # shellcheck disable=SC2086 # DEMO_ARGS are split into flags on purpose
  "$TRAINER" --epochs 10 --out "$STATE/weights" $DEMO_ARGS 2>&1
  echo $? >"$STATE/train.status"
} | tee "$STATE/train.log"
status=$(cat "$STATE/train.status" 2>/dev/null || echo 1)
model_url=$(sed -n 's/.*View model at \(http[^ ]*\).*/\1/p' "$STATE/train.log" | tail -n1)

[ "$status" -eq 0 ] || say "the trainer exited with status $status"
if [ "$SERVE" = 1 ]; then
  trap 'exit "$status"' INT TERM
  if [ -n "$model_url" ]; then
    say "the model: $model_url"
  fi
  say "chubd keeps serving $URL (every model: $URL/); Ctrl-C to stop"
  if [ "$STARTED" = 1 ]; then
    wait "$PID"
  else
    while kill -0 "$PID" 2>/dev/null; do sleep 1; done
  fi
  PID=
fi
exit "$status"
