#!/usr/bin/env bash
# On the GPU machine: where the tiled top-k kernel's time goes in a real csa-eval pass. Builds
# csa once per profiling switch of fused_cuda_tiled.cuh (CSA_TILED_PROFILE: 0 the normal kernel,
# 1 selection only, 2 attention only over every causal key, 4 the first radix pass only, 16 the
# normal kernel printing per-launch selection statistics, CSA_TILED_STATS lines) and runs
# csa-eval with a policy on each, REPS times per dtype. Writes $OUT/tiled_parts/: the eval and
# --profile JSONs and stdout per run, build logs; scripts/gpu/tiled_parts_report.py summarises.
#   VARIANTS="0 16 1 2" DTYPES="float32 bfloat16" REPS=3 MODEL=models/qwen2-mini/model.pt \
#     POLICY=/tmp/policy.json CORPUS=.dev/shared/corpora/wikitext2-test.raw CTX=2048 \
#     TOKENS=65536 bash scripts/gpu/profile_tiled_parts.sh
# The build tree (build-gpu) is left configured with the last variant: rebuild with
# scripts/gpu/build.sh (no CSA_CMAKE_ARGS) before measuring anything else.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/tiled_parts
mkdir -p "$O"
: "${POLICY:?POLICY=policy.json}"
MODEL=${MODEL:-models/qwen2-mini/model.pt}
CORPUS=${CORPUS:-.dev/shared/corpora/wikitext2-test.raw}
for v in ${VARIANTS:-0 16 1 2}; do
  if ! CSA_CMAKE_ARGS="-DCMAKE_CUDA_FLAGS=-DCSA_TILED_PROFILE=$v" bash scripts/gpu/build.sh \
    > "$O/build.$v.log" 2>&1; then
    echo "build of variant $v failed:"
    tail -20 "$O/build.$v.log"
    continue
  fi
  for dt in ${DTYPES:-float32 bfloat16}; do
    for rep in $(seq "${REPS:-3}"); do
      cmd=(build-gpu/apps/csa-eval "$MODEL" "$CORPUS" --device cuda --ctx "${CTX:-2048}"
        --max-tokens "${TOKENS:-65536}" --dtype "$dt" --policy "$POLICY" -q
        -o "$O/eval.$v.$dt.$rep.json" --profile "$O/profile.$v.$dt.$rep.json")
      echo "CSA_TILED_PROFILE=$v ${cmd[*]}" > "$O/command.$v.$dt.$rep.txt"
      "${cmd[@]}" > "$O/stdout.$v.$dt.$rep.txt" 2>&1 || echo "variant $v $dt run $rep failed"
    done
  done
done
ls "$O" | wc -l
