#!/usr/bin/env bash
# On the GPU machine (carry .dev/debs): the [gpu] tier on the tree with patches applied, one build
# each, the sources restored after each — to tell a failing case's cause (results/gpu/group_max:
# a new test case alone on the tree, with the kernel change, with another change).
# Writes $OUT/tests_gpu.LABEL.log and $OUT/build.LABEL.log, and prints "LABEL tests rc=RC".
#   bash scripts/gpu/patch_tests.sh "LABEL=PATCH[,PATCH...] ..."
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { sed -n 2,6p "$0"; exit 2; }
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}
mkdir -p "$O"
for spec in $1; do
  label=${spec%%=*}
  IFS=, read -r -a patches <<< "${spec#*=}"
  applied=()
  for p in "${patches[@]}"; do
    patch -p1 < "$p" > /dev/null || { echo "$label: $p does not apply"; break; }
    applied=("$p" "${applied[@]}")
  done
  if [ ${#applied[@]} -eq ${#patches[@]} ]; then
    if bash scripts/gpu/build.sh > "$O/build.$label.log" 2>&1; then
      timeout 300 build-gpu/tests/csa_tests "[gpu]" > "$O/tests_gpu.$label.log" 2>&1
      echo "$label tests rc=$?"
    else
      echo "$label: build failed"
      tail -20 "$O/build.$label.log"
    fi
  fi
  for p in "${applied[@]}"; do patch -p1 -R < "$p" > /dev/null; done
done
