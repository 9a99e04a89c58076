#!/usr/bin/env python3
"""results/gpu/decode.jsonl (scripts/gpu/bench_decode.sh on the GPU machine, copied here) ->
results/gpu/decode.json (every point; per (batch, ctx) each variant's median time per decode step
and layer, and the paged top-k speedups over dense SDPA, over the paged kernels reading every page
and over exact top-k; whole-model tokens/s) and decode.png.
usage: /usr/bin/python3 scripts/gpu/decode_report.py [results/gpu]"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu"
rows = [json.loads(l) for l in open(f"{D}/decode.jsonl")]
att = [r for r in rows if r.get("label") == "attention" and "error" not in r]
mod = [r for r in rows if r.get("label") == "model" and "error" not in r]
errors = [r for r in rows if "error" in r]


def med(r, label):
    x = next((v for v in r["runs"] if v["label"] == label), None)
    return None if x is None else x.get("median_seconds", x.get("median_seconds_per_step"))


points = []
for r in att:
    p = {"batch": r["batch"], "ctx": r["ctx"], "page": r["page"], "command": r["command"],
         "microseconds": {v["label"]: 1e6 * v["median_seconds"] for v in r["runs"]},
         "reads_fraction": {v["label"]: v["reads_fraction"] for v in r["runs"]},
         "kv_bytes_fraction": {v["label"]: v["kv_bytes_fraction"] for v in r["runs"]}}
    for pct in ("5%", "10%"):
        # Pages per query head ("paged top-k"), one set per KV group ("paged group top-k").
        for kind, tag in (("", ""), ("group ", "group_")):
            s = med(r, f"paged {kind}top-k {pct}")
            if s is None:
                continue
            for peer, name in (("dense SDPA", "sdpa"), ("dense paged", "dense_paged"),
                               (f"exact top-k {pct}", "exact_topk")):
                t = med(r, peer)
                if t is not None:
                    p[f"speedup_{tag}{pct[:-1]}pct_vs_{name}"] = t / s
            # Replayed from CUDA graphs (device time, no host launches), against the same.
            s = med(r, f"paged {kind}top-k {pct} (graph)")
            for peer, name in (("dense SDPA (graph)", "sdpa"),
                               ("dense paged (graph)", "dense_paged")):
                t = med(r, peer)
                if s is not None and t is not None:
                    p[f"speedup_{tag}{pct[:-1]}pct_vs_{name}_graphs"] = t / s
    points.append(p)
models = []
for r in mod:
    m = {"ctx": r["ctx"], "batch": r["batch"], "command": r["command"],
         "tokens_per_second": {v["label"]: v["tokens_per_second"] for v in r["runs"]}}
    for v in r["runs"]:  # each against dense in the same mode (eager, or CUDA graphs)
        graphs = v.get("graphs", False)
        dense = med(r, "dense paged (graphs)" if graphs else "dense paged")
        if not v["label"].startswith("dense paged"):
            m[f"speedup {v['label']}"] = dense / v["median_seconds_per_step"]
    models.append(m)
out = {"attention": points, "model": models, "errors": errors,
       "device": att[0]["device"] if att else None, "dtype": "bfloat16",
       "layout": {k: att[0][k] for k in ("heads", "kv_heads", "head_dim")} if att else None,
       "script": "bash scripts/gpu/bench_decode.sh; /usr/bin/python3 scripts/gpu/decode_report.py"}
json.dump(out, open(f"{D}/decode.json", "w"), indent=1)

batches = sorted({p["batch"] for p in points})
fig, axes = plt.subplots(1, len(batches) + 1, figsize=(5 * (len(batches) + 1), 4))
for ax, b in zip(axes, batches):
    ps = sorted((p for p in points if p["batch"] == b), key=lambda p: p["ctx"])
    for label in ps[0]["microseconds"]:
        ax.plot([p["ctx"] for p in ps], [p["microseconds"].get(label) for p in ps], "o-",
                label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("KV cache length")
    ax.set_ylabel("µs per decode step, one layer")
    ax.set_title(f"attention, batch {b}, bf16, page 16")
    ax.legend(fontsize=7)
ax = axes[-1]
for m in models:
    labels = list(m["tokens_per_second"])
    short = [l.replace("dense paged", "dense").replace("paged group top-k ", "grp ")
             .replace("paged top-k ", "").replace(" (graphs)", " G") for l in labels]
    ax.bar([f"{m['ctx'] // 1024}K {l}" for l in short], [m["tokens_per_second"][l] for l in labels])
ax.set_ylabel("tokens/s (batch 1)")
ax.set_title("whole model, random 1B (G: CUDA graphs)")
ax.tick_params(axis="x", labelsize=7, labelrotation=60)
fig.tight_layout()
fig.savefig(f"{D}/decode.png", dpi=110)
for p in points:
    print(p["batch"], p["ctx"], {k: round(v, 1) for k, v in p["microseconds"].items()},
          {k: round(v, 2) for k, v in p.items() if k.startswith("speedup")})
for m in models:
    print(m)
