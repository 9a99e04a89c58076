#!/usr/bin/env bash
# Issue 11's evidence for one model: every allocation rule, from one calibration, swept on the
# same held-out slice and evaluated on the same texts, so the default rule is picked by
# measurement (scripts/quality_report.py reads what this writes).
#
#   bash scripts/quality_rules.sh MODEL LABEL CTX [OUT_DIR]
#   DEVICE=cuda bash scripts/quality_rules.sh ../shared/models/pythia-mini pythia-mini 2048
#
# 1. calibrate: 10k tokens of wikitext2-valid (statistics + need curves), and prose + code:
#    5k tokens of wikitext2-valid + 5k of the first half of code-heldout.txt;
# 2. sweep each rule's scalar on the next 32,768 tokens of wikitext2-valid (uniform top-k swept
#    once, on the same slice); the prose + code policy with the default rule too;
# 3. evaluate every swept policy (plus uniform at its matching k, window + sinks, top-p) in one
#    csa-eval per text: wikitext2-test.raw, the second half of code-heldout.txt, docs-heldout.txt.
#    EVAL_TOKENS=N limits each text to N tokens (exploration); unset: whole texts.
# CAL_TOKENS and SWEEP_TOKENS change 10000 and 32768 (quick checks only).
# Writes OUT_DIR/LABEL.{policy,mixed.policy}.json, LABEL.<rule>.{swept,sweep}.json and
# LABEL.eval.<text>.json (default OUT_DIR results/quality/rules).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/quality_common.sh results/quality/rules "$@"

log calibrate
CAL=(--tokens "${CAL_TOKENS:-10000}")
"$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "${DEV[@]}" "${CAL[@]}" -q \
  -o "$P.policy.json" || exit 1
"$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "$C/code-heldout.txt" --share 0.5,0.5 \
  "${DEV[@]}" "${CAL[@]}" -q -o "$P.mixed.policy.json" || exit 1
DEV+=(--tokens "${SWEEP_TOKENS:-32768}")

GQA=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['model']; print(int(m['n_head_kv'] < m['n_head']))" "$P.policy.json")
RULES=(
  "greedy.res_rel|--rule greedy --need-metric res_rel"
  "greedy.rel_err|--rule greedy --need-metric rel_err"
  "greedy.res_err|--rule greedy --need-metric res_err"
  "greedy.rel_err_p95|--rule greedy --need-metric rel_err_p95"
  "greedy.mass_out|--rule greedy --need-metric mass_out"
  "equal_error.res_rel|--rule equal_error --need-metric res_rel"
  "equal_error.rel_err|--rule equal_error --need-metric rel_err"
  "greedy.res_rel.unbanded|--rule greedy --need-metric res_rel --unbanded"
  "greedy.rel_err.unbanded|--rule greedy --need-metric rel_err --unbanded"
  "power.0.5|--rule power --alpha 0.5"
  "proportional|--rule proportional"
)
[ "$GQA" = 1 ] && RULES+=("greedy.res_rel.kv|--rule greedy --need-metric res_rel --kv-aware"
                          "greedy.rel_err.kv|--rule greedy --need-metric rel_err --kv-aware")
first=1
SWEPT=()
for r in "${RULES[@]}"; do
  tag=${r%%|*}; args=${r#*|}
  log "sweep $tag"
  uni=(--no-uniform); [ $first = 1 ] && uni=()
  "$B/csa-sweep" "$MODEL" "$P.policy.json" "$C/wikitext2-valid.tokens" "${DEV[@]}" $args "${uni[@]}" \
    -q -o "$P.$tag.swept.json" --results "$P.$tag.sweep.json"
  rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
  [ $first = 1 ] && cp "$P.$tag.sweep.json" "$P.uniform.sweep.json"
  [ -f "$P.$tag.swept.json" ] && SWEPT+=(--policy "$P.$tag.swept.json")
  first=0
done
log "sweep mixed (prose + code calibration, default rule)"
"$B/csa-sweep" "$MODEL" "$P.mixed.policy.json" "$C/wikitext2-valid.tokens" "${DEV[@]}" --no-uniform \
  -q -o "$P.mixed.swept.json" --results "$P.mixed.sweep.json"
rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
[ -f "$P.mixed.swept.json" ] && SWEPT+=(--policy "$P.mixed.swept.json")

UNI=$(python3 -c "import json,sys; u=json.load(open(sys.argv[1])).get('uniform_sweep') or {}; print(u.get('best_cap') or '')" "$P.uniform.sweep.json")
BASE=(--baseline window:256,sinks:4 --baseline topp:0.95)
[ -n "$UNI" ] && BASE+=(--baseline "uniform:$UNI")
LIMIT=(); [ -n "${EVAL_TOKENS:-}" ] && LIMIT=(--max-tokens "$EVAL_TOKENS")
CODE_TOKENS=$("$B/csa-tokenize" "$MODEL" "$C/code-heldout.txt" --json -q | python3 -c "import json,sys; print(json.load(sys.stdin)['count'])")
for t in "wikitext2-test|$C/wikitext2-test.raw|0" "code-heldout-2|$C/code-heldout.txt|$((CODE_TOKENS / 2))" \
         "docs-heldout|$C/docs-heldout.txt|0"; do
  IFS='|' read -r tag file offset <<< "$t"
  log "eval $tag"
  "$B/csa-eval" "$MODEL" "$file" --device "${DEVICE:-cpu}" --ctx "$CTX" --offset "$offset" "${LIMIT[@]}" "${SWEPT[@]}" "${BASE[@]}" \
    -q -o "$P.eval.$tag.json" || [ $? -eq 7 ] || exit 1
done
# The swept policies are stored gzipped (each carries its need curves: 0.5-0.9 MB of JSON).
gzip -9nf "$P".*swept.json
log done
