#!/usr/bin/env python3
"""results/gpu/decode_ncu_model.csv (`STEPS=model-profile bash scripts/gpu/run_decode.sh`: Nsight
Compute's gpu__time_duration of every kernel over the first whole-model decode steps at 64K, the
dense paged configuration, each kernel alone with caches flushed) -> the time of one decode step by
kernel, the step taken between the 17th and 33rd launch of the attend kernel (layer 0 of the
second step to layer 0 of the third).
usage: /usr/bin/python3 scripts/gpu/decode_model_profile.py [results/gpu/decode_ncu_model.csv]"""
import collections
import csv
import io
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/decode_ncu_model.csv"
lines = open(path).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
seq = [(r["Kernel Name"], float(r["Metric Value"].replace(",", ""))) for r in rows
       if r["Metric Name"] == "gpu__time_duration.sum"]  # ns
attend = [i for i, (n, _) in enumerate(seq) if "attend_kernel" in n]
step = seq[attend[16]:attend[32]]
total = sum(t for _, t in step)
by = collections.defaultdict(lambda: [0, 0.0])
for name, t in step:
    key = name.split("(")[0][-72:]
    by[key][0] += 1
    by[key][1] += t
print(f"one step: {len(step)} kernels, {total / 1e3:.1f} us (sum of isolated kernel times)")
for key, (n, t) in sorted(by.items(), key=lambda x: -x[1][1]):
    print(f"{t / 1e3:8.1f} us {100 * t / total:5.1f}% {n:4d}x  {key}")
