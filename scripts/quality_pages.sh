#!/usr/bin/env bash
# Page-granular selection's quality and reads (issue 14, docs/decoding.md): the calibrated policy
# of results/quality (LABEL.swept.json.gz) swept again to dense-matching quality on the same held-out
# slice twice in one run, token-granular and page-granular (--select page:P for each of PAGES),
# then all evaluated on WikiText-2 test, and greedy generation with each paged policy against
# dense. The reads ratio page / token at matching quality is the decoder's price for fetching
# whole pages; page:P:oracle (pages scored by their best key, reading every key) separates the
# price of whole pages from the price of the page summaries' ranking.
#   bash scripts/quality_pages.sh MODEL LABEL CTX [OUT]
#   env: SELECTS="page:16 page:16:oracle" (default), DEVICE=cuda, EVAL_TOKENS, SWEEP_TOKENS,
#        POLICY (default results/quality/LABEL.swept.json.gz)
#   e.g. DEVICE=cuda bash scripts/quality_pages.sh models/qwen2-mini/model.pt qwen2-mini 2048
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/quality_common.sh results/decode-quality "$@"
POLICY=${POLICY:-results/quality/$LABEL.swept.json.gz}  # (csa reads .json.gz as it is)
sweep() {  # SELECT TAG
  log "sweep $1"
  "$B/csa-sweep" "$MODEL" "$POLICY" "$C/wikitext2-valid.tokens" --select "$1" --no-uniform \
    "${DEV[@]}" ${SWEEP_TOKENS:+--tokens "$SWEEP_TOKENS"} -q -o "$P.$2.swept.json.gz" \
    --results "$P.$2.sweep.json"
  local rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
}
sweep token token
POLICIES=(--policy "$P.token.swept.json.gz")
SELECTS=${SELECTS:-page:16 page:16:oracle}
for sel in $SELECTS; do
  tag=${sel//:/-}
  sweep "$sel" "$tag"
  [ -f "$P.$tag.swept.json.gz" ] && POLICIES+=(--policy "$P.$tag.swept.json.gz")
done
LIMIT=(); [ -n "${EVAL_TOKENS:-}" ] && LIMIT=(--max-tokens "$EVAL_TOKENS")
log "eval wikitext2-test"
"$B/csa-eval" "$MODEL" "$C/wikitext2-test.raw" "${DEV[@]}" "${LIMIT[@]}" "${POLICIES[@]}" -q \
  -o "$P.eval.wikitext2-test.json" || [ $? -eq 7 ] || exit 1
for sel in $SELECTS; do
  tag=${sel//:/-}
  [ -f "$P.$tag.swept.json.gz" ] || continue
  log "generate $sel"
  "$B/csa-generate" "$MODEL" --device "${DEVICE:-cpu}" --policy "$P.$tag.swept.json.gz" \
    --prompt "The history of the city begins in the early" --max-new-tokens 128 --json -q \
    > "$P.$tag.generate.json" || exit 1
done
python3 - "$P" "$SELECTS" <<'PY'
import json, os, sys
p, selects = sys.argv[1], sys.argv[2].split()
def best(tag):
    f = f"{p}.{tag}.sweep.json"
    if not os.path.exists(f): return None
    return (json.load(open(f)).get("policy_sweep") or {}).get("best")
s = {"token": best("token")}
ev = json.load(open(f"{p}.eval.wikitext2-test.json"))
s["test"] = [{"label": r["label"], "reads": r["reads"]["query_side_fraction"],
              "kv_reads": r["reads"].get("kv_side_fraction"),
              "delta_rel": r["comparison"]["delta_rel"],
              "worst_bucket": r["comparison"].get("max_bucket_worsening_rel"),
              "matches_dense": r["comparison"]["matches_dense"]} for r in ev["runs"]]
for sel in selects:
    tag = sel.replace(":", "-")
    b = best(tag)
    s[sel] = b
    if b and s["token"]:
        s[f"{sel}_reads_over_token"] = b["reads_fraction"] / s["token"]["reads_fraction"]
        s[f"{sel}_kv_reads_over_token"] = b["kv_reads_fraction"] / s["token"]["kv_reads_fraction"]
    g = f"{p}.{tag}.generate.json"
    if os.path.exists(g):
        gj = json.load(open(g))
        s[f"{sel}_generate"] = {"new_tokens": len(gj["dense"]["ids"]),
                                "identical_to_dense": gj["policy"]["tokens_identical_to_dense"]}
json.dump(s, open(f"{p}.summary.json", "w"), indent=1)
print(json.dumps(s, indent=1))
PY
log done
