#!/usr/bin/env bash
# The main job on the embedded default model (models/qwen2-mini/model.pt), from a fresh machine:
# set up (packages + build), then calibrate -> sweep -> evaluate on WikiText-2 from ../shared.
#   bash scripts/run_default.sh                 # writes out/default/{policy,swept,sweep,eval}.json
#   EVAL_TOKENS=65536 bash scripts/run_default.sh   # evaluate on the first N test tokens only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SHARED=${CSA_SHARED:-../shared}
MODEL=${CSA_MODEL:-models/qwen2-mini/model.pt}
OUT=${CSA_OUT:-out/default}
B=build/apps
mkdir -p "$OUT"
start=$(date +%s)
$B/csa-calibrate "$MODEL" "$SHARED/corpora/wikitext2-valid.tokens" -o "$OUT/policy.json"
t1=$(date +%s)
$B/csa-sweep "$MODEL" "$OUT/policy.json" "$SHARED/corpora/wikitext2-valid.tokens" \
  -o "$OUT/policy.swept.json" --results "$OUT/sweep.json"
t2=$(date +%s)
UNI=$(python3 -c "import json,sys; print((json.load(open(sys.argv[1])).get('uniform_sweep') or {}).get('best_cap') or '')" "$OUT/sweep.json")
$B/csa-eval "$MODEL" "$SHARED/corpora/wikitext2-test.raw" --policy "$OUT/policy.swept.json" \
  ${UNI:+--baseline uniform:$UNI} ${EVAL_TOKENS:+--max-tokens $EVAL_TOKENS} -o "$OUT/eval.json" || [ $? -eq 7 ]
t3=$(date +%s)
echo "main job: calibrate $((t1-start)) s, sweep $((t2-t1)) s, eval $((t3-t2)) s; results in $OUT/" >&2
python3 - "$OUT/eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["dense"]
print(f"dense ppl {d['ppl']:.3f}")
for x in r["runs"]:
    c = x["comparison"]
    print(f"{x['label']}: ppl {x['ppl']:.3f} ({100*c['delta_rel']:+.2f}%), reads {100*x['reads']['query_side_fraction']:.1f}% "
          f"(KV {100*x['reads']['kv_side_fraction']:.1f}%), worst bucket {100*c['max_bucket_worsening_rel']:+.2f}%, "
          f"matches dense: {c['matches_dense']}")
PY
