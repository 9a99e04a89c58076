#!/usr/bin/env python3
"""results/gpu/shared_split (scripts/gpu/kernel_ab.sh runs on the GPU machine, copied here) ->
summary.json and ab.png there (the kept kernel: K and V split once a tile in shared memory,
against b70456d's per-warp split, per_warp_split.patch) and in each trials/ folder (the variants
tried on the way, each against its own patch; scripts/gpu/kernel_ab_report.py).
usage: /usr/bin/python3 scripts/gpu/shared_split_report.py [results/gpu/shared_split]"""
import os
import sys

from kernel_ab_report import report

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/shared_split"
RUNS = {  # folder: (tree label, patched label, patch, AGAIN)
    ".": ("shared", "per-warp", "per_warp_split.patch", 1),
    "trials/v1": ("shared", "per-warp", "per_warp_split.patch", 1),
    "trials/chains": ("two-chains", "one-chain", "one_chain.patch", 1),
    "trials/barriers": ("one-barrier", "two-barriers", "two_barriers.patch", 1),
    "trials/v4": ("shared", "per-warp", "per_warp_split.patch", 1),
    "trials/v6_hybrid": ("shared", "per-warp", "per_warp_split.patch", 0),
}
for sub, (tree, patched, patch, again) in RUNS.items():
    d = os.path.normpath(os.path.join(D, sub))
    where = os.path.normpath(os.path.join("results/gpu/shared_split", sub))
    env = "EVALS=2" if again else "AGAIN=0 EVALS=2"
    name = os.path.basename(where)
    print(sub)
    report(d, tree, patched, "csa-gpu-kernel-ab", "ab.png",
           f"{env} bash scripts/gpu/kernel_ab.sh {name} {where}/{patch} {tree} {patched} "
           f"(the tree: this commit's kernel{'' if sub == '.' else ' + ' + where + '/variant.patch'}); "
           "/usr/bin/python3 scripts/gpu/shared_split_report.py")
