#!/bin/sh
# `cmake --install` puts the libraries, chub.h, chub.hpp and chub.pc in
# place, and the README's examples (C, and C++ when given) build from them
# with pkg-config alone.
# Usage: install_test.sh BUILD_DIR EXAMPLE_SOURCE [CXX_EXAMPLE_SOURCE]
set -eu
prefix=$(mktemp -d "${TMPDIR:-/tmp}/chub-install-XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$1" --prefix "$prefix" >/dev/null
for f in include/chub.h include/chub.hpp lib/libchub.so lib/libchub.a lib/pkgconfig/chub.pc; do
  [ -e "$prefix/$f" ] || { echo "install_test: $f not installed"; exit 1; }
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's flags are split on purpose
cc -Wall -Wextra -Werror -o "$prefix/example" "$2" $(pkg-config --cflags --libs chub)
LD_LIBRARY_PATH="$prefix/lib" ldd "$prefix/example" | grep -q "$prefix/lib/libchub.so" ||
  { echo "install_test: the example does not link the installed libchub"; exit 1; }
if [ $# -ge 3 ]; then
  # shellcheck disable=SC2046 # pkg-config's flags are split on purpose
  c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -o "$prefix/example-cpp" "$3" $(pkg-config --cflags --libs chub)
  LD_LIBRARY_PATH="$prefix/lib" ldd "$prefix/example-cpp" | grep -q "$prefix/lib/libchub.so" ||
    { echo "install_test: the C++ example does not link the installed libchub"; exit 1; }
  # The installed chub.hpp is the one compiled, not the source tree's.
  # shellcheck disable=SC2046
  c++ -std=c++17 -E "$3" $(pkg-config --cflags chub) | grep -q "^# 1 \"$prefix/.*include/chub.hpp\"" ||
    { echo "install_test: the C++ example did not include the installed chub.hpp"; exit 1; }
fi
echo "install_test: installed under a fresh prefix; the README examples build with pkg-config"
