#!/usr/bin/env bash
# On the GPU machine (carry .dev/debs and .dev/shared/corpora): a change to the tiled kernel
# measured against the code it replaced, in one run: the tree as it is, then with PATCH applied
# (the old code), then as it is again (each an incremental build of build-gpu), and for each:
# one attention call, csa-bench medians of 5 — Llama-3.2-1B's head layout in float32 (top-10% and
# every key kept at ctx 4096 batch 4, top-10% at ctx 16384 batch 1), Qwen2.5-1.5B's (head dim
# 128) in float32 top-10% at ctx 4096 batch 4, and both in bf16 top-10% (a control where the
# change touches float32 only) — then csa-eval of the embedded qwen2-mini with the swept policy
# of results/quality on the first 65,536 WikiText-2 test tokens, float32, EVALS runs (default 3).
# Writes $OUT/NAME/{bench.jsonl, eval.LABEL.N.json, build.LABEL.log};
# scripts/gpu/kernel_ab_report.py summarises. MODEL, POLICY (a policy JSON, gzipped or not) and
# CTX replace the csa-eval's model, policy and window (default: the embedded qwen2-mini, its swept
# policy, 2048); BENCH=0 leaves out the attention calls. MORE_EVALS="SET:MODEL:POLICY:CTX ..." adds
# csa-eval runs of other models / windows to each build (files eval-SET.LABEL.N.json; the report
# takes SET as PREFIX=eval-SET). EXTRA="LABEL=PATCH ..." measures more variants
# after PATCHED's, each the tree with its patch. The build tree is left as the tree is, except
# with AGAIN=0: no last build (the sources are restored, build-gpu keeps the last patch's code).
#   run: bash scripts/gpu/kernel_ab.sh NAME PATCH TREE_LABEL PATCHED_LABEL
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 4 ] || { sed -n 2,14p "$0"; exit 2; }
NAME=$1 PATCH=$2 TREE=$3 PATCHED=$4
source scripts/gpu/env.sh
O=${OUT:-/tmp/csa-out}/$NAME
mkdir -p "$O"
POLICY=${POLICY:-results/quality/qwen2-mini.swept.json.gz}  # (evals gunzips a .gz)
MODEL=${MODEL:-models/qwen2-mini/model.pt}
measure() {  # LABEL
  local label=$1 spec
  [ "${BENCH:-1}" = 0 ] || for spec in "llama-3.2-1b float32 4 4096 410" "llama-3.2-1b float32 4 4096 4096" \
    "llama-3.2-1b float32 1 16384 1638" "qwen2.5-1.5b float32 4 4096 410" \
    "llama-3.2-1b bfloat16 4 4096 410" "qwen2.5-1.5b bfloat16 4 4096 410"; do
    set -- $spec
    csa_bench_point "$O/bench.jsonl" 120 "$label" --device cuda --repeats 5 -q \
      --config "configs/$1.json" --dtype "$2" --batch "$3" --ctx "$4" --mode top_k --budget "$5"
  done
  evals eval "$MODEL" "$POLICY" "${CTX:-2048}"
  for es in ${MORE_EVALS:-}; do  # SET:MODEL:POLICY:CTX
    IFS=: read -r name model policy ctx <<< "$es"
    evals "eval-$name" "$model" "$policy" "$ctx"
  done
}
evals() {  # PREFIX MODEL POLICY CTX: EVALS csa-eval runs (float32, the first 65,536 test tokens)
  local i policy=$3
  case "$3" in *.gz) policy=$(mktemp) && gunzip -c "$3" > "$policy" ;; esac
  for i in $(seq "${EVALS:-3}"); do
    timeout 120 build-gpu/apps/csa-eval "$2" \
      .dev/shared/corpora/wikitext2-test.raw --device cuda --ctx "$4" --max-tokens 65536 \
      --dtype float32 --policy "$policy" -q -o "$O/$1.$label.$i.json" || echo "$1 $label $i failed"
  done
  [ "$policy" = "$3" ] || rm -f "$policy"
}
build() { bash scripts/gpu/build.sh > "$O/build.$1.log" 2>&1 || { tail -20 "$O/build.$1.log"; exit 1; }; }
build "$TREE"
measure "$TREE"
patch -p1 < "$PATCH" || exit 1
build "$PATCHED"
measure "$PATCHED"
patch -p1 -R < "$PATCH" || exit 1
for spec in ${EXTRA:-}; do  # LABEL=PATCH: more variants, each the tree with its patch
  patch -p1 < "${spec#*=}" || exit 1
  build "${spec%%=*}"
  measure "${spec%%=*}"
  patch -p1 -R < "${spec#*=}" || exit 1
done
if [ "${AGAIN:-1}" = 1 ]; then
  build "$TREE-again"
  measure "$TREE-again"
fi
wc -l "$O/bench.jsonl"
