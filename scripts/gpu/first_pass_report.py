#!/usr/bin/env python3
"""results/gpu/first_pass (scripts/gpu/kernel_ab.sh runs on the GPU machine, copied here) ->
summary.json and ab.png there (the kept selection: a first pass over the order key's top 12 bits
in two windows, then radix passes after each row's own prefix, no gather pass; against c43c186's
byte radix passes, radix_passes.patch, and the same with the gather pass, gather_pass.patch) and
in each trials/ folder (the variants tried on the way, each the tree + its variant.patch, against
c43c186's kernel: scripts/gpu/kernel_ab_report.py), and the selection statistics of the
profiling switch 16 (stats/ folders: scripts/gpu/tiled_parts_report.py's parser) as
stats_summary.json beside them.
usage: /usr/bin/python3 scripts/gpu/first_pass_report.py [results/gpu/first_pass]"""
import glob
import json
import os
import sys

from kernel_ab_report import report
from tiled_parts_report import STAT_NAMES, launch_stats

OLD_NAMES = [n if n != "first_pass_missed" else "gather_blocks" for n in STAT_NAMES]
OLD_NAMES = [n if n != "fold_prefix_bits" else "fold_digits" for n in OLD_NAMES]

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/first_pass"
RUNS = {  # folder: (tree label, patched label, extra labels, EVALS, stats folders: stat names)
    ".": ("first-pass", "radix", ["gather"], 3, {"stats": STAT_NAMES}),
    "trials/window_v1": ("window", "radix", ["window-qsplit"], 2, {}),
    "trials/one_byte": ("guess", "radix", [], 3,
                        {"stats_one_byte": OLD_NAMES, "stats_radix": OLD_NAMES}),
    "trials/two_byte": ("two-byte", "radix", ["one-byte"], 3, {"stats": OLD_NAMES}),
    "trials/first12_gather": ("first12", "radix", [], 3, {"stats": OLD_NAMES}),
}
PATCHES = {".": "gather=results/gpu/first_pass/gather_pass.patch",
           "trials/window_v1": "window-qsplit=results/gpu/shared_split/next/q_split_per_tile.patch",
           "trials/two_byte": "one-byte=results/gpu/first_pass/trials/one_byte/variant.patch"}


def stats(folder, names):
    """The folder's stdout.16.DTYPE.N.txt -> per dtype the launches' summed counts, their number
    and the means derived from them (tiled_parts_report.launch_stats)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "stdout.16.*.txt"))):
        st = launch_stats(path, names)
        if st:
            out[os.path.basename(path).split(".")[2]] = {
                **st["total"], "launches": len(st["launches"]), **st["derived"]}
    return out


for sub, (tree, patched, extra, evals, stat_dirs) in RUNS.items():
    d = os.path.normpath(os.path.join(D, sub))
    where = os.path.normpath(os.path.join("results/gpu/first_pass", sub))
    name = "first_pass" if sub == "." else os.path.basename(where)
    env = f"AGAIN=0 EVALS={evals}" + (f' EXTRA="{PATCHES[sub]}"' if sub in PATCHES else "")
    tree_is = ("this commit's kernel" if sub == "." else
               f"this commit's kernel + {where}/variant.patch")
    print(sub)
    report(d, tree, patched, "csa-gpu-kernel-ab", "ab.png",
           f"{env} bash scripts/gpu/kernel_ab.sh {name} results/gpu/first_pass/radix_passes.patch "
           f"{tree} {patched} (the tree: {tree_is}; {patched}: c43c186's kernel); "
           "/usr/bin/python3 scripts/gpu/first_pass_report.py", *extra)
    if stat_dirs:
        summary = {
            "command": "VARIANTS=16 DTYPES=... REPS=1 POLICY=<results/quality/qwen2-mini.swept."
                       "json.gz, gunzipped> bash scripts/gpu/profile_tiled_parts.sh (the build "
                       "named by the folder; stdout.16.DTYPE.1.txt: one CSA_TILED_STATS line a "
                       "launch, 12 launches: 2 forwards x 6 layers)",
            "folders": {k: stats(os.path.join(d, k), names) for k, names in stat_dirs.items()}}
        json.dump(summary, open(os.path.join(d, "stats_summary.json"), "w"), indent=1)
