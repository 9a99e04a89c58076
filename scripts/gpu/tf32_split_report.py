#!/usr/bin/env python3
"""results/gpu/tf32_split/{bench.jsonl, eval.LABEL.N.json} (scripts/gpu/tf32_split_ab.sh on the
GPU machine, copied here) -> results/gpu/tf32_split/summary.json and split.png: per attention-call
point the csa-bench median of each build (integer: the tree's split; cvt: with cvt_split.patch;
integer-again: the tree's again), cvt's time over the mean of the two integer runs, and csa-eval's
float32 dense and policy pass times (medians over the runs), the policy's speed over dense and its
perplexity per build.
usage: /usr/bin/python3 scripts/gpu/tf32_split_report.py [results/gpu/tf32_split]"""
import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from eval_passes import medians, passes  # noqa: E402

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/tf32_split"
LABELS = ["integer", "cvt", "integer-again"]
rows = [json.loads(line) for line in open(f"{D}/bench.jsonl")]
points = {}
for r in rows:
    if "error" in r:
        continue
    key = f"{r['dtype']} b{r['batch']} ctx{r['ctx']} k{r['budgets'][0]}"
    points.setdefault(key, {})[r["label"]] = {"ms": r["median_seconds"] * 1e3,
                                              "command": r["command"]}
calls = []
for key, by in points.items():
    ints = [by[x]["ms"] for x in ("integer", "integer-again") if x in by]
    entry = {"point": key, **{f"{x}_ms": by[x]["ms"] for x in LABELS if x in by}}
    if ints and "cvt" in by:
        entry["cvt_over_integer"] = by["cvt"]["ms"] / statistics.mean(ints)
    entry["command"] = by[LABELS[0]]["command"] if LABELS[0] in by else None
    calls.append(entry)
evals = {}
for label in LABELS:
    runs = [{**passes(json.load(open(f))), "file": os.path.basename(f)}
            for f in sorted(glob.glob(f"{D}/eval.{label}.*.json"))]
    if runs:
        evals[label] = {"runs": runs, **medians(runs),
                        "policy_ppl": sorted({r["policy_ppl"] for r in runs})}
out = {
    "kind": "csa-gpu-tf32-split-ab",
    "script": "bash scripts/gpu/tf32_split_ab.sh (EVALS=2); /usr/bin/python3 "
              "scripts/gpu/tf32_split_report.py results/gpu/tf32_split",
    "eval_command": "csa-eval models/qwen2-mini/model.pt wikitext2-test.raw --device cuda --ctx 2048 "
                    "--max-tokens 65536 --dtype float32 --policy <results/quality/"
                    "qwen2-mini.swept.json.gz, gunzipped> -q -o eval.LABEL.N.json",
    "attention_calls": calls,
    "csa_eval_qwen2_mini_float32": evals,
}
json.dump(out, open(f"{D}/summary.json", "w"), indent=1)
fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
xs = range(len(calls))
w = 0.27
for i, label in enumerate(LABELS):
    ax[0].bar([x + (i - 1) * w for x in xs], [c.get(f"{label}_ms", 0) for c in calls], w,
              label=label)
ax[0].set_xticks(list(xs))
ax[0].set_xticklabels([c["point"] for c in calls], rotation=20, fontsize=7)
ax[0].set_ylabel("ms (median of 5)")
ax[0].set_title("one attention call, Llama-3.2-1B heads")
ax[0].legend()
labs = [x for x in LABELS if x in evals]
ax[1].bar(labs, [evals[x]["policy_ms_median"] for x in labs], label="policy pass")
ax[1].bar(labs, [evals[x]["dense_ms_median"] for x in labs], 0.4, label="dense pass")
ax[1].set_ylabel("ms per 65,536 tokens")
ax[1].set_title("csa-eval qwen2-mini float32, swept policy")
ax[1].legend()
fig.tight_layout()
fig.savefig(f"{D}/split.png", dpi=110)
print(json.dumps({c["point"]: round(c.get("cvt_over_integer", 0), 3) for c in calls}))
print({k: (round(v["policy_ms_median"], 1), round(v["policy_over_dense_speed"], 3))
       for k, v in evals.items()})
