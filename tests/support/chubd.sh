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
# With CHUB_TEST_PG set (the socket directory of the throwaway cluster
# tests/support/pg.sh started), chubd runs on PostgreSQL: a database named
# after the data directory is created on first use and passed with --db
# (CHUBD_DB) to the server and to every `keys` command.
# One chubd per shell; the PID is the only handle used to stop it.
# Safe under `set -eu`.

CHUBD_PID=${CHUBD_PID:-}
CHUBD_WORK=${CHUBD_WORK:-}
CHUBD_DB=
CHUBD_OWN_DB=

chubd_psql_() {
  chubd_psql_bin_=$(command -v psql 2>/dev/null ||
    echo /usr/lib/postgresql/15/bin/psql)
  "$chubd_psql_bin_" -X -q -At -h "$CHUB_TEST_PG" -U postgres -d postgres \
    -c "$1"
}

# The database of $CHUBD_DATA on the test cluster, made unless it exists.
chubd_pg_db_() {
  CHUBD_DB_NAME=chubt_$(printf '%s' "$CHUBD_DATA" | md5sum | cut -c1-16)
  chubd_psql_ "CREATE DATABASE \"$CHUBD_DB_NAME\"" 2>/dev/null ||
    chubd_psql_ "SELECT 1 FROM pg_database WHERE datname = '$CHUBD_DB_NAME'" |
    grep -q 1 || {
      echo "chubd.sh: cannot create database $CHUBD_DB_NAME on $CHUB_TEST_PG" >&2
      return 1
    }
  CHUBD_DB="host=$CHUB_TEST_PG user=postgres dbname=$CHUBD_DB_NAME"
}

# Runs chubd with --data, and --db on PostgreSQL.
chubd_run_() {
  if [ -n "$CHUBD_DB" ]; then
    "$CHUBD_BIN" --data "$CHUBD_DATA" --db "$CHUBD_DB" "$@"
  else
    "$CHUBD_BIN" --data "$CHUBD_DATA" "$@"
  fi
}

chubd_start() {
  CHUBD_BIN=$1
  shift
  CHUBD_WORK=$(mktemp -d "${TMPDIR:-/tmp}/chubd-test-XXXXXX") || return 1
  CHUBD_OWN_DB=
  if [ $# -gt 0 ] && [ -n "$1" ] && [ "$1" != "-" ]; then
    CHUBD_DATA=$1
  else
    CHUBD_DATA=$CHUBD_WORK/data
    mkdir -p "$CHUBD_DATA"
    CHUBD_OWN_DB=1
  fi
  CHUBD_DB=
  if [ -n "${CHUB_TEST_PG:-}" ]; then
    chubd_pg_db_ || return 1
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
  # chubd itself in the background (not a function running it), so that
  # $! is chubd's PID.
  if [ -n "$CHUBD_DB" ]; then
    "$CHUBD_BIN" --listen 127.0.0.1:0 --data "$CHUBD_DATA" --db "$CHUBD_DB" \
      --port-file "$CHUBD_PORT_FILE" $CHUBD_EXTRA </dev/null 2>>"$CHUBD_LOG" &
  else
    "$CHUBD_BIN" --listen 127.0.0.1:0 --data "$CHUBD_DATA" \
      --port-file "$CHUBD_PORT_FILE" $CHUBD_EXTRA </dev/null 2>>"$CHUBD_LOG" &
  fi
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
  chubd_out_=$(chubd_run_ keys create "$1" 2>>"$CHUBD_LOG") || return 1
  printf '%s\n' "$chubd_out_" | head -n1
}

chubd_cli() {
  chubd_run_ "$@" 2>>"$CHUBD_LOG"
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
  if [ -n "$CHUBD_DB" ] && [ -n "$CHUBD_OWN_DB" ] &&
    [ -z "${CHUB_KEEP_TMP:-}" ]; then
    chubd_psql_ "DROP DATABASE IF EXISTS \"$CHUBD_DB_NAME\" WITH (FORCE)" \
      >/dev/null 2>&1 || true
  fi
  CHUBD_DB=
  if [ -n "$CHUBD_WORK" ] && [ -d "$CHUBD_WORK" ]; then
    if [ -n "${CHUB_KEEP_TMP:-}" ]; then
      echo "chubd.sh: keeping $CHUBD_WORK" >&2
    else
      rm -rf "$CHUBD_WORK"
    fi
  fi
  CHUBD_WORK=
}
