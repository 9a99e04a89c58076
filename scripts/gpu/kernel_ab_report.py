#!/usr/bin/env python3
"""A kernel A/B run (scripts/gpu/kernel_ab.sh NAME PATCH TREE PATCHED on the GPU machine, its
$OUT/NAME copied to DIR here: bench.jsonl unless BENCH=0, eval.LABEL.N.json) -> DIR/summary.json
and DIR/PLOT:
per attention-call point the csa-bench median of each build (TREE, PATCHED, any EXTRA label,
TREE-again), each other build's time over the mean of the TREE runs, and csa-eval's float32
dense and policy pass times (medians over the runs), the policy's speed over dense and its
perplexity per build.
With PREFIX=eval-SET in the environment, the csa-eval runs of kernel_ab.sh's MORE_EVALS set SET
(DIR/summary-SET.json; the attention calls as in summary.json).
usage: /usr/bin/python3 scripts/gpu/kernel_ab_report.py DIR TREE PATCHED KIND PLOT SCRIPT [EXTRA...]"""
import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from eval_passes import medians, passes  # noqa: E402


def report(d, tree, patched, kind, plot, script, *extra):
    labels = [tree, patched, *extra, f"{tree}-again"]
    bench = f"{d}/bench.jsonl"  # absent where the run had BENCH=0
    rows = [json.loads(line) for line in open(bench)] if os.path.exists(bench) else []
    points = {}
    for r in rows:
        if "error" in r:
            continue
        heads = f"H{r['heads']}/{r['kv_heads']} d{r['head_dim']} " if "heads" in r else ""
        key = f"{heads}{r['dtype']} b{r['batch']} ctx{r['ctx']} k{r['budgets'][0]}"
        points.setdefault(key, {})[r["label"]] = {"ms": r["median_seconds"] * 1e3,
                                                  "command": r["command"]}
    calls = []
    for key, by in points.items():
        trees = [by[x]["ms"] for x in (tree, f"{tree}-again") if x in by]
        entry = {"point": key, **{f"{x}_ms": by[x]["ms"] for x in labels if x in by}}
        for other in (patched, *extra):
            if trees and other in by:
                entry[f"{other}_over_{tree}"] = by[other]["ms"] / statistics.mean(trees)
        entry["command"] = by[tree]["command"] if tree in by else None
        calls.append(entry)
    prefix = os.environ.get("PREFIX", "eval")
    evals = {}
    for label in labels:
        runs = [{**passes(json.load(open(f))), "file": os.path.basename(f)}
                for f in sorted(glob.glob(f"{d}/{prefix}.{label}.*.json"))]
        if runs:
            evals[label] = {"runs": runs, **medians(runs),
                            "policy_ppl": sorted({r["policy_ppl"] for r in runs})}
    first = sorted(glob.glob(f"{d}/{prefix}.*.json"))
    out = {
        "kind": kind,
        "script": script,
        # the policy is a temporary copy of kernel_ab.sh's POLICY (default: results/quality/
        # qwen2-mini.swept.json.gz, gunzipped)
        "eval_command": json.load(open(first[0]))["run"]["command"] if first else None,
        "attention_calls": calls,
        "csa_eval_float32": evals,
    }
    summary = "summary.json" if prefix == "eval" else f"summary-{prefix[5:]}.json"
    json.dump(out, open(f"{d}/{summary}", "w"), indent=1)
    fig, ax = plt.subplots(1, 2 if calls else 1, figsize=(12 if calls else 6, 4.5), squeeze=False)
    ax = list(ax[0]) if calls else [None, ax[0][0]]
    model = os.path.basename(out["eval_command"].split()[1]) if first else "?"
    if calls:
        xs = range(len(calls))
        shown = [x for x in labels if any(f"{x}_ms" in c for c in calls)]
        w = 0.8 / len(shown)
        for i, label in enumerate(shown):
            ax[0].bar([x + (i - (len(shown) - 1) / 2) * w for x in xs],
                      [c.get(f"{label}_ms", 0) for c in calls], w, label=label)
        ax[0].set_xticks(list(xs))
        ax[0].set_xticklabels([c["point"] for c in calls], rotation=20, fontsize=7)
        ax[0].set_ylabel("ms (median of 5)")
        ax[0].set_title("one attention call")
        ax[0].legend()
    labs = [x for x in labels if x in evals]
    ax[1].bar(labs, [evals[x]["policy_ms_median"] for x in labs], label="policy pass")
    ax[1].bar(labs, [evals[x]["dense_ms_median"] for x in labs], 0.4, label="dense pass")
    ax[1].set_ylabel("ms per 65,536 tokens")
    ax[1].set_title(f"csa-eval {model} float32, swept policy")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(f"{d}/{plot}", dpi=110)
    print(json.dumps({c["point"]: round(c.get(f"{patched}_over_{tree}", 0), 3) for c in calls}))
    print({k: (round(v["policy_ms_median"], 1), round(v["policy_over_dense_speed"], 3))
           for k, v in evals.items()})


if __name__ == "__main__":
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    report(*sys.argv[1:])
