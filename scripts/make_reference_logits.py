#!/usr/bin/env python3
"""Reference outputs of the real shared models (../shared/models), for the `model` test tier.
Run where transformers is installed (the GPU machine), float32, eager attention.

usage: make_reference_logits.py MODELS_DIR CORPUS OUT_DIR [--tokens 256] [--only a,b]

For each model directory it writes OUT_DIR/<model>.safetensors with
  input_ids [T] int64      the first T tokens of CORPUS (the model's tokenizer, its own template;
                           stories260K: BOS + a fixed id sequence)
  logits_at [P, V]         full logits at positions `positions`
  positions [P] int64
  nll [T-1]                per-target negative log-likelihood
  argmax [T] int64
and OUT_DIR/<model>.json with versions and, for stories260K, HF greedy decoding from BOS.
"""
import argparse
import json
import sys
from pathlib import Path

import torch


def main():
    import safetensors.torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("models")
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = Path(args.corpus).read_bytes().decode("utf-8")[:20000]
    only = set(filter(None, args.only.split(",")))
    for d in sorted(Path(args.models).iterdir()):
        if not (d / "config.json").exists() or (only and d.name not in only):
            continue
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                     attn_implementation="eager").eval()
        meta = {"model": d.name, "torch": torch.__version__, "transformers": transformers.__version__,
                "dtype": "float32", "attention": "eager", "corpus": Path(args.corpus).name}
        if (d / "tokenizer.model").exists():
            # llama-mini's tokenizer.json is a stub (3-token vocab); its real tokenizer is the
            # SentencePiece model (8000 pieces = vocab_size). BOS first, as Llama's template.
            import sentencepiece as spm
            sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
            ids = ([sp.bos_id()] + sp.encode(text))[: args.tokens]
            meta["input"] = f"first {len(ids)} tokens of {Path(args.corpus).name} (sentencepiece tokenizer.model, BOS first)"
        elif (d / "tokenizer.json").exists():
            tok = AutoTokenizer.from_pretrained(d)
            ids = tok(text, add_special_tokens=True)["input_ids"][: args.tokens]
            meta["input"] = f"first {len(ids)} tokens of {Path(args.corpus).name}, add_special_tokens=True"
        else:
            g = torch.Generator().manual_seed(7)
            ids = [1] + torch.randint(3, model.config.vocab_size, (args.tokens - 1,), generator=g).tolist()
            meta["input"] = "BOS then torch.randint(3, vocab, seed 7)"
        ids_t = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=ids_t).logits[0].float()
        T = len(ids)
        positions = torch.tensor(sorted({0, 1, 17, T // 2, T - 1}))
        logp = torch.log_softmax(logits, -1)
        nll = -logp[:-1].gather(1, ids_t[0, 1:, None])[:, 0]
        tensors = {"input_ids": ids_t[0].contiguous(), "positions": positions,
                   "logits_at": logits[positions].contiguous(), "nll": nll.contiguous(),
                   "argmax": logits.argmax(-1).contiguous()}
        safetensors.torch.save_file(tensors, str(out / f"{d.name}.safetensors"))
        meta["mean_nll"] = float(nll.mean())
        if d.name.startswith("stories"):
            with torch.no_grad():
                gen = model.generate(torch.tensor([[1]]), max_new_tokens=60, do_sample=False,
                                     eos_token_id=None, pad_token_id=0)
            meta["greedy_from_bos"] = gen[0].tolist()
        (out / f"{d.name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(d.name, "T", T, "mean nll", meta["mean_nll"], flush=True)


if __name__ == "__main__":
    main()
