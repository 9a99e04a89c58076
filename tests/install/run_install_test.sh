#!/usr/bin/env bash
# Install test (ctest -L install; docs/robustness.md): `cmake --install` a built tree into a
# temporary prefix, build tests/install/consumer against it with find_package(csa), and run it:
# parse a config.json, load a tiny model and run a forward pass, and check that the sentencepiece
# module csa dlopens is the installed <prefix>/<libdir>/csa/libcsa_spm.so (the consumer is placed
# in <prefix>/bin like an installed app, where sentencepiece.cpp looks first).
#
#   bash tests/install/run_install_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run_install_test.sh BUILD_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/csa-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
echo "installed into $prefix:"
(cd "$prefix" && find . -type f \( -name '*.so' -o -name '*.a' -o -name '*.cmake' -o -path './bin/*' \) | sort)

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake -S "$here/consumer" -B "$work/consumer" "${generator[@]}" "${launcher[@]}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$compiler" \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" >"$work/build.log" || { cat "$work/build.log"; exit 1; }

mkdir -p "$prefix/bin"
cp "$work/consumer/csa_consumer" "$prefix/bin/"
"$prefix/bin/csa_consumer" "$src/tests/fixtures/models/llama-tiny/config.json" \
    "$src/tests/fixtures/models/llama-tiny" --spm
echo "install test: ok"
