#!/usr/bin/env bash
# On the GPU machine: Nsight Compute's full section set with source-level samples for one launch
# of the tiled top-k kernel inside a real csa-eval pass (qwen2-mini, the swept policy of
# results/quality, float32, ctx 2048, 65,536 WikiText-2 test tokens; launch LAUNCH, 0-based,
# default 2: layer 2 of the dense pass has no tiled launch, so the policy pass's third layer).
# Builds build-gpu with -lineinfo (rebuild without it before timing anything). Writes
# $OUT/ncu_launch/: launch.ncu-rep, details.csv (--page details), source.csv (--page source,
# CUDA lines with their SASS); carry .dev/debs and .dev/shared/corpora.
#   LAUNCH=2 DTYPE=float32 bash scripts/gpu/ncu_launch_profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/ncu_launch
mkdir -p "$O"
CSA_CMAKE_ARGS="-DCMAKE_CUDA_FLAGS=-lineinfo" bash scripts/gpu/build.sh > "$O/build.log" 2>&1 ||
  { tail -30 "$O/build.log"; exit 1; }
P=$(mktemp)
gunzip -c results/quality/qwen2-mini.swept.json.gz > "$P"
ncu --version > "$O/ncu_version.txt" 2>&1
timeout 150 ncu --set full --import-source yes -k regex:tiled_topk -s "${LAUNCH:-2}" -c 1 \
  -o "$O/launch" build-gpu/apps/csa-eval models/qwen2-mini/model.pt \
  .dev/shared/corpora/wikitext2-test.raw --device cuda --ctx 2048 --max-tokens 65536 \
  --dtype "${DTYPE:-float32}" --policy "$P" -q -o "$O/eval.json" > "$O/ncu.log" 2>&1 ||
  { echo "ncu failed"; tail -20 "$O/ncu.log"; }
ncu -i "$O/launch.ncu-rep" --page details --csv > "$O/details.csv"
ncu -i "$O/launch.ncu-rep" --page source --csv --print-source cuda,sass > "$O/source.csv"
rm -f "$P"
