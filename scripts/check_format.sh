#!/usr/bin/env bash
# Fails when a tracked C++/CUDA source differs from what clang-format makes of it (.clang-format:
# Google style, 100 columns). CI runs it (.ci/run). Fix with:
#   git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || { echo "check_format: $CLANG_FORMAT not found" >&2; exit 3; }
git ls-files -z '*.cpp' '*.h' '*.cu' '*.cuh' | xargs -0 "$CLANG_FORMAT" --style=file --dry-run --Werror
echo "check_format: $(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | wc -l) files formatted" >&2
