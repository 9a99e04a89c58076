#!/usr/bin/env bash
# The quality table of issue 4 for one model: calibrate on wikitext2-valid (10k tokens), sweep k_max
# on a different slice of it (the next 32768 tokens), evaluate on wikitext2-test.raw (stride
# ctx/2) dense vs the swept policy vs baselines (uniform top-k at the smallest k that matched on
# the sweep slice, StreamingLLM window + sinks, top-p). Both diffuseness metrics are run.
#
#   bash scripts/quality.sh MODEL_DIR_OR_PT LABEL CTX [OUT_DIR] [EVAL_CORPUS]
#   DEVICE=cuda bash scripts/quality.sh ../shared/models/qwen2-mini qwen2-mini 2048
# Writes OUT_DIR/LABEL.{metric}.{policy,swept,sweep,eval}.json (default OUT_DIR results/quality);
# scripts/quality_report.py turns them into results/quality/summary.json and the plots.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; LABEL=$2; CTX=$3
OUT=${4:-results/quality}
SHARED=${CSA_SHARED:-../shared}
EVAL=${5:-$SHARED/corpora/wikitext2-test.raw}
VALID=$SHARED/corpora/wikitext2-valid.tokens
B=${CSA_BIN:-build/apps}
DEV=(--device "${DEVICE:-cpu}")
mkdir -p "$OUT"
for METRIC in ${METRICS:-effective_keys mass_keys}; do
  P=$OUT/$LABEL.$METRIC
  if [ -z "${EVAL_ONLY:-}" ]; then
    "$B/csa-calibrate" "$MODEL" "$VALID" "${DEV[@]}" --ctx "$CTX" --metric "$METRIC" -o "$P.policy.json"
    rc=0
    "$B/csa-sweep" "$MODEL" "$P.policy.json" "$VALID" "${DEV[@]}" --ctx "$CTX" \
      -o "$P.swept.json" --results "$P.sweep.json" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
  fi
  POLICY=$P.swept.json
  [ -f "$POLICY" ] || POLICY=$P.policy.json   # no cap matched: evaluate the calibrated cap
  UNI=$(python3 -c "import json,sys; u=json.load(open(sys.argv[1])).get('uniform_sweep') or {}; print(u.get('best_cap') or '')" "$P.sweep.json")
  BASE=(--baseline window:256,sinks:4 --baseline topp:0.95)
  [ -n "$UNI" ] && BASE+=(--baseline "uniform:$UNI")
  TAG=${EVAL_TAG:-wikitext2-test}
  "$B/csa-eval" "$MODEL" "$EVAL" "${DEV[@]}" --ctx "$CTX" --policy "$POLICY" "${BASE[@]}" \
    ${EVAL_ARGS:-} -o "$P.eval.$TAG.json" || [ $? -eq 7 ]
done
