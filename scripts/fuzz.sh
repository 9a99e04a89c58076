#!/usr/bin/env bash
# libFuzzer (docs/robustness.md): builds the fuzz targets into build-fuzz/ with clang (coverage,
# ASan, UBSan), replays the committed seed corpora, then fuzzes each target for FUZZ_SECONDS.
#
#   bash scripts/fuzz.sh                                # CI smoke run: 10 s per target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh               # a longer session: 10 min per target
#   FUZZ_SECONDS=3600 FUZZ_TARGETS="pickle torchscript" bash scripts/fuzz.sh
#
# Targets: safetensors config policy tokenizer pickle torchscript (tests/fuzz/fuzz_<name>.cpp).
# Inputs that libFuzzer finds go to build-fuzz/corpus/<name>/ (the committed seeds in
# tests/fuzz/corpus/<name>/ are only read). A failure leaves build-fuzz/artifacts/<name>/crash-*
# (or leak-*, timeout-*, oom-*) and fails the script; reproduce it with
#   build-fuzz/tests/fuzz/fuzz_<name> build-fuzz/artifacts/<name>/crash-...
# then fix the parser, add the input to tests/fuzz/corpus/<name>/ and a unit test beside the
# parser's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${CSA_FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
TARGETS=(${FUZZ_TARGETS:-safetensors config policy tokenizer pickle torchscript})

CSA_SETUP_NO_BUILD=1 bash scripts/setup.sh  # clang, libclang-rt-14-dev, llvm (packages only)

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  GENERATOR=()
  command -v ninja >/dev/null && GENERATOR=(-G Ninja)
  # Debug keeps assertions (nlohmann's JSON_ASSERT, libtorch's debug checks) on; -O1 for speed.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" \
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DCSA_FUZZ=ON -DCSA_BUILD_TESTS=OFF -DCSA_BUILD_APPS=OFF \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

SUPP=$PWD/tests/sanitizers
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:suppressions=$SUPP/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# One OpenMP thread: the parsers are single-threaded and fewer threads make runs reproducible.
export OMP_NUM_THREADS=1

failed=()
for t in "${TARGETS[@]}"; do
  bin=$BUILD_DIR/tests/fuzz/fuzz_$t
  seeds=tests/fuzz/corpus/$t
  corpus=$BUILD_DIR/corpus/$t
  artifacts=$BUILD_DIR/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $t: replaying $(ls "$seeds" | wc -l) seeds, then fuzzing ${FUZZ_SECONDS}s" >&2
  if ! "$bin" -runs=0 "$seeds" 2>"$artifacts/replay.log"; then
    tail -n 40 "$artifacts/replay.log" >&2
    failed+=("$t (seed replay)")
    continue
  fi
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  if ! "$bin" "$corpus" "$seeds" "${dict[@]}" -max_total_time="$FUZZ_SECONDS" \
        -artifact_prefix="$artifacts/" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
        -print_final_stats=1 2>"$artifacts/fuzz.log"; then
    tail -n 60 "$artifacts/fuzz.log" >&2
    failed+=("$t")
    continue
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$artifacts/fuzz.log" |
    tr '\n' ' ' | sed "s/^/fuzz: $t: /; s/\$/\n/" >&2
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets x ${FUZZ_SECONDS}s: no crash" >&2
