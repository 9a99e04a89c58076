#!/usr/bin/env python3
"""results/gpu/kernel.jsonl (scripts/gpu/bench_kernel.sh on the GPU machine, copied here) ->
results/gpu/kernel.json (every point, plus per shape the kernel's time over dense SDPA and over
the explicit top-k sequence, and peak memory) and kernel.png.
COMMAND: the bench_kernel.sh invocation as run (its environment variables), recorded in the JSON.
usage: /usr/bin/python3 scripts/gpu/kernel_report.py [results/gpu [COMMAND]]"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu"
RUN = sys.argv[2] if len(sys.argv) > 2 else "bash scripts/gpu/bench_kernel.sh"
rows = [json.loads(l) for l in open(f"{D}/kernel.jsonl")]
ok = [r for r in rows if "error" not in r]
att = [r for r in ok if r.get("kind") != "forward"]
fwd = [r for r in ok if r.get("kind") == "forward"]


def key(r):
    return (r["heads"], r["kv_heads"], r["head_dim"], r["dtype"], r["batch"], r["ctx"])


dense = {key(r): r for r in att if r["label"] == "dense"}
cmp = []
for r in att:
    if r["label"] != "kernel":
        continue
    ex = next((e for e in att if e["label"] == "explicit" and key(e) == key(r)
               and e.get("budgets") == r.get("budgets")), None)
    d = dense.get(key(r))
    cmp.append({"heads": r["heads"], "kv_heads": r["kv_heads"], "head_dim": r["head_dim"],
                "dtype": r["dtype"], "batch": r["batch"], "ctx": r["ctx"], "budget": r["budgets"][0],
                "reads_fraction": r["reads_fraction"],
                "kernel_ms": 1e3 * r["median_seconds"],
                "explicit_ms": ex and 1e3 * ex["median_seconds"],
                "dense_sdpa_ms": d and 1e3 * d["median_seconds"],
                "kernel_over_dense": d and r["median_seconds"] / d["median_seconds"],
                "explicit_over_kernel": ex and ex["median_seconds"] / r["median_seconds"],
                "kernel_peak_bytes": r["peak_memory_bytes"],
                "explicit_peak_bytes": ex and ex["peak_memory_bytes"]})
forward = {r["label"]: {"dtype": r["dtype"], "median_seconds": r["median_seconds"],
                        "tokens_per_second": r["tokens"] / r["median_seconds"],
                        "reads_fraction": r.get("reads_fraction")} for r in fwd}
out = {"kind": "csa-gpu-kernel-bench", "command": f"{RUN} (see kernel.jsonl for each point's settings)",
       "device": att[0]["device"] if att else None, "comparisons": cmp, "forward_qwen2_mini": forward,
       "errors": [r for r in rows if "error" in r]}
json.dump(out, open(f"{D}/kernel.json", "w"), indent=1)

# the plot's dtype: bf16 where the run has it, else the run's (a float32-only run)
PLOT_DT = "bfloat16" if any(c["dtype"] == "bfloat16" for c in cmp) else cmp[0]["dtype"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for (h, hk, hd) in sorted({(c["heads"], c["kv_heads"], c["head_dim"]) for c in cmp}):
    pts = sorted([c for c in cmp if (c["heads"], c["kv_heads"], c["head_dim"]) == (h, hk, hd) and c["batch"] == 1
                  and c["budget"] == max(1, c["ctx"] * 10 // 100) and c["dtype"] == PLOT_DT],
                 key=lambda c: c["ctx"])
    lab = f"{h}/{hk} heads, d {hd}"
    axes[0].plot([c["ctx"] for c in pts], [c["kernel_ms"] for c in pts], "o-", label=f"kernel ({lab})")
    ex = [c for c in pts if c["explicit_ms"]]
    axes[0].plot([c["ctx"] for c in ex], [c["explicit_ms"] for c in ex], "s--", label=f"explicit top-k ({lab})")
    axes[0].plot([c["ctx"] for c in pts], [c["dense_sdpa_ms"] for c in pts], "^:", label=f"dense SDPA ({lab})")
    axes[1].plot([c["ctx"] for c in pts], [c["kernel_peak_bytes"] / 1e9 for c in pts], "o-", label=f"kernel ({lab})")
    axes[1].plot([c["ctx"] for c in ex], [c["explicit_peak_bytes"] / 1e9 for c in ex], "s--", label=f"explicit ({lab})")
for ax in axes:
    ax.set_xscale("log", base=2); ax.set_yscale("log"); ax.set_xlabel("context (queries = keys)")
    ax.legend(fontsize=6)
axes[0].set_ylabel("ms per attention call (median of 5)")
axes[1].set_ylabel("peak CUDA memory (GB)")
fig.suptitle(f"One attention call, top-k at 10% of ctx, {PLOT_DT}, batch 1 (H200)")
fig.tight_layout(); fig.savefig(f"{D}/kernel.png", dpi=110)
for c in cmp:
    ex = (f"explicit {c['explicit_ms']:.2f} ({c['explicit_over_kernel']:.1f}x)" if c["explicit_ms"]
          else "explicit not run")
    print(f"{c['heads']}/{c['kv_heads']} d{c['head_dim']} {c['dtype']} b{c['batch']} ctx {c['ctx']} top-{c['budget']}: "
          f"kernel {c['kernel_ms']:.3f} ms, {ex}, dense {c['dense_sdpa_ms']:.3f} (kernel/dense {c['kernel_over_dense']:.1f}x)")
for k, v in forward.items():
    print(f"{k}: {1e3 * v['median_seconds']:.2f} ms, {v['tokens_per_second']:.0f} tokens/s")
