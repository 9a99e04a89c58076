#!/usr/bin/env bash
# Where a csa-eval pass spends its GPU time, kernel by kernel (docs/performance.md, "The pipeline
# on the GPU"): Nsight Compute's gpu__time_duration of every kernel of two csa-eval runs of the
# embedded qwen2-mini on the first 65,536 WikiText-2 test tokens, float32, ctx 2048 — dense only,
# and dense + the swept policy of results/quality — then scripts/gpu/ncu_kernels_report.py sums
# them per kernel. ncu serialises the kernels (clocks and caches left alone), so the sums are GPU
# busy time, not wall time. After scripts/gpu/build.sh; carry .dev/shared/corpora.
#   run: bash scripts/gpu/ncu_pass_kernels.sh     ($OUT/ncu.tar.gz: the CSVs and eval JSONs)
#   here: python3 scripts/gpu/ncu_kernels_report.py DIR results/gpu/pipeline/ncu_kernels.json
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
W=/tmp/csa-ncu/o
mkdir -p "$W"
gunzip -c results/quality/qwen2-mini.swept.json.gz > "$W/policy.json"
E=(build-gpu/apps/csa-eval models/qwen2-mini/model.pt .dev/shared/corpora/wikitext2-test.raw
   --device cuda --ctx 2048 --max-tokens 65536 --dtype "${DTYPE:-float32}" -q)
for m in dense policy; do
  P=(); [ "$m" = policy ] && P=(--policy "$W/policy.json")
  timeout 150 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
    "${E[@]}" "${P[@]}" -o "$W/e_$m.json" > "$W/ncu_$m.csv" 2> "$W/ncu_$m.err"
  echo "ncu $m rc=$?"
done
rm -f "$W/policy.json"
tar -C "$W/.." -czf "${OUT:-/tmp/csa-out}/ncu.tar.gz" o
