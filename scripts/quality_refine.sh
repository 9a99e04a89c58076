#!/usr/bin/env bash
# The sweep with learnt position-band weights (docs/metrics.md "Sweep"), on one model, on the CPU:
#   1. calibrate on 10k tokens of wikitext2-valid (the default rule, greedy:rel_err, banded);
#   2. sweep on the next SWEEP_TOKENS tokens (--tokens; default 32,768) with the unbanded variant
#      as a candidate, uniform top-k on the same slice, --refine-passes (default 6) adapting the
#      band weights;
#   3. evaluate the swept policy and uniform top-k at the k that matched on the whole of
#      wikitext2-test.raw (--baseline for each extra k in EXTRA_UNIFORM, e.g. "42").
#   bash scripts/quality_refine.sh ../shared/models/pythia-mini pythia-mini 2048 [OUT_DIR]
#   SWEEP_TOKENS=65536 bash scripts/quality_refine.sh ../shared/models/pythia-mini pythia-mini 2048 results/quality/refine65k
#   DEVICE=cuda CSA_BIN=build-gpu/apps bash scripts/quality_refine.sh models/qwen2-mini/model.pt qwen2-mini 2048
#   SWEEP_ARGS="--confidence 0.95" ...: more csa-sweep options (EVAL_ARGS: more csa-eval options)
# Writes OUT_DIR/LABEL.{policy,swept,sweep,eval}.json (default results/quality/refine; the
# committed records leave out LABEL.policy.json, whose curves the swept policy carries);
# scripts/quality_refine_report.py tabulates them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quality_common.sh results/quality/refine "$@"
"$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "${DEV[@]}" -q -o "$P.policy.json"
"$B/csa-sweep" "$MODEL" "$P.policy.json" "$C/wikitext2-valid.tokens" "${DEV[@]}" \
  --tokens "${SWEEP_TOKENS:-32768}" --candidate greedy:rel_err+unbanded ${SWEEP_ARGS:-} -q -o "$P.swept.json" \
  --results "$P.sweep.json"
UNI=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['uniform_sweep']['best_cap'] or '')" "$P.sweep.json")
BASE=()
for k in $UNI ${EXTRA_UNIFORM:-}; do BASE+=(--baseline "uniform:$k"); done
"$B/csa-eval" "$MODEL" "$C/wikitext2-test.raw" "${DEV[@]}" --policy "$P.swept.json" "${BASE[@]}" \
  ${EVAL_ARGS:-} -q -o "$P.eval.json"
# The swept policies are stored gzipped (each carries its need curves: 0.5-0.9 MB of JSON).
gzip -9nf "$P.swept.json"
