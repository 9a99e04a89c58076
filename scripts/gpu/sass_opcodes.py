#!/usr/bin/env python3
"""Opcode counts of the tiled top-k kernel's instantiations in a `cuobjdump -sass` listing: the
static instruction mix per kernel (results/gpu/tf32_split/profile, trials).
usage (GPU machine, after scripts/gpu/build.sh):
  cuobjdump -sass $(find build-gpu -name 'fused_cuda_tiled_*.cu.o') > sass.txt
  python3 scripts/gpu/sass_opcodes.py sass.txt > sass_opcodes.txt"""
import collections
import re
import sys

fn = None
hists = collections.OrderedDict()
for line in open(sys.argv[1]):
    m = re.search(r"Function : (\S+)", line)
    if m:
        fn = m.group(1)
        hists[fn] = collections.Counter()
        continue
    m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", line)
    if m and fn:
        hists[fn][m.group(2)] += 1
for fn, h in hists.items():
    if "tiled_topk" not in fn:
        continue
    print(fn, "total", sum(h.values()))
    for op, n in h.most_common(45):
        print("  %-28s %6d" % (op, n))
