#!/usr/bin/env python3
"""Carries an HF model directory to the GPU machine inside its 64 MiB working-tree limit, losslessly.
Each .safetensors file is stored as its header and then its data split into byte planes (every
2nd byte, then the others: the high bytes of 16-bit weights compress, the low ones barely), xz
compressed; every other file xz compressed as it is. The shared minis shrink 14-32% (pythia-mini
34.4 -> 28.9 MB), which is what lets one travel beside the tree and .dev/debs.
  here:  python3 scripts/gpu/pack_model.py pack ../shared/models/llama-mini .dev/mpack/llama-mini
  there: python3 scripts/gpu/pack_model.py unpack .dev/mpack/llama-mini .dev/shared/models/llama-mini
unpack checks every file's SHA-256 against the one pack recorded (MANIFEST.json) and exits 1 on a
mismatch."""
import hashlib
import json
import lzma
import os
import struct
import sys

PLANES = 2


def pack(src, dst):
    os.makedirs(dst, exist_ok=True)
    manifest = {}
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            continue
        raw = open(path, "rb").read()
        manifest[name] = hashlib.sha256(raw).hexdigest()
        if name.endswith(".safetensors"):
            head = 8 + struct.unpack("<Q", raw[:8])[0]
            data = raw[head:]
            body = raw[:head] + b"".join(data[i::PLANES] for i in range(PLANES))
            manifest[name + ":head"] = head
        else:
            body = raw
        with open(os.path.join(dst, name + ".xz"), "wb") as f:
            f.write(lzma.compress(body, preset=6))
    with open(os.path.join(dst, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def unpack(src, dst):
    os.makedirs(dst, exist_ok=True)
    manifest = json.load(open(os.path.join(src, "MANIFEST.json")))
    for name, digest in manifest.items():
        if ":" in name:
            continue
        body = lzma.decompress(open(os.path.join(src, name + ".xz"), "rb").read())
        head = manifest.get(name + ":head")
        if head is not None:
            data = body[head:]
            out = bytearray(len(data))
            start = 0
            for i in range(PLANES):
                n = len(range(i, len(data), PLANES))
                out[i::PLANES] = data[start:start + n]
                start += n
            body = body[:head] + bytes(out)
        if hashlib.sha256(body).hexdigest() != digest:
            sys.exit(f"{os.path.join(src, name)}.xz: unpacked bytes do not match MANIFEST.json")
        with open(os.path.join(dst, name), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2], sys.argv[3])
