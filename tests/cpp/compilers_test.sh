#!/bin/sh
# Compiles chub.hpp's unit test with g++ and with clang++ at
# -std=c++17 -Wall -Wextra -Wpedantic -Werror, links each against libchub
# and runs it: the header must be warning-free and work with both.
# Usage: compilers_test.sh TEST_SOURCE INCLUDE_DIR LIBCHUB_SO
set -eu
src=$1 inc=$2 lib=$3
out=$(mktemp -d "${TMPDIR:-/tmp}/chub-hpp-cxx-XXXXXX")
trap 'rm -rf "$out"' EXIT
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || { echo "compilers_test: $cxx not found"; exit 1; }
  "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror -I"$inc" -o "$out/t-$cxx" "$src" \
    "$lib" -Wl,-rpath,"$(dirname "$lib")"
  "$out/t-$cxx" >"$out/log-$cxx" 2>&1 || { cat "$out/log-$cxx"; echo "compilers_test: the $cxx build failed"; exit 1; }
  echo "compilers_test: $cxx: $(tail -n 1 "$out/log-$cxx")"
done
