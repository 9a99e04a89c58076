#!/usr/bin/env python3
"""Times the sentencepiece Python binding (the library csa's SentencePiece tokenizer calls) on a
corpus, for scripts/bench_tokenizer.sh: one encode of the whole text, BOS prepended as csa's
template does. Prints one JSON object like bench_tokenizer_hf.js."""
import hashlib
import struct
import sys
import time

import sentencepiece as spm

model, corpus, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(corpus, encoding="utf-8").read()
encode, load, ids = [], [], None
for _ in range(runs):
    t0 = time.perf_counter()
    sp = spm.SentencePieceProcessor(model_file=model)
    t1 = time.perf_counter()
    out = sp.encode(text)
    t2 = time.perf_counter()
    load.append(t1 - t0)
    encode.append(t2 - t1)
    if ids is None:
        ids = ([sp.bos_id()] if sp.bos_id() >= 0 else []) + out
version = getattr(spm, "__version__", None)
print(__import__("json").dumps({
    "library": "sentencepiece (Python binding)", "version": version, "tokenizer": model,
    "n_tokens": len(ids),
    "ids_sha256_int32le": hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest(),
    "encode_seconds": encode, "load_seconds": load}))
