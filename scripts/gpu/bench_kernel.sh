#!/usr/bin/env bash
# On the GPU machine (after scripts/gpu/build.sh): one attention call on the real models' head
# layouts (configs/llama-3.2-1b.json: 32 query / 8 KV heads, head_dim 64; configs/qwen2.5-1.5b.json:
# 12 / 2, 128), random q/k/v, for every batch, ctx and budget below: the fused top-k kernel
# (--path auto), the explicit sequence (--path explicit: scores, top-k mask, softmax, P·V) and
# dense SDPA, in one run; median time and peak memory. Writes $OUT/kernel.jsonl (one csa-bench JSON
# per line; a failed point, e.g. out of memory, is recorded with its error) and scripts/gpu/
# kernel_report.py makes results/gpu/kernel.{json,png} from it here.
#   DTYPES="float32 bfloat16" CTXS="1024 4096 16384" BATCHES="1 4" PCTS="1 5 10" \
#     CFGS="configs/llama-3.2-1b.json configs/qwen2.5-1.5b.json" bash scripts/gpu/bench_kernel.sh
# Ends with whole forward passes of qwen2-mini (dense, kernel, explicit). SKIP_DENSE=1 and
# SKIP_FORWARD=1 leave those points out (a second run over other budgets); the explicit sequence
# runs up to EXPLICIT_MAX_CTX (default: every ctx). POINT_TIMEOUT: seconds per point (120);
# APPEND=1 appends to kernel.jsonl. CSA_TILED_* variables in the environment (a build's
# profiling switch, fused_cuda_tiled.cuh's CSA_TILED_PROFILE, named by the caller) are recorded
# with each point.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/kernel.jsonl
[ -n "${APPEND:-}" ] || : > "$O"
point() {  # label, args... (csa_bench_point, env.sh)
  local label=$1
  shift
  csa_bench_point "$O" "${POINT_TIMEOUT:-120}" "$label" --device cuda --repeats 5 -q "$@"
}
for cfg in ${CFGS:-configs/llama-3.2-1b.json configs/qwen2.5-1.5b.json}; do
  for dt in ${DTYPES:-float32 bfloat16}; do
    for b in ${BATCHES:-1 4}; do
      for ctx in ${CTXS:-1024 4096 16384}; do
        common=(--config "$cfg" --dtype "$dt" --batch "$b" --ctx "$ctx")
        [ -n "${SKIP_DENSE:-}" ] || point dense "${common[@]}" --mode dense
        for pct in ${PCTS:-1 5 10}; do
          k=$(( ctx * pct / 100 )); [ "$k" -ge 1 ] || k=1
          point kernel "${common[@]}" --mode top_k --budget "$k"
          [ "$ctx" -le "${EXPLICIT_MAX_CTX:-$ctx}" ] &&
            point explicit "${common[@]}" --mode top_k --budget "$k" --path explicit
        done
      done
    done
  done
done
# Whole forward passes of the embedded qwen2-mini (6 heads / 2 KV, ctx 2048, batch 8 windows) at
# csa-eval's batching: dense (SDPA), top-k at 10% of ctx through the kernel and explicitly.
[ -n "${SKIP_FORWARD:-}" ] && { wc -l "$O"; exit 0; }
for dt in ${DTYPES:-float32 bfloat16}; do
  common=(--forward --model models/qwen2-mini/model.pt --ctx 2048 --batch 8 --dtype "$dt")
  point forward-dense "${common[@]}" --mode dense
  point forward-kernel "${common[@]}" --mode top_k --budget 205
  point forward-explicit "${common[@]}" --mode top_k --budget 205 --path explicit
done
wc -l "$O"
