#!/usr/bin/env python3
"""Golden tokenizer fixtures from the reference implementations (run where Hugging Face
`tokenizers`/`transformers` and `sentencepiece` are installed: the GPU machine).

usage: make_tokenizer_fixtures.py SHARED_DIR OUT_DIR [--strings tests/fixtures/tokenizers/strings.json]

SHARED_DIR holds models/<name>/tokenizer.* , tokenizers/{gpt2,llama2}/ and corpora/ (a copy of
../shared). For each tokenizer it writes OUT_DIR/<name>.json:
  {"name", "kind", "reference", "versions", "cases": [{"text", "ids", "ids_special", "decoded"}],
   "corpora": {file: {"n_tokens", "sha256_int32le", "head", "tail", "seconds"}}}
ids_special = encode with the tokenizer's own template (add_special_tokens=True); ids = without.
"""
import argparse
import hashlib
import json
import struct
import sys
import time
from pathlib import Path


def sha_ids(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}i", *ids)).hexdigest()


def versions():
    v = {"python": sys.version.split()[0]}
    for mod in ("tokenizers", "transformers", "sentencepiece"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            v[mod] = f"unavailable: {e}"
    return v


class HfJson:
    def __init__(self, path):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(path))
        self.reference = f"tokenizers.Tokenizer.from_file({path.name})"

    def encode(self, s, special):
        return self.tok.encode(s, add_special_tokens=special).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


class Spm:
    def __init__(self, path):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        self.reference = f"sentencepiece.SentencePieceProcessor({path.name}), BOS prepended when special"

    def encode(self, s, special):
        ids = self.sp.encode(s)
        return ([self.sp.bos_id()] + ids) if special and self.sp.bos_id() >= 0 else ids

    def decode(self, ids):
        return self.sp.decode(ids)


class Gpt2Files:
    """GPT-2's original encoder.json + vocab.bpe, through the `tokenizers` pipeline that
    GPT2TokenizerFast builds from them: BPE + ByteLevel(add_prefix_space=False) pre-tokenizer and
    decoder, <|endoftext|> as a special token. (transformers 5's GPT2Tokenizer(vocab_file,
    merges_file) returned empty encodings for these files, so it is not used.)"""

    def __init__(self, vocab, merges):
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
        t = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()
        t.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
        self.tok = t
        self.reference = "tokenizers: BPE.from_file(encoder.json, vocab.bpe) + ByteLevel, <|endoftext|> special"

    def encode(self, s, special):
        return self.tok.encode(s, add_special_tokens=special).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("out")
    ap.add_argument("--strings", default=str(Path(__file__).resolve().parent.parent /
                                             "tests/fixtures/tokenizers/strings.json"))
    ap.add_argument("--only", default="", help="comma list of tokenizer names to make")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    strings = json.loads(Path(args.strings).read_text(encoding="utf-8"))["strings"]
    corpora = {p.name: p.read_bytes().decode("utf-8") for p in sorted((shared / "corpora").glob("*"))}

    jobs = []
    for name in ("gpt2-mini", "pythia-mini", "qwen2-mini", "llama-mini"):
        p = shared / "models" / name / "tokenizer.json"
        if p.exists():
            jobs.append((name, "tokenizer.json", lambda p=p: HfJson(p)))
    p = shared / "models/llama-mini/tokenizer.model"
    if p.exists():
        jobs.append(("llama-mini-spm", "sentencepiece", lambda p=p: Spm(p)))
    p = shared / "tokenizers/llama2/tokenizer.model"
    if p.exists():
        jobs.append(("llama2-spm", "sentencepiece", lambda p=p: Spm(p)))
    g = shared / "tokenizers/gpt2"
    if (g / "encoder.json").exists():
        jobs.append(("gpt2-50257", "gpt2 vocab+merges",
                     lambda: Gpt2Files(g / "encoder.json", g / "vocab.bpe")))

    only = set(filter(None, args.only.split(",")))
    for name, kind, make in jobs:
        if only and name not in only:
            continue
        tok = make()
        cases = []
        for s in strings:
            ids = tok.encode(s, False)
            ids_special = tok.encode(s, True)
            cases.append({"text": s, "ids": ids, "ids_special": ids_special,
                          "decoded": tok.decode(ids)})
        corp = {}
        for cname, text in corpora.items():
            t0 = time.perf_counter()
            ids = tok.encode(text, True)
            dt = time.perf_counter() - t0
            corp[cname] = {"n_tokens": len(ids), "sha256_int32le": sha_ids(ids), "head": ids[:48],
                           "tail": ids[-48:], "seconds": round(dt, 4), "bytes": len(text.encode())}
            if cname == "wikitext2-test.raw":
                corp[cname]["decode_roundtrip"] = tok.decode(ids) == text
        doc = {"name": name, "kind": kind, "reference": tok.reference, "versions": versions(),
               "cases": cases, "corpora": corp}
        (out / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{name}: {len(cases)} cases, corpora " +
              ", ".join(f"{k}={v['n_tokens']} ({v['seconds']}s)" for k, v in corp.items()), flush=True)


if __name__ == "__main__":
    main()
