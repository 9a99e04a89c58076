#!/usr/bin/env bash
# On the GPU machine (carry .dev/debs and .dev/shared/corpora): the tiled kernel's float32 operand
# split (fused_cuda_tiled.cu: split_tf32, integer adds on the bits) against the cvt.rna.tf32.f32
# split it replaced (results/gpu/tf32_split/cvt_split.patch), in one run: the tree as it is, then
# with the patch applied, then as it is again (each an incremental build of build-gpu), and for
# each: one attention call of Llama-3.2-1B's head layout in float32 (top-10% and every key kept,
# ctx 4096 batch 4; top-10% ctx 16384 batch 1) and bf16 (top-10%, unchanged code: a control),
# csa-bench medians of 5, then csa-eval of the embedded qwen2-mini with the swept policy of
# results/quality on the first 65,536 WikiText-2 test tokens, float32, EVALS runs (default 3).
# Writes $OUT/tf32_split/{bench.jsonl, eval.LABEL.N.json}; scripts/gpu/tf32_split_report.py
# summarises. The build tree is left as the tree is.
#   run: bash scripts/gpu/tf32_split_ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/tf32_split
mkdir -p "$O"
PATCH=results/gpu/tf32_split/cvt_split.patch
POLICY=$(mktemp)
gunzip -c results/quality/qwen2-mini.swept.json.gz > "$POLICY"
measure() {  # LABEL
  local label=$1 spec
  for spec in "float32 4 4096 410" "float32 4 4096 4096" "float32 1 16384 1638" \
    "bfloat16 4 4096 410"; do
    set -- $spec
    CSA_TILED_SPLIT=$label csa_bench_point "$O/bench.jsonl" 120 "$label" --device cuda --repeats 5 \
      -q --config configs/llama-3.2-1b.json --dtype "$1" --batch "$2" --ctx "$3" --mode top_k \
      --budget "$4"
  done
  for i in $(seq "${EVALS:-3}"); do
    timeout 120 build-gpu/apps/csa-eval models/qwen2-mini/model.pt \
      .dev/shared/corpora/wikitext2-test.raw --device cuda --ctx 2048 --max-tokens 65536 \
      --dtype float32 --policy "$POLICY" -q -o "$O/eval.$label.$i.json" || echo "eval $label $i failed"
  done
}
build() { bash scripts/gpu/build.sh > "$O/build.$1.log" 2>&1 || { tail -20 "$O/build.$1.log"; exit 1; }; }
build integer
measure integer
patch -p1 < "$PATCH" || exit 1
build cvt
measure cvt
patch -p1 -R < "$PATCH" || exit 1
build integer-again
measure integer-again
rm -f "$POLICY"
wc -l "$O/bench.jsonl"
