#!/usr/bin/env python3
"""A calibrate A/B (scripts/gpu/calibrate_ab.sh on the GPU machine, its NAME directory unpacked
here) -> DIR/summary.json and DIR/calibrate_ab.png: per model and ctx, the whole-process seconds
of the old and the new build (medians of the alternating runs; the new over the old), their
start-up, main and exit (wall - start-up - main) seconds and largest phases (medians), and
whether the two builds' policies allocate the same budgets (and their need curves' largest
relative difference).
usage: /usr/bin/python3 scripts/gpu/calibrate_ab_report.py DIR"""
import glob
import gzip
import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

D = sys.argv[1]
runs = {}
for f in sorted(glob.glob(f"{D}/*.wall")):
    label, tag, i = re.match(r"(old|new)\.(.+)\.(\d+)\.wall$", os.path.basename(f)).groups()
    wall = float(open(f).read())
    prof = json.load(open(f[: -len(".wall")] + ".profile.json"))
    proc = prof["process"]
    runs.setdefault(tag, {}).setdefault(label, []).append(
        {"wall": wall, "start_up": proc["start_up_seconds"], "main": proc["main_seconds"],
         "exit": wall - proc["start_up_seconds"] - proc["main_seconds"],
         "phases": {k: v["seconds"] for k, v in prof["phases"].items()}})


def policy(path):  # PATH or PATH.gz (as committed)
    return json.load(open(path)) if os.path.exists(path) else json.load(gzip.open(path + ".gz"))


def budgets(path):
    p = policy(path)
    return json.dumps([p.get(k) for k in ("budgets", "band_budgets", "top_p") if k in p])


def curve_diff(a, b):
    """The largest relative difference between the two policies' need-curve entries."""
    ca, cb = policy(a)["need_curves"], policy(b)["need_curves"]
    worst = 0.0

    def walk(x, y):
        nonlocal worst
        if isinstance(x, list):
            for u, v in zip(x, y):
                walk(u, v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-12))
    for k in ca:
        walk(ca[k], cb[k])
    return worst


def med(xs):
    return statistics.median(xs)


out = {"invocation": open(f"{D}/invocation.txt").read().strip(),
       "command": f"/usr/bin/python3 scripts/gpu/calibrate_ab_report.py {D}", "models": {}}
for tag, by in sorted(runs.items()):
    row = {}
    for label, rs in by.items():
        names = sorted({k for r in rs for k in r["phases"]})
        ph = {k: round(med([r["phases"].get(k, 0.0) for r in rs]), 3) for k in names}
        row[label] = {"wall_median": med([r["wall"] for r in rs]),
                      "walls": [r["wall"] for r in rs],
                      "start_up_median": med([r["start_up"] for r in rs]),
                      "main_median": med([r["main"] for r in rs]),
                      "exit_median": med([r["exit"] for r in rs]),
                      "phases_median": dict(sorted(ph.items(), key=lambda x: -x[1])[:8])}
    row["new_over_old_wall"] = row["new"]["wall_median"] / row["old"]["wall_median"]
    row["same_budgets"] = budgets(f"{D}/old.{tag}.1.policy.json") == budgets(
        f"{D}/new.{tag}.1.policy.json")
    row["need_curves_max_rel_diff"] = curve_diff(f"{D}/old.{tag}.1.policy.json",
                                                 f"{D}/new.{tag}.1.policy.json")
    out["models"][tag] = row
json.dump(out, open(f"{D}/summary.json", "w"), indent=1)
fig, ax = plt.subplots(figsize=(7, 3.5))
tags = sorted(runs)
for j, label in enumerate(("old", "new")):
    for k, tag in enumerate(tags):
        ys = [r["wall"] for r in runs[tag][label]]
        ax.scatter([k + (j - 0.5) * 0.3] * len(ys), ys, s=14, color=f"C{j}",
                   label=label if k == 0 else None)
        ax.hlines(med(ys), k + (j - 0.5) * 0.3 - 0.1, k + (j - 0.5) * 0.3 + 0.1, color=f"C{j}")
ax.axhline(3.0, color="gray", ls=":", lw=1)
ax.set_xticks(range(len(tags)), tags)
ax.set_ylabel("csa-calibrate whole process, s")
ax.set_title("10k calibration tokens, H200: old vs new build, same run")
ax.legend()
fig.tight_layout()
fig.savefig(f"{D}/calibrate_ab.png", dpi=110)
print(json.dumps({t: (round(r["old"]["wall_median"], 3), round(r["new"]["wall_median"], 3),
                      round(r["new_over_old_wall"], 3), r["same_budgets"],
                      r["need_curves_max_rel_diff"])
                  for t, r in out["models"].items()}))
