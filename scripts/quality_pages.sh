#!/usr/bin/env bash
# Page-granular selection's quality and reads (issue 14, docs/decoding.md): the calibrated policy
# of results/quality (LABEL.swept.json) swept again to dense-matching quality on the same held-out
# slice twice in one run, token-granular and page-granular (--select page:P for each of PAGES),
# then both evaluated on WikiText-2 test, and greedy generation with the paged policy against
# dense. The reads ratio page / token at matching quality is the decoder's price for fetching
# whole pages.
#   bash scripts/quality_pages.sh MODEL LABEL CTX [OUT]
#   env: PAGES="16 32", DEVICE=cuda, EVAL_TOKENS, SWEEP_TOKENS, POLICY (default LABEL.swept.json)
#   e.g. DEVICE=cuda bash scripts/quality_pages.sh models/qwen2-mini/model.pt qwen2-mini 2048
set -uo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; LABEL=$2; CTX=$3
OUT=${4:-results/decode-quality}
SHARED=${CSA_SHARED:-../shared}
C=$SHARED/corpora
B=${CSA_BIN:-build/apps}
DEV=(--device "${DEVICE:-cpu}" --ctx "$CTX")
POLICY=${POLICY:-results/quality/$LABEL.swept.json}
P=$OUT/$LABEL
mkdir -p "$OUT"
log() { echo "== $(date -u +%T) $LABEL: $*" >&2; }
sweep() {  # SELECT TAG
  log "sweep $1"
  "$B/csa-sweep" "$MODEL" "$POLICY" "$C/wikitext2-valid.tokens" --select "$1" --no-uniform \
    "${DEV[@]}" ${SWEEP_TOKENS:+--tokens "$SWEEP_TOKENS"} -q -o "$P.$2.swept.json" \
    --results "$P.$2.sweep.json"
  local rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || exit $rc
}
sweep token token
POLICIES=(--policy "$P.token.swept.json")
for page in ${PAGES:-16}; do
  sweep "page:$page" "page$page"
  [ -f "$P.page$page.swept.json" ] && POLICIES+=(--policy "$P.page$page.swept.json")
done
LIMIT=(); [ -n "${EVAL_TOKENS:-}" ] && LIMIT=(--max-tokens "$EVAL_TOKENS")
log "eval wikitext2-test"
"$B/csa-eval" "$MODEL" "$C/wikitext2-test.raw" "${DEV[@]}" "${LIMIT[@]}" "${POLICIES[@]}" -q \
  -o "$P.eval.wikitext2-test.json" || [ $? -eq 7 ] || exit 1
for page in ${PAGES:-16}; do
  [ -f "$P.page$page.swept.json" ] || continue
  log "generate page:$page"
  "$B/csa-generate" "$MODEL" --device "${DEVICE:-cpu}" --policy "$P.page$page.swept.json" \
    --prompt "The history of the city begins in the early" --max-new-tokens 128 --json -q \
    > "$P.page$page.generate.json" || exit 1
done
python3 - "$P" "${PAGES:-16}" <<'PY'
import json, os, sys
p, pages = sys.argv[1], sys.argv[2].split()
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
for page in pages:
    b = best(f"page{page}")
    s[f"page:{page}"] = b
    if b and s["token"]:
        s[f"page:{page}_reads_over_token"] = b["reads_fraction"] / s["token"]["reads_fraction"]
    g = f"{p}.page{page}.generate.json"
    if os.path.exists(g):
        gj = json.load(open(g))
        s[f"page:{page}_generate"] = {"new_tokens": len(gj["dense"]["ids"]),
                                      "identical_to_dense": gj["policy"]["tokens_identical_to_dense"]}
json.dump(s, open(f"{p}.summary.json", "w"), indent=1)
print(json.dumps(s, indent=1))
PY
log done
