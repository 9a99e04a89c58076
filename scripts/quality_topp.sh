#!/usr/bin/env bash
# Per-head calibrated top-p against per-head top-k (issue 11, item 3; docs/metrics.md "Top-p"),
# on one model, on the CPU unless DEVICE says otherwise:
#   1. calibrate on 10k tokens of wikitext2-valid (need curves, top-p curves included);
#   2. sweep on the next 32,768 tokens: the default rule (greedy:rel_err, banded), the candidate
#      greedy_p:rel_err (one top-p mass per query head), uniform top-k, all with the refine;
#   3. with EVAL=1, evaluate the swept policy and uniform top-k on the whole of wikitext2-test.raw;
#   4. with UNIFORM_P="0.9 0.95 ...", evaluate uniform top-p at each mass on the sweep slice
#      (LABEL.topp-uniform.eval.json). SWEEP=0 skips steps 1-2 (an earlier run's files stay).
#   bash scripts/quality_topp.sh ../shared/models/pythia-mini pythia-mini 2048 [OUT_DIR]
# Writes OUT_DIR/LABEL.{sweep,swept}.json (default results/quality/topp; the calibrated policy goes
# to $TMPDIR, the swept one carries its curves); scripts/quality_topp_report.py tabulates them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quality_common.sh results/quality/topp "$@"
CAL=$(mktemp -d)/$LABEL.policy.json
if [[ "${SWEEP:-1}" != 0 ]]; then
  "$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "${DEV[@]}" -q -o "$CAL"
  "$B/csa-sweep" "$MODEL" "$CAL" "$C/wikitext2-valid.tokens" "${DEV[@]}" \
    --candidate greedy_p:rel_err -q -o "$P.swept.json" --results "$P.sweep.json"
fi
if [[ -n "${UNIFORM_P:-}" ]]; then
  # The sweep slice: the 32,768 tokens after the 10k calibration tokens.
  BASE=()
  for p in $UNIFORM_P; do BASE+=(--baseline "topp:$p"); done
  "$B/csa-eval" "$MODEL" "$C/wikitext2-valid.tokens" "${DEV[@]}" --offset 10000 --max-tokens 32768 \
    "${BASE[@]}" -q -o "$P.topp-uniform.eval.json"
fi
if [[ "${EVAL:-0}" == 1 ]]; then
  UNI=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['uniform_sweep']['best_cap'] or '')" "$P.sweep.json")
  BASE=()
  for k in $UNI; do BASE+=(--baseline "uniform:$k"); done
  "$B/csa-eval" "$MODEL" "$C/wikitext2-test.raw" "${DEV[@]}" --policy "$P.swept.json" "${BASE[@]}" \
    -q -o "$P.eval.json"
fi
# The swept policies are stored gzipped (each carries its need curves: 0.5-0.9 MB of JSON).
gzip -9nf "$P.swept.json"
