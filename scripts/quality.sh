#!/usr/bin/env bash
# The quality table for one model (README "Quality"; issue 11's protocol):
#   1. calibrate on 10k tokens of wikitext2-valid (statistics + need curves, default rule);
#      and on prose + code: 5k tokens of wikitext2-valid + 5k of code-heldout.txt (its first half);
#   2. sweep on the next 32,768 tokens of wikitext2-valid, with the candidate rules of SWEEP_ARGS
#      (default: greedy:rel_err_p95, greedy:res_rel and unbanded greedy:rel_err beside the
#      policy's own default rule, greedy:rel_err) and uniform top-k on the same
#      slice (written instead where it reads fewer keys); under GQA also the KV-aware variant;
#      the prose + code policy sweeps on wikitext2-valid and code-heldout.txt together (each slice
#      after its calibration slice; both must match);
#   3. evaluate in one csa-eval per text, over the whole text: wikitext2-test.raw, the second half
#      of code-heldout.txt, docs-heldout.txt — every swept policy plus uniform top-k at the k that
#      matched on the sweep slice, StreamingLLM window 256 + 4 sinks and top-p 0.95.
#
#   bash scripts/quality.sh MODEL LABEL CTX [OUT_DIR]
#   DEVICE=cuda bash scripts/quality.sh ../shared/models/pythia-mini pythia-mini 2048
# Writes OUT_DIR/LABEL.{policy,sweep}.json, LABEL.swept.json.gz, LABEL.kv.*, LABEL.mixed.* and
# LABEL.eval.<text>.json (default OUT_DIR results/quality); scripts/quality_report.py summarises.
# The swept policies are written gzipped by csa-sweep itself (an -o path ending in .gz: each
# carries its need curves, 0.5-0.9 MB of JSON), and csa reads them as they are.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/quality_common.sh results/quality "$@"
SWEEP=(${SWEEP_ARGS:---candidate greedy:rel_err_p95 --candidate greedy:res_rel --candidate greedy:rel_err+unbanded})
sweep() {  # sweep POLICY OUT_PREFIX CORPORA... [-- ARGS...]
  "$B/csa-sweep" "$MODEL" "$@" "${DEV[@]}" -q
  local rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
}

log calibrate
"$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "${DEV[@]}" -q -o "$P.policy.json" || exit 1
"$B/csa-calibrate" "$MODEL" "$C/wikitext2-valid.tokens" "$C/code-heldout.txt" --share 0.5,0.5 \
  "${DEV[@]}" -q -o "$P.mixed.policy.json" || exit 1
GQA=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['model']; print(int(m['n_head_kv'] < m['n_head']))" "$P.policy.json")

log sweep
sweep "$P.policy.json" "$C/wikitext2-valid.tokens" "${SWEEP[@]}" -o "$P.swept.json.gz" --results "$P.sweep.json"
POLICIES=(--policy "$P.swept.json.gz")
if [ "$GQA" = 1 ]; then
  log "sweep KV-aware"
  sweep "$P.policy.json" "$C/wikitext2-valid.tokens" --rule greedy --kv-aware \
    --candidate greedy:rel_err_p95+kv --candidate greedy:res_rel+kv --no-uniform -o "$P.kv.swept.json.gz" --results "$P.kv.sweep.json"
  [ -f "$P.kv.swept.json.gz" ] && POLICIES+=(--policy "$P.kv.swept.json.gz")
fi
log "sweep prose + code"
sweep "$P.mixed.policy.json" "$C/wikitext2-valid.tokens" "$C/code-heldout.txt" "${SWEEP[@]}" \
  --no-uniform -o "$P.mixed.swept.json.gz" --results "$P.mixed.sweep.json"
[ -f "$P.mixed.swept.json.gz" ] && POLICIES+=(--policy "$P.mixed.swept.json.gz")

UNI=$(python3 -c "import json,sys; u=json.load(open(sys.argv[1])).get('uniform_sweep') or {}; print(u.get('best_cap') or '')" "$P.sweep.json")
BASE=(--baseline window:256,sinks:4 --baseline topp:0.95)
[ -n "$UNI" ] && BASE+=(--baseline "uniform:$UNI")
LIMIT=(); [ -n "${EVAL_TOKENS:-}" ] && LIMIT=(--max-tokens "$EVAL_TOKENS")
CODE_TOKENS=$("$B/csa-tokenize" "$MODEL" "$C/code-heldout.txt" --json -q | python3 -c "import json,sys; print(json.load(sys.stdin)['count'])")
for t in "wikitext2-test|$C/wikitext2-test.raw|0" "code-heldout-2|$C/code-heldout.txt|$((CODE_TOKENS / 2))" \
         "docs-heldout|$C/docs-heldout.txt|0"; do
  IFS='|' read -r tag file offset <<< "$t"
  log "eval $tag"
  "$B/csa-eval" "$MODEL" "$file" --device "${DEVICE:-cpu}" --ctx "$CTX" --offset "$offset" \
    "${LIMIT[@]}" "${POLICIES[@]}" "${BASE[@]}" -q -o "$P.eval.$tag.json" || [ $? -eq 7 ] || exit 1
done
log done
