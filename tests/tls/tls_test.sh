#!/bin/sh
# tls_test.sh - chubd over HTTPS, both ways the README describes:
#   1. chubd --tls-cert/--tls-key itself: curl, `chub login`, the example
#      trainer through libchub (CHUB_CA_FILE), a signed https download URL,
#      a Secure session cookie; plain HTTP on that port gets no answer;
#   2. nginx in front of a plain chubd with deploy/nginx/chubd-tls.conf as
#      it is (only names, ports and certificate paths replaced): a streamed
#      checkpoint upload and its signed https URL through nginx, and a page
#      login from the proxy's origin.
# A throwaway certificate authority and certificate are made with openssl.
#
# Usage: tls_test.sh SOURCE_DIR CHUBD_BIN CHUB_BIN TRAINER_BIN CHUBD_SH
set -u
SRC=$1
CHUBD_BIN=$2
CHUB=$3
TRAINER=$4
# shellcheck source=/dev/null # the path comes from CMake
. "$5"
. "$(dirname "$5")/nginx.sh"

fail() {
  echo "FAIL: $*" >&2
  [ -n "${CHUBD_LOG:-}" ] && [ -f "$CHUBD_LOG" ] && tail -n 20 "$CHUBD_LOG" >&2
  [ -n "${W:-}" ] && [ -f "$W/nginx/error.log" ] && tail -n 20 "$W/nginx/error.log" >&2
  exit 1
}
for tool in openssl curl nginx python3; do
  command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (scripts/deps.sh installs it)"
done

# --- a certificate for localhost and 127.0.0.1, signed by our own CA
W=$(mktemp -d "${TMPDIR:-/tmp}/chub-tls-XXXXXX") || exit 1
NGINX_PID=
cleanup_tls() {
  nginx_stop
  chubd_cleanup
  rm -rf "$W"
}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=chub test CA" \
  -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null || fail "openssl: CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$W/key.pem" -out "$W/req.pem" 2>/dev/null || fail "openssl: request"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$W/san.ext"
openssl x509 -req -in "$W/req.pem" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
  -CAcreateserial -days 2 -extfile "$W/san.ext" -out "$W/cert.pem" \
  2>/dev/null || fail "openssl: sign"

# --- 1. chubd serving HTTPS itself
chubd_start "$CHUBD_BIN" - --tls-cert "$W/cert.pem" --tls-key "$W/key.pem" ||
  fail "chubd --tls-cert did not start"
trap 'cleanup_tls' EXIT
trap 'cleanup_tls; exit 130' HUP INT PIPE TERM
U=https://127.0.0.1:$CHUBD_PORT
health=$(curl -sS --cacert "$W/ca.pem" "$U/v1/health") || fail "curl over TLS"
echo "$health" | grep -q '"success":true' || fail "health over TLS: $health"
if curl -s -m 5 -o /dev/null "http://127.0.0.1:$CHUBD_PORT/v1/health"; then
  fail "plain HTTP on the TLS port was answered"
fi
if curl -s -m 5 -o /dev/null "$U/v1/health"; then
  fail "a certificate no one signed was trusted"
fi

export CHUB_CONFIG_DIR="$W/config" CHUB_TESTING=1 CHUB_CA_FILE="$W/ca.pem"
export CHUB_RUNS_DIR="$W/runs"
unset CHUB_API_KEY CHUB_API_ROOT CHUB_WEB_ROOT
"$CHUB" settings "api_root=$U" rate_limit_ckpt=0 >/dev/null || fail "settings"
"$CHUB" login "$CHUBD_KEY" >/dev/null 2>&1 || fail "chub login over TLS"
"$TRAINER" --limit 300 --epochs 2 --model mlp-small.cfg --out "$W/out" \
  >"$W/train.log" 2>&1 || { cat "$W/train.log" >&2; fail "the trainer over TLS"; }
id=$(sed -n 's|.*View model at .*/models/\([A-Za-z0-9]\{20\}\).*|\1|p' "$W/train.log" | head -n1)
[ -n "$id" ] || { cat "$W/train.log" >&2; fail "no model id in the trainer's log"; }
model=$(curl -sS --cacert "$W/ca.pem" -H "x-api-key: $CHUBD_KEY" "$U/v1/models/$id")
python3 - "$model" "$U" >"$W/weights.url" <<'PY' || fail "model over TLS: $model"
import json, sys
m = json.loads(sys.argv[1])["data"]
assert m["status"] == "trained", m["status"]
assert m["metrics_count"] == 2, m["metrics_count"]
assert m["weights"].startswith(sys.argv[2] + "/v1/models/"), m["weights"]
print(m["weights"])
PY
curl -sS --cacert "$W/ca.pem" -o "$W/best.bin" "$(cat "$W/weights.url")" ||
  fail "signed https download"
cmp -s "$W/best.bin" "$W/out/best.bin" || fail "the https download is not best.bin"
cookie=$(curl -sS --cacert "$W/ca.pem" -D - -o /dev/null \
  -H "Origin: $U" -H "Content-Type: application/json" \
  -d "{\"key\": \"$CHUBD_KEY\"}" "$U/ui/login" | grep -i '^set-cookie:')
echo "$cookie" | grep -q 'chub_session=' || fail "no session cookie over TLS: $cookie"
echo "$cookie" | grep -qi '; Secure' || fail "the session cookie over TLS is not Secure: $cookie"
chubd_stop >/dev/null || fail "chubd did not stop cleanly"
echo "tls: chubd itself: curl, chub login, the trainer, a signed download, a Secure cookie"

# --- 2. nginx in front, with the deploy config as shipped
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
P=https://localhost:$NGINX_PORT
chubd_start "$CHUBD_BIN" - --public-url "$P" --max-per-ip 512 ||
  fail "chubd behind nginx did not start"
# chubd_start installs its own traps; ours also stops nginx.
trap 'cleanup_tls' EXIT
trap 'cleanup_tls; exit 130' HUP INT PIPE TERM
mkdir -p "$W/nginx"
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$NGINX_PORT ssl;|" \
  -e "s|server_name hub.example.com;|server_name localhost;|" \
  -e "s|/etc/ssl/chubd/fullchain.pem|$W/cert.pem|" \
  -e "s|/etc/ssl/chubd/privkey.pem|$W/key.pem|" \
  -e "s|server 127.0.0.1:8080;|server 127.0.0.1:$CHUBD_PORT;|" \
  "$SRC/deploy/nginx/chubd-tls.conf" >"$W/nginx/chubd.conf"
grep -q "$NGINX_PORT" "$W/nginx/chubd.conf" && grep -q "$CHUBD_PORT" "$W/nginx/chubd.conf" ||
  fail "deploy/nginx/chubd-tls.conf no longer has the lines this test replaces"
nginx_run "$W/nginx" "$W/nginx/chubd.conf"
n=0
until curl -s -o /dev/null --cacert "$W/ca.pem" "$P/v1/health"; do
  n=$((n + 1))
  [ $n -gt 100 ] && fail "nginx did not start"
  kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx exited"
  sleep 0.1
done
K=$CHUBD_KEY
mid=$(curl -sS --cacert "$W/ca.pem" -H "x-api-key: $K" -H "Content-Type: application/json" \
  -d '{"meta": {"name": "behind-nginx.pt"}}' "$P/v1/models" |
  sed -n 's/.*"id":"\([A-Za-z0-9]\{20\}\)".*/\1/p')
[ -n "$mid" ] || fail "create through nginx"
head -c 6000000 /dev/urandom >"$W/ckpt.pt"
sha=$(sha256sum "$W/ckpt.pt" | cut -d' ' -f1)
up=$(curl -sS --cacert "$W/ca.pem" -H "x-api-key: $K" -H "x-chub-sha256: $sha" \
  -F epoch=0 -F type=epoch -F isBest=True -F "last.pt=@$W/ckpt.pt" \
  "$P/v1/models/$mid/upload") || fail "upload through nginx"
echo "$up" | grep -q "$sha" || fail "upload through nginx answered: $up"
resume=$(curl -sS --cacert "$W/ca.pem" -H "x-api-key: $K" "$P/v1/models/$mid" |
  python3 -c 'import sys, json; print(json.load(sys.stdin)["data"]["resume"])')
case $resume in "$P/v1/models/$mid/weights/$sha/"*) ;; *) fail "resume URL behind nginx: $resume" ;; esac
curl -sS --cacert "$W/ca.pem" -o "$W/back.pt" "$resume" || fail "download through nginx"
cmp -s "$W/back.pt" "$W/ckpt.pt" || fail "the download through nginx differs"
cookie=$(curl -sS --cacert "$W/ca.pem" -D - -o /dev/null -H "Origin: $P" \
  -H "Content-Type: application/json" -d "{\"key\": \"$K\"}" "$P/ui/login" |
  grep -i '^set-cookie:')
echo "$cookie" | grep -qi 'chub_session=.*; Secure' ||
  fail "login through nginx from its origin: $cookie"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/ca.pem" \
  -H "Host: evil.example" "$P/v1/health")
[ "$code" = 421 ] || fail "another host name through nginx answered $code, not 421"
echo "tls: behind nginx with deploy/nginx/chubd-tls.conf: upload, signed download, login"
