#!/usr/bin/env python3
"""Golden model fixtures from the reference implementation (Hugging Face transformers, eager
attention, float32). Run where transformers is installed (the GPU machine; CPU is enough).

usage: make_fixtures.py OUT_DIR [--seed 0]

For each tiny random-weight model below it writes OUT_DIR/<name>/:
  config.json, model.safetensors   the Hugging Face checkpoint (save_pretrained)
  legacy_config.json               the same config in the older layout (rope_theta/rope_scaling/
                                   torch_dtype, rotary_pct), where the family has one
  model.pt                         scripts/export_torchscript.py's archive
  traced.pt                        torch.jit.trace of the HF model (a user's archive; needs --config)
  expected.safetensors             input_ids [2, T] (int64), logits [2, T, V], attn.<l> [2, H, T, T]
and OUT_DIR/manifest.json with versions, seeds and what each fixture covers.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_torchscript import export  # noqa: E402

V, T = 96, 24


def rope(theta, rope_type="default", **extra):
    return dict(rope_type=rope_type, rope_theta=theta, **extra)


# name -> (config class, kwargs, rope parameters or None, what it covers)
TINY = {
    "gpt2-tiny": ("GPT2Config", dict(n_layer=2, n_head=4, n_embd=32, n_positions=64, vocab_size=V,
                                     activation_function="gelu_new", tie_word_embeddings=True),
                  None, "learned positions, Conv1D transpose, fused c_attn, tied head, gelu_new"),
    "neox-tiny": ("GPTNeoXConfig", dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                                        intermediate_size=96, vocab_size=V, max_position_embeddings=64,
                                        use_parallel_residual=True, tie_word_embeddings=False,
                                        hidden_act="gelu"),
                  rope(10000.0, partial_rotary_factor=0.25),
                  "partial rotary 25%, parallel residual, per-head fused qkv, untied embed_out, gelu"),
    "neox-seq-tiny": ("GPTNeoXConfig", dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                                            intermediate_size=80, vocab_size=V,
                                            max_position_embeddings=64, use_parallel_residual=False,
                                            tie_word_embeddings=False, hidden_act="gelu_new"),
                      rope(10000.0, partial_rotary_factor=0.5),
                      "partial rotary 50%, sequential residual"),
    "qwen2-tiny": ("Qwen2Config", dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                       num_hidden_layers=2, intermediate_size=96, vocab_size=V,
                                       max_position_embeddings=64, tie_word_embeddings=True,
                                       rms_norm_eps=1e-6),
                   rope(1000000.0), "GQA 4:2, q/k/v bias, no o bias, tied, RMSNorm, SwiGLU"),
    "llama-tiny": ("LlamaConfig", dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                       num_hidden_layers=2, intermediate_size=96, vocab_size=V,
                                       max_position_embeddings=64, tie_word_embeddings=False,
                                       rms_norm_eps=1e-5),
                   rope(10000.0, "llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                        original_max_position_embeddings=32),
                   "GQA 4:2, llama3 rope scaling (high/medium/low bands), untied"),
    "llama-linear-tiny": ("LlamaConfig", dict(hidden_size=64, num_attention_heads=4,
                                              num_key_value_heads=4, head_dim=24,
                                              num_hidden_layers=2, intermediate_size=72,
                                              vocab_size=V, max_position_embeddings=64,
                                              tie_word_embeddings=True, attention_bias=True,
                                              mlp_bias=True, rms_norm_eps=1e-5),
                          rope(500000.0, "linear", factor=2.0),
                          "explicit head_dim != hidden/heads, linear rope scaling, all biases, tied"),
}


def make_config(cls_name, kwargs, rope_params):
    import transformers
    cls = getattr(transformers, cls_name)
    if rope_params is None:
        return cls(**kwargs)
    try:
        cfg = cls(**kwargs, rope_parameters=dict(rope_params))
    except TypeError:  # older transformers: rope_theta + rope_scaling (+ rotary_pct)
        legacy = dict(kwargs, rope_theta=rope_params["rope_theta"])
        if "partial_rotary_factor" in rope_params:
            legacy["rotary_pct"] = rope_params["partial_rotary_factor"]
        if rope_params["rope_type"] != "default":
            legacy["rope_scaling"] = {k: v for k, v in rope_params.items() if k != "rope_theta"}
        cfg = cls(**legacy)
    return cfg


def legacy_layout(config_json):
    """The same model described in the older config layout."""
    c = dict(config_json)
    rp = c.pop("rope_parameters", None)
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    if rp is None:
        return c
    if c.get("model_type") == "gpt_neox":
        c["rotary_emb_base"] = rp.get("rope_theta", 10000.0)
        c["rotary_pct"] = rp.get("partial_rotary_factor", 1.0)
    else:
        c["rope_theta"] = rp.get("rope_theta", 10000.0)
        if rp.get("partial_rotary_factor") is not None:
            c["partial_rotary_factor"] = rp["partial_rotary_factor"]
    if rp.get("rope_type", "default") != "default":
        sc = {k: v for k, v in rp.items() if k not in ("rope_theta", "partial_rotary_factor", "rope_type")}
        sc["type"] = rp["rope_type"]
        c["rope_scaling"] = sc
    return c


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name or "ln" in name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen) if name.endswith("weight")
                        else 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def main():
    import safetensors.torch
    import transformers
    from transformers import AutoModelForCausalLM

    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": "scripts/make_fixtures.py", "seed": args.seed,
                "torch": torch.__version__, "transformers": transformers.__version__,
                "python": sys.version.split()[0], "attention": "eager", "dtype": "float32",
                "input_shape": [2, T], "fixtures": {}}
    for i, (name, (cls_name, kwargs, rope_params, covers)) in enumerate(TINY.items()):
        d = out / name
        d.mkdir(exist_ok=True)
        torch.manual_seed(args.seed + i)
        gen = torch.Generator().manual_seed(args.seed + 100 + i)
        cfg = make_config(cls_name, kwargs, rope_params)
        model = AutoModelForCausalLM.from_config(cfg).float().eval()
        randomize(model, gen)
        if getattr(cfg, "tie_word_embeddings", False):
            model.tie_weights()
        model.save_pretrained(d, safe_serialization=True)
        cfg_json = json.loads((d / "config.json").read_text())
        if "rope_parameters" in cfg_json or "dtype" in cfg_json:
            (d / "legacy_config.json").write_text(json.dumps(legacy_layout(cfg_json), indent=2))
        export(str(d), d / "model.pt", name=name)

        ref = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager",
                                                   dtype=torch.float32).eval()
        ids = torch.randint(0, V, (2, T), generator=gen)
        with torch.no_grad():
            res = ref(input_ids=ids, output_attentions=True)
        tensors = {"input_ids": ids.contiguous(), "logits": res.logits.float().contiguous()}
        for l, a in enumerate(res.attentions):
            tensors[f"attn.{l}"] = a.float().contiguous()
        safetensors.torch.save_file(tensors, str(d / "expected.safetensors"))

        traced_note = "ok"
        try:
            tr_model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                            attn_implementation="eager").eval()
            tr_model.config.use_cache = False
            with torch.no_grad():
                traced = torch.jit.trace(tr_model, (ids,), strict=False, check_trace=False)
            traced.save(str(d / "traced.pt"))
        except Exception as e:  # noqa: BLE001
            traced_note = f"trace failed: {type(e).__name__}: {e}"[:500]
        manifest["fixtures"][name] = {"class": cls_name, "covers": covers, "traced": traced_note,
                                      "max_abs_logit": float(res.logits.abs().max())}
        print(name, manifest["fixtures"][name], flush=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
