#!/usr/bin/env python3
"""results/gpu/tf32_split (scripts/gpu/tf32_split_ab.sh on the GPU machine, copied here) ->
results/gpu/tf32_split/summary.json and split.png (scripts/gpu/kernel_ab_report.py: integer is
the tree's split, cvt the build with cvt_split.patch).
usage: /usr/bin/python3 scripts/gpu/tf32_split_report.py [results/gpu/tf32_split]"""
import sys

from kernel_ab_report import report

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/tf32_split"
report(D, "integer", "cvt", "csa-gpu-tf32-split-ab", "split.png",
       "bash scripts/gpu/tf32_split_ab.sh (EVALS=2); /usr/bin/python3 "
       "scripts/gpu/tf32_split_report.py results/gpu/tf32_split")
