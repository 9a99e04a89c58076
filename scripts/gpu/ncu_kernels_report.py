#!/usr/bin/env python3
"""Sums scripts/gpu/ncu_pass_kernels.sh's per-kernel GPU times (ncu CSV, gpu__time_duration.sum)
by kernel for the dense-only run and the dense + policy run, and per forward pass (the warm-up
and each timed pass's forwards, from the eval JSONs), into one JSON.
usage: python3 scripts/gpu/ncu_kernels_report.py DIR OUT.json"""
import collections
import csv
import json
import sys

d, out = sys.argv[1], sys.argv[2]
res = {"script": "bash scripts/gpu/ncu_pass_kernels.sh; python3 scripts/gpu/ncu_kernels_report.py "
                 f"DIR {out}", "unit": "ms of GPU time (kernels serialised by ncu)", "runs": {}}
for m in ("dense", "policy"):
    rows = [r for r in csv.reader(open(f"{d}/ncu_{m}.csv")) if len(r) > 10]
    hdr, rows = rows[0], rows[1:]
    ki, vi, ui = hdr.index("Kernel Name"), hdr.index("Metric Value"), hdr.index("Metric Unit")
    scale = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0}
    ms, n = collections.Counter(), collections.Counter()
    for r in rows:
        name = r[ki].split("(")[0][:90]
        ms[name] += float(r[vi].replace(",", "")) * scale[r[ui]]
        n[name] += 1
    ev = json.load(open(f"{d}/e_{m}.json"))
    passes = [{"label": p["label"], "forward_passes": p["forward_passes"],
               "wall_seconds": p["wall_seconds"], "tokens_per_second": p["tokens_per_second"]}
              for p in [ev["dense"]] + ev.get("runs", [])]
    res["runs"][m] = {"command": ev["run"]["command"], "total_ms": round(sum(ms.values()), 2),
                      "passes": passes,
                      "kernels": [{"name": k, "launches": n[k], "ms": round(v, 3)}
                                  for k, v in ms.most_common()]}
json.dump(res, open(out, "w"), indent=1)
print(f"wrote {out}")
