#!/bin/sh
# server_shell_helper.sh CHUBD_BIN - checks tests/support/chubd.sh, the
# shell tests' way to run chubd, against the real chubd: start on a free
# port with a key, answer, restart on the same data, crash and restart,
# stop with exit 0, and leave no process and no temporary directory.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../support/chubd.sh"

fail() {
  echo "server_shell_helper: $*" >&2
  [ -n "${CHUBD_LOG:-}" ] && [ -f "$CHUBD_LOG" ] && cat "$CHUBD_LOG" >&2
  exit 1
}

chubd_start "$1" - --rate-limit 100000 --rate-burst 100000 || fail "chubd_start failed"
[ ${#CHUBD_KEY} -eq 42 ] || fail "key '$CHUBD_KEY' is not 42 characters"
WORK=$CHUBD_WORK
FIRST_PID=$CHUBD_PID

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/auth")
[ "$code" = 200 ] || fail "POST /v1/auth with the key answered $code"
ID=$(curl -s -X POST -H "x-api-key: $CHUBD_KEY" -H 'Content-Type: application/json' \
  -d '{"meta": {"name": "sh.pt"}}' "$CHUBD_URL/v1/models" |
  sed -n 's/.*"id":"\([A-Za-z0-9]\{20\}\)".*/\1/p')
[ -n "$ID" ] || fail "no model id from POST /v1/models"

# A second key from chubd_key works too.
K2=$(chubd_key second)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "x-api-key: $K2" "$CHUBD_URL/v1/auth")
[ "$code" = 200 ] || fail "second key answered $code"

chubd_restart || fail "restart failed"
[ "$CHUBD_PID" != "$FIRST_PID" ] || fail "restart kept the same PID"
kill -0 "$FIRST_PID" 2>/dev/null && fail "the first chubd ($FIRST_PID) still runs"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$ID")
[ "$code" = 200 ] || fail "model $ID after restart answered $code"

KILLED=$CHUBD_PID
chubd_kill9
kill -0 "$KILLED" 2>/dev/null && fail "chubd $KILLED survived SIGKILL"
chubd_restart || fail "restart after SIGKILL failed"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $CHUBD_KEY" "$CHUBD_URL/v1/models/$ID")
[ "$code" = 200 ] || fail "model $ID after SIGKILL and restart answered $code"

LAST=$CHUBD_PID
rc=0
chubd_stop || rc=$?
[ "$rc" = 0 ] || fail "chubd exited $rc on SIGTERM"
kill -0 "$LAST" 2>/dev/null && fail "chubd $LAST still runs after chubd_stop"

chubd_cleanup
[ -d "$WORK" ] && fail "$WORK is still there after chubd_cleanup"
echo "server_shell_helper: ok"
