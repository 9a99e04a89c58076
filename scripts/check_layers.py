#!/usr/bin/env python3
"""Fails when a library include points up or sideways (docs/architecture.md: layers point down).

Every file under lib/csa/<layer>/ may include headers of its own layer and of layers with a lower
rank only. calib and eval share a rank: neither may include the other (the tools layer above
them wires them together). CI runs this (.ci/run via scripts/test.sh).
"""
import os
import re
import sys

RANK = {
    "core": 0,
    "io": 1,
    "tokenizer": 2,
    "attention": 2,
    "model": 3,
    "corpus": 4,
    "calib": 5,
    "eval": 5,
    "tools": 6,
    "app": 7,
}

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "csa")
bad = []
for dirpath, _, files in os.walk(root):
    rel_dir = os.path.relpath(dirpath, root)
    if rel_dir == ".":
        continue
    layer = rel_dir.split(os.sep)[0]
    if layer not in RANK:
        bad.append(f"lib/csa/{layer}/: a layer that scripts/check_layers.py does not rank")
        continue
    for name in files:
        if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
            continue
        path = os.path.join(dirpath, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = re.match(r'\s*#\s*include\s+"csa/([a-z_0-9]+)/', line)
                if not m or m.group(1) == layer:
                    continue
                target = m.group(1)
                if target not in RANK or RANK[target] >= RANK[layer]:
                    rel = os.path.relpath(path, os.path.join(root, "..", ".."))
                    bad.append(f"{rel}:{lineno}: {layer} (rank {RANK[layer]}) includes "
                               f"{target} (rank {RANK.get(target, '?')})")
for b in bad:
    print(b, file=sys.stderr)
if bad:
    print(f"check_layers: {len(bad)} include(s) point up or sideways; see docs/architecture.md",
          file=sys.stderr)
    sys.exit(1)
print("check_layers: every lib/csa include points down", file=sys.stderr)
