#!/usr/bin/env bash
# The test command (README.md; CI runs exactly this): install, build, check the layering and the
# format, run the test tiers.
#   unit (no files) · golden (committed fixtures) · model (../shared/models) · cli (the apps)
# Needs ../shared beside the checkout for the model and cli tiers (or CSA_SHARED=/path/to/shared);
# without it ctest reports those tiers as skipped, and this script fails (CSA_TEST_ALLOW_SKIP=1:
# accept the skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 scripts/check_layers.py   # includes point down only (docs/architecture.md)
bash scripts/check_format.sh      # clang-format clean (.clang-format)
cd "${CSA_BUILD_DIR:-build}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest --output-on-failure -L "${CSA_TEST_LABELS:-unit|golden|model|cli}" | tee "$log"
# ctest counts a skipped tier (its prerequisite absent, tests/main.cpp) as no failure. Here, the
# command CI runs, it means a broken setup (CI has ../shared), so it fails unless accepted.
if grep -q "(Skipped)$" "$log" && [ "${CSA_TEST_ALLOW_SKIP:-0}" != 1 ]; then
  echo "test.sh: the tiers above were skipped; CSA_TEST_ALLOW_SKIP=1 accepts that" >&2
  exit 1
fi
