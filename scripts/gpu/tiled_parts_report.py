#!/usr/bin/env python3
"""Summarises a scripts/gpu/profile_tiled_parts.sh run (its $OUT/tiled_parts folder) as JSON.

  python3 scripts/gpu/tiled_parts_report.py DIR OUT.json [--command "how DIR was made"]
      [--stat-names a,b,...]

Per profiling variant and dtype: the dense and the policy pass of each csa-eval run (wall
milliseconds, medians, the policy's speed over dense) and perplexities; per variant with the
statistics switch (16) every launch's CSA_TILED_STATS counts by name, their sums and the per-row
means derived from them. Stat names default to fused_cuda_tiled.cuh's TiledStat order (since
44dd69d; kernels before it printed gather_blocks and fold_digits in the 4th and 16th places, as
in results/gpu/tiled_parts: pass --stat-names with those for their output).
"""
import argparse
import glob
import json
import os
import re

from eval_passes import medians, passes

STAT_NAMES = ("blocks rows_selecting fold_blocks first_pass_missed hist_passes rows_folded "
              "fold_candidates fold_margin fold_over rows_resolved resolved_margin resolved_over "
              "blocks_1_hist_pass blocks_2_hist_passes blocks_3plus_hist_passes fold_prefix_bits "
              "warp_tiles warp_tiles_empty warp_tiles_unscored").split()


def launch_stats(path, names):
    """One run's stdout (CSA_TILED_STATS lines, one a launch) -> {launches, total, derived}: the
    counts by name per launch, their sums, and per-row / per-block means of the sums; None when
    the file holds no such line."""
    launches = []
    for line in open(path):
        if not line.startswith("CSA_TILED_STATS"):
            continue
        parts = line.split()
        shape = dict(p.split("=") for p in parts[1:7])
        counts = [int(x) for x in parts[7:]]
        launches.append({"shape": shape, "counts": dict(zip(names, counts))})
    if not launches:
        return None
    # (names past a launch's counts: kernels that printed fewer, 16 before the empty-tile skip)
    total = {n: sum(la["counts"][n] for la in launches)
             for n in names if all(n in la["counts"] for la in launches)}
    derived = {}
    if "rows_folded" in total and total["rows_folded"]:
        derived["fold_candidates_per_folded_row"] = total["fold_candidates"] / total["rows_folded"]
        if "fold_margin" in total:
            derived["fold_margin_per_folded_row"] = total["fold_margin"] / total["rows_folded"]
            derived["folded_rows_over_cap_fraction"] = total["fold_over"] / total["rows_folded"]
    if total.get("rows_resolved") and "resolved_margin" in total:
        derived["resolved_margin_per_row"] = total["resolved_margin"] / total["rows_resolved"]
        derived["resolved_rows_over_cap_fraction"] = (
            total["resolved_over"] / total["rows_resolved"])
    if total.get("blocks"):
        derived["hist_passes_per_block"] = total["hist_passes"] / total["blocks"]
        derived["fold_block_fraction"] = total["fold_blocks"] / total["blocks"]
        if "gather_blocks" in total:  # (kernels before 44dd69d)
            derived["gather_block_fraction"] = total["gather_blocks"] / total["blocks"]
    if total.get("warp_tiles"):
        derived["warp_tiles_empty_fraction"] = total["warp_tiles_empty"] / total["warp_tiles"]
        if "warp_tiles_unscored" in total:
            derived["warp_tiles_unscored_fraction"] = (
                total["warp_tiles_unscored"] / total["warp_tiles"])
    if total.get("rows_selecting") and "first_pass_missed" in total:
        derived["first_pass_missed_fraction"] = (
            total["first_pass_missed"] / total["rows_selecting"])
    return {"launches": launches, "total": total, "derived": derived}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("out")
    ap.add_argument("--command", default="")
    ap.add_argument("--stat-names", default=",".join(STAT_NAMES))
    args = ap.parse_args()
    names = args.stat_names.split(",")
    runs = {}
    for path in sorted(glob.glob(os.path.join(args.dir, "eval.*.json"))):
        m = re.match(r"eval\.(\d+)\.(\w+)\.(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        variant, dtype, rep = m.groups()
        d = json.load(open(path))
        entry = runs.setdefault(f"profile_{variant}", {}).setdefault(dtype, {"runs": []})
        cmd_path = os.path.join(args.dir, f"command.{variant}.{dtype}.{rep}.txt")
        if os.path.exists(cmd_path):
            entry["command"] = open(cmd_path).read().strip()
        entry["runs"].append(passes(d))
    for variant in runs.values():
        for entry in variant.values():
            entry.update(medians(entry["runs"]))
    stats = {}
    for path in sorted(glob.glob(os.path.join(args.dir, "stdout.*.txt"))):
        m = re.match(r"stdout\.(\d+)\.(\w+)\.(\d+)\.txt$", os.path.basename(path))
        st = launch_stats(path, names)
        if st:
            stats[f"profile_{m.group(1)}.{m.group(2)}.{m.group(3)}"] = st
    out = {"script": args.command, "source": os.path.abspath(args.dir), "runs": runs,
           "stats": stats}
    env = os.path.join(args.dir, "environment.txt")
    if os.path.exists(env):
        out["environment"] = open(env).read()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
