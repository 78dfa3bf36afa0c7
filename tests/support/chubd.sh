# chubd.sh - start, stop, kill and restart the real chubd from shell tests.
#
# Source it (POSIX sh or bash), then:
#   chubd_start CHUBD_BIN [DATA_DIR] [EXTRA ARGS...]
#       starts `CHUBD_BIN --listen 127.0.0.1:0 --data DIR --port-file F ...`
#       with a fresh temporary data dir when DATA_DIR is empty or "-", after
#       creating a key for owner "owner"; waits at most 10 s for the port.
#       Sets CHUBD_PID CHUBD_PORT CHUBD_URL CHUBD_KEY CHUBD_DATA CHUBD_LOG.
#   chubd_key NAME       prints a new key for owner NAME
#   chubd_cli ARGS...    runs `CHUBD_BIN --data DIR ARGS...`
#   chubd_stop           SIGTERM, wait at most 10 s, then SIGKILL; returns
#                        chubd's exit status
#   chubd_kill9          SIGKILL (the crash case)
#   chubd_restart        stop if running, start again on the same data dir
#   chubd_cleanup        stop and remove the temporary directory (unless
#                        CHUB_KEEP_TMP is set); installed as an EXIT trap
#                        by chubd_start, so every exit path stops chubd.
# One chubd per shell; the PID is the only handle used to stop it.
# Safe under `set -eu`.

CHUBD_PID=${CHUBD_PID:-}
CHUBD_WORK=${CHUBD_WORK:-}

chubd_start() {
  CHUBD_BIN=$1
  shift
  CHUBD_WORK=$(mktemp -d "${TMPDIR:-/tmp}/chubd-test-XXXXXX") || return 1
  if [ $# -gt 0 ] && [ -n "$1" ] && [ "$1" != "-" ]; then
    CHUBD_DATA=$1
  else
    CHUBD_DATA=$CHUBD_WORK/data
    mkdir -p "$CHUBD_DATA"
  fi
  [ $# -gt 0 ] && shift
  CHUBD_EXTRA=$*
  CHUBD_LOG=$CHUBD_WORK/chubd.log
  CHUBD_PORT_FILE=$CHUBD_WORK/port
  trap chubd_cleanup EXIT
  trap 'chubd_cleanup; exit 130' HUP INT PIPE TERM
  CHUBD_KEY=$(chubd_key owner) || {
    echo "chubd.sh: keys create failed" >&2
    cat "$CHUBD_LOG" >&2
    return 1
  }
  chubd_launch_
}

chubd_launch_() {
  rm -f "$CHUBD_PORT_FILE"
  # shellcheck disable=SC2086 # extra args are split on purpose
  "$CHUBD_BIN" --listen 127.0.0.1:0 --data "$CHUBD_DATA" \
    --port-file "$CHUBD_PORT_FILE" $CHUBD_EXTRA </dev/null 2>>"$CHUBD_LOG" &
  CHUBD_PID=$!
  chubd_i_=0
  while [ $chubd_i_ -lt 500 ]; do
    if [ -s "$CHUBD_PORT_FILE" ]; then
      CHUBD_PORT=$(head -n1 "$CHUBD_PORT_FILE")
      CHUBD_URL=http://127.0.0.1:$CHUBD_PORT
      return 0
    fi
    if ! kill -0 "$CHUBD_PID" 2>/dev/null; then
      echo "chubd.sh: chubd exited before serving; its stderr:" >&2
      cat "$CHUBD_LOG" >&2
      CHUBD_PID=
      return 1
    fi
    sleep 0.02
    chubd_i_=$((chubd_i_ + 1))
  done
  echo "chubd.sh: no port file within 10 s; its stderr:" >&2
  cat "$CHUBD_LOG" >&2
  chubd_kill9
  return 1
}

chubd_key() {
  chubd_out_=$("$CHUBD_BIN" --data "$CHUBD_DATA" keys create "$1" \
    2>>"$CHUBD_LOG") || return 1
  printf '%s\n' "$chubd_out_" | head -n1
}

chubd_cli() {
  "$CHUBD_BIN" --data "$CHUBD_DATA" "$@" 2>>"$CHUBD_LOG"
}

chubd_stop() {
  [ -n "$CHUBD_PID" ] || return 0
  kill -TERM "$CHUBD_PID" 2>/dev/null || true
  chubd_i_=0
  while kill -0 "$CHUBD_PID" 2>/dev/null && [ $chubd_i_ -lt 500 ]; do
    sleep 0.02
    chubd_i_=$((chubd_i_ + 1))
  done
  if kill -0 "$CHUBD_PID" 2>/dev/null; then
    echo "chubd.sh: chubd ignored SIGTERM for 10 s; SIGKILL" >&2
    kill -KILL "$CHUBD_PID" 2>/dev/null || true
  fi
  chubd_rc_=0
  wait "$CHUBD_PID" 2>/dev/null || chubd_rc_=$?
  CHUBD_PID=
  return $chubd_rc_
}

chubd_kill9() {
  [ -n "$CHUBD_PID" ] || return 0
  kill -KILL "$CHUBD_PID" 2>/dev/null || true
  wait "$CHUBD_PID" 2>/dev/null || true
  CHUBD_PID=
  return 0
}

chubd_restart() {
  chubd_stop || true
  chubd_launch_
}

chubd_cleanup() {
  chubd_stop || true
  if [ -n "$CHUBD_WORK" ] && [ -d "$CHUBD_WORK" ]; then
    if [ -n "${CHUB_KEEP_TMP:-}" ]; then
      echo "chubd.sh: keeping $CHUBD_WORK" >&2
    else
      rm -rf "$CHUBD_WORK"
    fi
  fi
  CHUBD_WORK=
}
