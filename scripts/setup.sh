#!/usr/bin/env bash
# Installs what csa needs from Debian's packages (bookworm) and builds it (Release) into build/.
#
#   bash scripts/setup.sh            # packages + build
#   CSA_BUILD_DIR=build-b CSA_CMAKE_ARGS="-DCSA_PCH=OFF" bash scripts/setup.sh
#   CSA_SETUP_NO_BUILD=1 bash scripts/setup.sh   # packages only (scripts/sanitize.sh, fuzz.sh)
#
# Debian's libtorch links whatever BLAS the system provides; with only the reference BLAS it is
# ~36x slower, so an optimized OpenBLAS (OpenMP flavour, which libtorch's thread count drives)
# is part of the set. libblas-dev adds cblas.h and the link-time libblas.so for the fused CPU
# attention kernel's block products (cblas_sgemm); at run time libblas.so.3 resolves to that same
# OpenBLAS through Debian's alternatives. Safe to re-run: installed packages are skipped, the
# build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build git ccache pkg-config
          libtorch-dev libopenblas0-openmp libblas-dev
          libcli11-dev nlohmann-json3-dev libspdlog-dev libsentencepiece-dev catch2
          libpcre2-dev zlib1g-dev libssl-dev
          python3-matplotlib python3-numpy
          clang clang-format libclang-rt-14-dev llvm)   # sanitize.sh / fuzz.sh: clang's ASan, UBSan,
                                           # libFuzzer and llvm-symbolizer for stack traces

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ "${CSA_SETUP_NO_BUILD:-0}" = 1 ] && exit 0

BUILD_DIR=${CSA_BUILD_DIR:-build}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_COMPILER_LAUNCHER=ccache ${CSA_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "setup: built into $BUILD_DIR/ (apps in $BUILD_DIR/apps)" >&2
