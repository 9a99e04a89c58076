#!/usr/bin/env bash
# The sanitizer job (docs/robustness.md): builds build-asan/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (-DCSA_SANITIZE=ON, -O1, assertions on) and runs the unit and golden
# tiers under them. Any report fails the run (halt_on_error=1).
#
#   bash scripts/sanitize.sh
#   CSA_TEST_LABELS="unit|golden|model" bash scripts/sanitize.sh   # more tiers (slower)
#
# libtorch, OpenBLAS and sentencepiece are not instrumented; the few reports that come from inside
# them are suppressed in tests/sanitizers/{asan,ubsan,lsan}.supp, each entry explained there.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${CSA_ASAN_BUILD_DIR:-build-asan}
CSA_SETUP_NO_BUILD=1 bash scripts/setup.sh  # clang, libclang-rt-14-dev, llvm (packages only)

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  GENERATOR=()
  command -v ninja >/dev/null && GENERATOR=(-G Ninja)
  # Debug keeps assertions (nlohmann's JSON_ASSERT, libtorch's debug checks) on; -O1 keeps the
  # instrumented tests fast. The apps are not needed by the unit and golden tiers.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" \
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DCSA_SANITIZE=ON -DCSA_BUILD_APPS=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" --target csa_tests

SUPP=$PWD/tests/sanitizers
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:suppressions=$SUPP/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
command -v llvm-symbolizer >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)

cd "$BUILD_DIR"
ctest --output-on-failure -L "${CSA_TEST_LABELS:-unit|golden}"
echo "sanitize: ${CSA_TEST_LABELS:-unit|golden} clean under ASan+UBSan" >&2
