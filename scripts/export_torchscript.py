#!/usr/bin/env python3
"""Export a Hugging Face causal LM (a checkpoint directory or a hub name) to a csa TorchScript
archive `model.pt` (docs/model-formats.md):

  * every weight is a parameter of nested submodules named after its Hugging Face state-dict name
    ("model.layers.0.self_attn.q_proj.weight" is attribute `weight` of submodule
    model -> layers -> 0 -> self_attn -> q_proj), stored in the checkpoint's own dtype unless
    --dtype says otherwise; a tied lm_head is not stored (tie_word_embeddings says so);
  * extra files: config.json (the HF config), the tokenizer files, csa_manifest.json
    {format: "csa-torchscript", format_version: 1, name, source, dtype, producer, torch, transformers}.

The archive loads in csa (any libtorch: csa reads the pickled module tree, not its code) and in
torch.jit.load of torch 1.13 and 2.x.

usage: export_torchscript.py SRC OUT.pt [--dtype keep|float32|bfloat16|float16] [--name NAME]
"""
import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

TOKENIZER_FILES = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                   "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt",
                   "added_tokens.json"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CsaWeights(torch.nn.Module):
    """Root of the exported module tree. Carries weights only: csa's decoder runs the model."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids


def build_tree(state, root):
    for name, tensor in state.items():
        parts = name.split(".")
        node = root
        for p in parts[:-1]:
            child = node._modules.get(p)
            if child is None:
                child = torch.nn.Module()
                node.add_module(p, child)
            node = child
        node.register_parameter(parts[-1], torch.nn.Parameter(tensor.detach().clone(),
                                                              requires_grad=False))
    return root


def tokenizer_files(src, workdir):
    src_path = Path(src)
    files = {}
    if src_path.is_dir():
        for n in TOKENIZER_FILES:
            if (src_path / n).exists():
                files[n] = (src_path / n).read_bytes()
    if "tokenizer.json" not in files and "tokenizer.model" not in files:
        try:
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(src)
            tok.save_pretrained(workdir)
            for n in TOKENIZER_FILES:
                p = Path(workdir) / n
                if p.exists():
                    files[n] = p.read_bytes()
        except Exception as e:  # noqa: BLE001
            print(f"warning: no tokenizer exported ({e})")
    return files


def export(src, out, dtype="keep", name=None):
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(src)
    kwargs = {"dtype": "auto"} if dtype == "keep" else {"dtype": DTYPES[dtype]}
    try:
        model = AutoModelForCausalLM.from_pretrained(src, **kwargs)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        kwargs = {"torch_dtype": kwargs["dtype"]}
        model = AutoModelForCausalLM.from_pretrained(src, **kwargs)
    state = model.state_dict()
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if tied:
        for head in ("lm_head.weight", "embed_out.weight"):
            state.pop(head, None)
    stored = {str(t.dtype).replace("torch.", "") for t in state.values()}
    root = torch.jit.script(build_tree(state, CsaWeights()))
    manifest = {
        "format": "csa-torchscript", "format_version": 1,
        "name": name or Path(str(src).rstrip("/")).name, "source": str(src),
        "dtype": sorted(stored)[0] if len(stored) == 1 else sorted(stored),
        "producer": "scripts/export_torchscript.py", "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    with tempfile.TemporaryDirectory() as work:
        extra = {"config.json": config.to_json_string(use_diff=False),
                 "csa_manifest.json": json.dumps(manifest, indent=2)}
        extra.update(tokenizer_files(src, work))
        tmp = str(out) + ".tmp"
        torch.jit.save(root, tmp, _extra_files=extra)
        os.replace(tmp, out)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="Hugging Face checkpoint directory or hub name")
    ap.add_argument("out", help="output model.pt")
    ap.add_argument("--dtype", default="keep", choices=["keep", *DTYPES])
    ap.add_argument("--name", default=None, help="model name recorded in the manifest")
    args = ap.parse_args()
    m = export(args.src, args.out, args.dtype, args.name)
    print(json.dumps(m))


if __name__ == "__main__":
    main()
