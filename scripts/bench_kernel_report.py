#!/usr/bin/env python3
"""Plot of results/cpu/kernel.json (scripts/bench_kernel_cpu.sh writes it): the attention kernel's
median wall time per configuration and thread count (before/after when the run had both), and the
forward's GFLOP/s next to the GEMM peer's, 1 and 2 threads. Writes kernel.png beside the JSON.
usage: /usr/bin/python3 scripts/bench_kernel_report.py [results/cpu/kernel.json]"""
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

path = sys.argv[1] if len(sys.argv) > 1 else "results/cpu/kernel.json"
doc = json.load(open(path))
summary = doc["summary"]
STAT = "best"  # the least disturbed round; the JSON has the medians too

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
labels, ones, twos = [], [], []
for build in ("before", "after"):
    for name, row in sorted(summary.get(build, {}).items()):
        if not name.startswith("kernel") or "threads_1" not in row or "threads_2" not in row:
            continue
        labels.append(f"{name[7:]} ({build})")
        ones.append(row["threads_1"][STAT + "_seconds"])
        twos.append(row["threads_2"][STAT + "_seconds"])
y = range(len(labels))
a1.barh([i + 0.2 for i in y], ones, height=0.4, label="1 thread")
a1.barh([i - 0.2 for i in y], twos, height=0.4, label="2 threads")
for i in y:
    a1.text(ones[i], i + 0.2, f" {ones[i]:.3f}", va="center", fontsize=6)
    a1.text(twos[i], i - 0.2, f" {twos[i]:.3f} ({ones[i] / twos[i]:.2f}x)", va="center",
            fontsize=6)
a1.set_yticks(list(y))
a1.set_yticklabels(labels, fontsize=7)
a1.set_xscale("log")
a1.set_xlabel(f"seconds per call ({STAT} round), ctx 2048, B 4, 6 heads, 2 KV heads, d 64",
              fontsize=7)
a1.legend(fontsize=7)

after = summary["after"]
groups = [("forward dense", "forward, dense"), ("forward top_k", "forward, top-64"),
          ("gemm", "OpenBLAS sgemm peer")]
for k, (name, label) in enumerate(groups):
    for t, off in ((1, -0.2), (2, 0.2)):
        g = after[name][f"threads_{t}"][("" if STAT == "median" else "best_") + "gflops_per_second"]
        a2.bar(k + off, g, width=0.4, color="C0" if t == 1 else "C1",
               label=f"{t} thread{'s' if t > 1 else ''}" if k == 0 else None)
        a2.text(k + off, g, f"{g:.0f}", ha="center", va="bottom", fontsize=7)
a2.set_xticks(range(len(groups)))
a2.set_xticklabels([g[1] for g in groups], fontsize=7)
a2.set_ylabel("GFLOP/s (a dense forward's work / time)", fontsize=7)
a2.set_title(f"llama-mini, 4 x 2048 tokens per pass ({STAT} round)", fontsize=8)
a2.legend(fontsize=7, loc="upper left")
fig.suptitle(f"{doc['machine']['cpu']}, {doc['machine']['cores']} cores; load "
             f"{doc['load_average_start']} -> {doc['load_average_end']}", fontsize=8)
fig.tight_layout()
out = os.path.join(os.path.dirname(path), "kernel.png")
fig.savefig(out, dpi=110)
print(f"bench_kernel_report: wrote {out}", file=sys.stderr)
