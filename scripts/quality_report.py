#!/usr/bin/env python3
"""Summarises results/quality/*.json (written by scripts/quality.sh) into
results/quality/summary.json, summary.md and plots (reads vs delta-ppl per model; per-(layer, head)
budget heat maps). Uses Debian's python3-matplotlib / python3-numpy (/usr/bin/python3).
usage: /usr/bin/python3 scripts/quality_report.py [results/quality]"""
import glob
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

D = sys.argv[1] if len(sys.argv) > 1 else "results/quality"
MODELS = ["gpt2-mini", "pythia-mini", "qwen2-mini", "llama-mini"]
METRICS = ["effective_keys", "mass_keys"]


def load(p):
    return json.load(open(p)) if os.path.exists(p) else None


rows = []
for m in MODELS:
    for met in METRICS:
        sweep = load(f"{D}/{m}.{met}.sweep.json")
        pol = load(f"{D}/{m}.{met}.swept.json") or load(f"{D}/{m}.{met}.policy.json")
        for ev in sorted(glob.glob(f"{D}/{m}.{met}.eval.*.json")):
            r = json.load(open(ev))
            corpus = ev.split(".eval.")[1][:-5]
            d = r["dense"]
            runs = {x["label"]: x for x in r["runs"]}
            p = next(x for x in r["runs"] if x["role"] == "policy")
            uni = next((x for x in r["runs"] if x["label"].startswith("uniform")), None)
            row = {"model": m, "metric": met, "corpus": corpus, "ctx": r["protocol"]["ctx"],
                   "dense_ppl": d["ppl"], "policy_ppl": p["ppl"],
                   "delta_rel": p["comparison"]["delta_rel"],
                   "worst_bucket_rel": p["comparison"]["max_bucket_worsening_rel"],
                   "max_abs_bucket_rel": p["comparison"]["max_abs_bucket_delta_rel"],
                   "matches_dense": p["comparison"]["matches_dense"],
                   "reads": p["reads"]["query_side_fraction"], "kv_reads": p["reads"]["kv_side_fraction"],
                   "k_max": pol.get("k_max") if pol else None,
                   "swept": os.path.exists(f"{D}/{m}.{met}.swept.json"),
                   "policy_wall_seconds": p.get("wall_seconds"), "dense_wall_seconds": d.get("wall_seconds"),
                   "eval_wall_seconds": r["run"]["wall_seconds"], "device": r["run"].get("device"),
                   "scored_targets": d["scored_targets"]}
            if uni:
                row.update({"uniform_label": uni["label"], "uniform_reads": uni["reads"]["query_side_fraction"],
                            "uniform_delta_rel": uni["comparison"]["delta_rel"],
                            "uniform_matches": uni["comparison"]["matches_dense"],
                            "advantage_vs_uniform": uni["reads"]["query_side_fraction"] / p["reads"]["query_side_fraction"]})
            if sweep:
                row["sweep_forward_passes"] = sweep.get("forward_passes")
                row["sweep_wall_seconds"] = sweep["run"]["wall_seconds"]
                row["sweep_reads_advantage_vs_uniform"] = sweep.get("reads_advantage_vs_uniform")
            cal = load(f"{D}/{m}.{met}.policy.json")
            if cal:
                row["calibrate_wall_seconds"] = cal["run"]["wall_seconds"]
            rows.append(row)

json.dump({"kind": "csa-quality-summary", "source": D, "command": " ".join(sys.argv), "rows": rows},
          open(f"{D}/summary.json", "w"), indent=1)

with open(f"{D}/summary.md", "w") as f:
    f.write("| model | metric | corpus | dense ppl | policy ppl | Δ | worst bucket | reads | KV reads | uniform (matching on sweep) reads | uniform Δ | advantage | matches |\n")
    f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['model']} | {r['metric']} | {r['corpus']} | {r['dense_ppl']:.2f} | {r['policy_ppl']:.2f} | "
                f"{100*r['delta_rel']:+.2f}% | {100*r['worst_bucket_rel']:+.2f}% | {100*r['reads']:.1f}% | "
                f"{100*r['kv_reads']:.1f}% | {100*r.get('uniform_reads', float('nan')):.1f}% ({r.get('uniform_label','-')}) | "
                f"{100*r.get('uniform_delta_rel', float('nan')):+.2f}% | {r.get('advantage_vs_uniform', float('nan')):.2f}× | "
                f"{'yes' if r['matches_dense'] else 'no'}{'' if r['swept'] else ' (no cap matched on the sweep slice)'} |\n")

# reads vs delta-ppl on the sweep slice, policy vs uniform, one panel per model
fig, axes = plt.subplots(1, len(MODELS), figsize=(4.2 * len(MODELS), 3.6))
for ax, m in zip(axes, MODELS):
    for met, style in zip(METRICS, ["o-", "s--"]):
        s = load(f"{D}/{m}.{met}.sweep.json")
        if not s:
            continue
        for key, lab, col in [("policy_sweep", f"policy ({met})", None), ("uniform_sweep", "uniform top-k", "gray")]:
            if key == "uniform_sweep" and met != METRICS[0]:
                continue
            pr = sorted(s[key]["probes"], key=lambda p: p["reads_fraction"])
            ax.plot([100 * p["reads_fraction"] for p in pr], [100 * p["delta_rel"] for p in pr],
                    style if col is None else "x:", label=lab, color=col, ms=3)
    ax.axhline(0.5, color="red", lw=0.8, ls=":")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xscale("log")
    ax.set_ylim(-8, 30)
    ax.set_title(m)
    ax.set_xlabel("% of dense reads (sweep slice)")
axes[0].set_ylabel("Δ ppl vs dense (%)")
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(f"{D}/reads_vs_dppl.png", dpi=110)

# budget heat maps of the swept (or calibrated) policies, default metric
fig, axes = plt.subplots(1, len(MODELS), figsize=(3.6 * len(MODELS), 3.2))
for ax, m in zip(axes, MODELS):
    p = load(f"{D}/{m}.mass_keys.swept.json") or load(f"{D}/{m}.mass_keys.policy.json")
    if not p:
        continue
    b = np.array(p["budgets"], dtype=float)
    im = ax.imshow(np.log2(b), cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(b):
        ax.text(j, i, int(v), ha="center", va="center", fontsize=6, color="white")
    ax.set_title(f"{m} (k_max {p['k_max']})")
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
fig.colorbar(im, ax=axes, label="log2 budget", shrink=0.8)
fig.savefig(f"{D}/budgets.png", dpi=110)
# per-position delta: every bucket's relative ppl change, policy vs dense, on the eval corpus
fig, ax = plt.subplots(figsize=(7, 3.6))
for m in MODELS:
    ev = load(f"{D}/{m}.mass_keys.eval.wikitext2-test.json")
    if not ev:
        continue
    p = next(x for x in ev["runs"] if x["role"] == "policy")
    mids = [(b["positions"][0] + b["positions"][1]) / 2 for b in ev["dense"]["buckets"]]
    ax.plot(mids, [100 * v for v in p["comparison"]["bucket_delta_rel"]], "o-", ms=3, label=m)
ax.axhline(1.0, color="red", lw=0.8, ls=":", label="+1% bucket tolerance")
ax.axhline(0, color="black", lw=0.5)
ax.set_xlabel("position in window")
ax.set_ylabel("bucket ppl Δ vs dense (%)")
ax.set_title("per-position Δ, swept mass_keys policy, WikiText-2 test", fontsize=9)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(f"{D}/per_position_delta.png", dpi=110)
print(open(f"{D}/summary.md").read())
