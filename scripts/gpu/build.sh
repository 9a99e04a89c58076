#!/usr/bin/env bash
# Builds csa on the GPU machine against its PyTorch's libtorch (CUDA) into build-gpu/.
#   here:  bash scripts/gpu/fetch_debs.sh      (Debian dependencies as .deb files in .dev/debs)
#   there: bash scripts/gpu/build.sh           (carry .dev)
# The .debs are unpacked into .dev/sysroot (never into /) and found through CMAKE_PREFIX_PATH;
# -I (searched before every -isystem dir) puts Debian's fmt 9, which its spdlog 1.10 needs, ahead
# of the fmt 11 headers the PyTorch wheel bundles. Debian's multiarch include folder holds
# OpenSSL's configuration.h (a Debian compiler searches it by default; this one must be told).
# libcrypto (libssl-dev's libcrypto.so -> libssl3's libcrypto.so.3) is found through
# OPENSSL_ROOT_DIR and CMAKE_LIBRARY_PATH. scripts/gpu/env.sh puts their shared libraries on
# LD_LIBRARY_PATH for running.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD/.dev/sysroot
# Each .deb once (a stamp per file), so a sysroot unpacked before a package joined the list
# still gets it.
mkdir -p "$ROOT/.unpacked"
for d in .dev/debs/*.deb; do
  stamp=$ROOT/.unpacked/$(basename "$d")
  [ -f "$stamp" ] && continue
  case "$d" in *zlib1g-dev*) [ -f /usr/include/zlib.h ] && continue ;; esac
  dpkg-deb -x "$d" "$ROOT"
  touch "$stamp"
done
PY=${PYTHON:-python3}
TORCH_CMAKE=$($PY -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
# nvcc for the fused attention kernel (lib/CMakeLists.txt): from PATH, else the usual place.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$ROOT/usr" \
  -DCMAKE_INCLUDE_PATH="$ROOT/usr/include" \
  -DCMAKE_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu" \
  -DOPENSSL_ROOT_DIR="$ROOT/usr" \
  -DCMAKE_CUDA_ARCHITECTURES=90 ${CSA_CMAKE_ARGS:-} \
  -DCMAKE_CXX_FLAGS="-I$ROOT/usr/include -I$ROOT/usr/include/x86_64-linux-gnu"
# -k 0: keep building the other targets past a failing one (the log names it).
cmake --build build-gpu -j "$(nproc)" -- -k 0
