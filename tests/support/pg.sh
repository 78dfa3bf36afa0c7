#!/bin/sh
# pg.sh - a throwaway PostgreSQL cluster for tests, in a directory of its
# own, reachable only through a Unix socket in that directory.
#
#   pg.sh start DIR   initdb DIR/data, start the server (no TCP at all:
#                     listen_addresses=''; socket DIR/.s.PGSQL.5432), wait
#                     at most 30 s until it accepts connections. A cluster
#                     already there from an earlier run is stopped and
#                     removed first.
#   pg.sh stop DIR    stop the server (fast, then immediate; bounded) and
#                     remove DIR.
#   pg.sh db DIR NAME create database NAME unless it exists.
# DIR's parent must be one the cluster's user can enter (e.g. /tmp).
# Without CHUB_PG_DURABLE=1 the cluster runs with fsync off (tests).
#
# Clients connect with "host=DIR user=postgres dbname=NAME" (trust: only
# this machine's users can reach the socket). PostgreSQL refuses to run as
# root: as root, the server runs as the system user $CHUB_PG_USER
# (default chub-pg, created once with useradd --system when missing).
# Binaries come from $CHUB_PG_BIN (default: pg_config --bindir, else
# /usr/lib/postgresql/15/bin). Nothing here stops any process but the one
# postmaster whose pid file is in DIR.
set -eu

PG_BIN=${CHUB_PG_BIN:-}
if [ -z "$PG_BIN" ]; then
  for d in "$(pg_config --bindir 2>/dev/null || true)" \
    /usr/lib/postgresql/15/bin; do
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
      PG_BIN=$d
      break
    fi
  done
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || {
  echo "pg.sh: no initdb (install postgresql, or set CHUB_PG_BIN)" >&2
  exit 1
}
PG_USER=${CHUB_PG_USER:-chub-pg}

# Runs a command as the cluster's owner.
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

pg_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u "$PG_USER" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_USER" 2>/dev/null ||
    id -u "$PG_USER" >/dev/null 2>&1 # another run made it meanwhile
}

pg_stop() {
  dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop \
      >/dev/null 2>&1 ||
      pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop \
        >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

pg_start() {
  dir=$1
  pg_stop "$dir"
  pg_user
  mkdir -p "$dir"
  chmod 0755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$dir"
  pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 32MB
CONF
  # Speed over durability: the cluster lives for one test run. A benchmark
  # sets CHUB_PG_DURABLE=1 to measure PostgreSQL as it is deployed.
  if [ -z "${CHUB_PG_DURABLE:-}" ]; then
    cat >>"$dir/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    start >/dev/null || {
    cat "$dir/server.log" >&2
    return 1
  }
}

pg_db() {
  "$PG_BIN/psql" -X -q -h "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$2\"" >/dev/null 2>&1 ||
    "$PG_BIN/psql" -X -q -At -h "$1" -U postgres -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = '$2'" | grep -q 1
}

case "${1:-}" in
start) pg_start "$2" ;;
stop) pg_stop "$2" ;;
db) pg_db "$2" "$3" ;;
*)
  echo "usage: pg.sh start|stop DIR | pg.sh db DIR NAME" >&2
  exit 2
  ;;
esac
