#!/bin/sh
# symbols_test.sh - libchub.so exports exactly the functions include/chub.h
# declares with CHUB_EXTERN: nothing internal (a trainer defining its own
# `http_call` or linking another library with one must never get chub's),
# and nothing of the API missing.
#
# Usage: symbols_test.sh LIBCHUB_SO CHUB_H
set -u
SO=$1
HDR=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/chub-symbols-XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
# Defined, global symbols of the dynamic table: functions and data.
nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' |
  sed 's/@.*//' | sort -u >"$W/exported"
# The functions chub.h declares (a declaration starts its line; typedefs
# of callbacks are not functions).
grep -v '^typedef' "$HDR" |
  sed -n 's/^\(CHUB_EXTERN \)\{0,1\}[a-z][a-z_ ]*[ *]\(chub_[a-z0-9_]*\)(.*/\2/p' |
  sort -u >"$W/api"
[ -s "$W/api" ] || { echo "FAIL: no function declaration found in $HDR"; exit 1; }
extra=$(comm -23 "$W/exported" "$W/api")
missing=$(comm -13 "$W/exported" "$W/api")
status=0
if [ -n "$extra" ]; then
  echo "FAIL: libchub.so exports symbols chub.h does not declare:"
  echo "$extra" | sed 's/^/  /'
  status=1
fi
if [ -n "$missing" ]; then
  echo "FAIL: chub.h declares functions libchub.so does not export:"
  echo "$missing" | sed 's/^/  /'
  status=1
fi
[ $status -eq 0 ] &&
  echo "symbols: libchub.so exports the $(wc -l <"$W/api") functions of chub.h and nothing else"
exit $status
