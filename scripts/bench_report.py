#!/usr/bin/env python3
"""Plots and a summary for the GPU benchmarks in results/gpu (scripts/gpu/run_all.sh writes the
inputs): attention time and peak memory vs context (scaling.json), csa-eval vs the HF-eager way
(csa_65536*.json, hf_65536.json). usage: /usr/bin/python3 scripts/bench_report.py [results/gpu]"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu"
sc = json.load(open(f"{D}/scaling.json"))["points"]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
for dt in ["float32", "bfloat16"]:
    for mode in ["dense", "top_k", "topk"]:  # topk: results written before the one spelling
        for path in ["auto", "explicit"]:
            pts = sorted([p for p in sc if p["dtype"] == dt and p["mode"] == mode and p["path"] == path],
                         key=lambda p: p["ctx"])
            if not pts:
                continue
            lab = f"{mode} {path} {dt}"
            a1.plot([p["ctx"] for p in pts], [1e3 * p["median_seconds"] for p in pts], "o-", ms=3, label=lab)
            a2.plot([p["ctx"] for p in pts], [p["peak_memory_bytes"] / 2**20 for p in pts], "o-", ms=3, label=lab)
for a, t in [(a1, "attention call, median ms (B=4, 6 heads, 2 KV, d=64)"), (a2, "peak CUDA memory, MiB")]:
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("context")
    a.set_title(t, fontsize=9)
a1.legend(fontsize=6)
fig.tight_layout()
fig.savefig(f"{D}/scaling.png", dpi=110)

hf = json.load(open(f"{D}/hf_65536.json"))
csa = json.load(open(f"{D}/csa_65536.json"))
csa16 = json.load(open(f"{D}/csa_65536_bf16.json"))
bars = [(r["label"], r["tokens_per_second"], r["ppl"]) for r in hf["runs"]]
bars += [("csa dense fp32", csa["dense"]["tokens_per_second"], csa["dense"]["ppl"]),
         ("csa policy fp32", csa["runs"][0]["tokens_per_second"], csa["runs"][0]["ppl"]),
         ("csa dense bf16", csa16["dense"]["tokens_per_second"], csa16["dense"]["ppl"]),
         ("csa policy bf16", csa16["runs"][0]["tokens_per_second"], csa16["runs"][0]["ppl"])]
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh([b[0] for b in bars], [b[1] / 1e3 for b in bars])
for i, b in enumerate(bars):
    ax.text(b[1] / 1e3, i, f" {b[1]/1e3:.0f}k tok/s, ppl {b[2]:.3f}", va="center", fontsize=7)
ax.set_xlabel("tokens/s (thousands), qwen2-mini, first 65,536 WikiText-2 test tokens, ctx 2048")
fig.tight_layout()
fig.savefig(f"{D}/csa_vs_hf.png", dpi=110)
hf_by = {r["label"]: r for r in hf["runs"]}
summary = {"kind": "csa-gpu-bench-summary", "device": hf["device"], "command": " ".join(sys.argv),
           "rows": [{"label": b[0], "tokens_per_second": b[1], "ppl": b[2]} for b in bars],
           "policy_speedup_vs_hf_eager_topk": csa["runs"][0]["tokens_per_second"] / hf_by["hf-eager-topk"]["tokens_per_second"],
           "dense_speedup_vs_hf_sdpa": csa["dense"]["tokens_per_second"] / hf_by["hf-sdpa-dense"]["tokens_per_second"],
           "policy_ppl_csa": csa["runs"][0]["ppl"], "policy_ppl_hf": hf_by["hf-eager-topk"]["ppl"]}
json.dump(summary, open(f"{D}/summary.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
