#!/bin/sh
# Installs what chub needs to build, test and run the demo on Debian 12, and
# nothing when it is all there already.
set -eu
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
libcurl4-openssl-dev libjansson-dev libssl-dev libmicrohttpd-dev libsqlite3-dev
sqlite3 libpq-dev postgresql libcmocka-dev zlib1g-dev dataset-fashion-mnist wrk nginx-light
chromium nodejs npm curl python3 openssl iproute2 libtorch-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node/npm may come from outside Debian's packages; accept any working ones.
case "$missing" in *nodejs*|*npm*)
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
  fi ;;
esac
[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
