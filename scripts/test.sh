#!/usr/bin/env bash
# The test command (README.md; CI runs exactly this): install, build, check the layering and the
# format, run the test tiers.
#   unit (no files) · golden (committed fixtures) · model (../shared/models) · cli (the apps)
# Needs ../shared beside the checkout for the model tier (or CSA_SHARED=/path/to/shared).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 scripts/check_layers.py   # includes point down only (docs/architecture.md)
bash scripts/check_format.sh      # clang-format clean (.clang-format)
cd "${CSA_BUILD_DIR:-build}"
ctest --output-on-failure -L "${CSA_TEST_LABELS:-unit|golden|model|cli}"
