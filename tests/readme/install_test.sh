#!/bin/sh
# `cmake --install` puts the libraries, chub.h and chub.pc in place, and the
# README's example builds from them with pkg-config alone.
# Usage: install_test.sh BUILD_DIR EXAMPLE_SOURCE
set -eu
prefix=$(mktemp -d "${TMPDIR:-/tmp}/chub-install-XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$1" --prefix "$prefix" >/dev/null
for f in include/chub.h lib/libchub.so lib/libchub.a lib/pkgconfig/chub.pc; do
  [ -e "$prefix/$f" ] || { echo "install_test: $f not installed"; exit 1; }
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's flags are split on purpose
cc -Wall -Wextra -Werror -o "$prefix/example" "$2" $(pkg-config --cflags --libs chub)
LD_LIBRARY_PATH="$prefix/lib" ldd "$prefix/example" | grep -q "$prefix/lib/libchub.so" ||
  { echo "install_test: the example does not link the installed libchub"; exit 1; }
echo "install_test: installed under a fresh prefix; the README example builds with pkg-config"
