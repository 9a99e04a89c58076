#!/usr/bin/env bash
# On the GPU machine (after scripts/gpu/build.sh): sparse decoding (issue 14).
#   1. one decode step's attention on Llama-3.2-1B's head layout (configs/llama-3.2-1b.json:
#      32 query / 8 KV heads, head_dim 64), random q/k/v, bf16, a KV cache of every CTXS length,
#      batch 1 and 8: dense SDPA, the paged kernels over every page, paged top-k at 5% and 10%
#      (page 16), exact token top-k at 5% and 10% — one csa-bench --decode run per point;
#   2. whole-model decode steps of a random-weight model of that config (16 layers) at MODEL_CTXS:
#      dense paged vs paged top-k, tokens/s (csa-bench --decode-model).
# Writes $OUT/decode.jsonl (one JSON per line; a failed point keeps its error); scripts/gpu/
# decode_report.py makes results/gpu/decode.{json,png} from it here. DECODE_ARGS: words added to
# every csa-bench call (e.g. "--kept-pages-per-warp 2").
#   CTXS="4096 16384 65536 131072" BATCHES="1 8" MODEL_CTXS="16384 65536" bash scripts/gpu/bench_decode.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/decode.jsonl
: > "$O"
CFG=${CFG:-configs/llama-3.2-1b.json}
point() {  # label, args... (csa_bench_point, env.sh; DECODE_ARGS: words added to every call)
  local label=$1
  shift
  # shellcheck disable=SC2086
  csa_bench_point "$O" 300 "$label" --device cuda --dtype bfloat16 --config "$CFG" -q "$@" \
    ${DECODE_ARGS:-}
}
for b in ${BATCHES:-1 8}; do
  for ctx in ${CTXS:-4096 16384 65536 131072}; do
    point attention --decode --batch "$b" --ctx "$ctx" --page "${PAGE:-16}" --repeats 7
  done
done
for ctx in ${MODEL_CTXS:-16384 65536}; do
  point model --decode-model --batch 1 --ctx "$ctx" --page "${PAGE:-16}" --repeats 5
done
wc -l "$O"
