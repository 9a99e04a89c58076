#!/usr/bin/env bash
# What page-granular selection costs at fixed budgets (docs/decoding.md): each mini's swept policy
# of results/quality applied token by token, page by page with Quest's bound (page:16) and with the
# oracle ranking (page:16:oracle), on the first TOKENS (8192) tokens of WikiText-2 test, on the CPU.
# Writes results/decode-quality/scorers.json (SELECTS and JSON choose other selections and file).
#   bash scripts/page_scorers.sh
#   SELECTS="page:16:spread=0.5 page:16:spread=0.25 page:16:spread=0" \
#     JSON=results/decode-quality/scorers-spread.json bash scripts/page_scorers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${CSA_SHARED:-../shared}
B=${CSA_BIN:-build/apps}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for m in qwen2-mini llama-mini gpt2-mini pythia-mini; do
  path=$SHARED/models/$m
  [ "$m" = qwen2-mini ] && path=models/qwen2-mini/model.pt
  for sel in ${SELECTS:-token page:16 page:16:oracle}; do  # (csa reads the .json.gz as it is)
    "$B/csa-eval" "$path" "$SHARED/corpora/wikitext2-test.raw" \
      --policy "results/quality/$m.swept.json.gz" \
      --select "$sel" --max-tokens "${TOKENS:-8192}" -q -o "$W/$m.${sel//:/-}.json"
  done
done
JSON=${JSON:-results/decode-quality/scorers.json} python3 - "$W" <<'PY'
import glob, json, os, sys
w = sys.argv[1]
script = "bash scripts/page_scorers.sh"
if os.environ.get("SELECTS"):
    script = f'SELECTS="{os.environ["SELECTS"]}" {script}'
out = {"script": script, "tokens": int(os.environ.get("TOKENS", 8192)), "runs": []}
for f in sorted(glob.glob(f"{w}/*.json")):
    j = json.load(open(f))
    r = j["runs"][0]
    out["runs"].append({"model": os.path.basename(f).split(".")[0],
                        "select": r["sparsity"].get("select", "token"),
                        "reads": r["reads"]["query_side_fraction"],
                        "kv_reads": r["reads"]["kv_side_fraction"],
                        "delta_rel": r["comparison"]["delta_rel"],
                        "worst_bucket": r["comparison"]["max_bucket_worsening_rel"],
                        "command": j["run"]["command"].replace(w, "$TMP")})
json.dump(out, open(os.environ["JSON"], "w"), indent=1)
for r in out["runs"]:
    print(f"{r['model']:12s} {r['select']:16s} reads {100*r['reads']:.2f}% kv {100*r['kv_reads']:.2f}% "
          f"delta {100*r['delta_rel']:+.2f}% worst {100*r['worst_bucket']:+.2f}%")
PY
