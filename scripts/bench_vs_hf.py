#!/usr/bin/env python3
"""The Python original's way, as the peer for csa-eval (issue: performance vs the original).

Evaluates a model on a token stream with the sliding-window protocol csa uses (ctx, stride,
batch 1 per window as the Hugging Face perplexity recipe does), in Hugging Face transformers,
float32, with
  * eager attention, dense                           (label hf-eager-dense)
  * SDPA attention, dense                            (label hf-sdpa-dense)
  * eager attention with a per-(layer, head) top-k mask applied inside attention, the way the
    original CSA code patches HF eager attention    (label hf-eager-topk)
and reports ppl and tokens/s (tokens processed = the sum of window lengths, as csa-eval counts).

usage: bench_vs_hf.py MODEL_DIR IDS_JSON POLICY_JSON --ctx 2048 --stride 1024 --out hf.json
IDS_JSON: a JSON array of token ids (e.g. from `csa-tokenize MODEL corpus`), so both tools score
exactly the same stream. Runs on CUDA when available.
"""
import argparse
import json
import math
import platform
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AttentionInterface


def plan_windows(n, ctx, stride):
    out, prev_end, begin = [], 0, 0
    while begin < n:
        end = min(begin + ctx, n)
        trg = end - prev_end
        first = max(1, (end - begin) - trg)
        if end - begin >= 2:
            out.append((begin, end, first))
        prev_end = end
        if end == n:
            break
        begin += stride
    return out


BUDGETS = {}  # layer -> LongTensor [H] on device


def topk_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """HF eager attention + a per-head top-k mask on the scores (the original's patch)."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    T, S = scores.shape[-2], scores.shape[-1]
    causal = torch.ones(T, S, dtype=torch.bool, device=scores.device).triu(S - T + 1)
    scores = scores.masked_fill(causal, float("-inf"))
    k = BUDGETS.get(module.layer_idx)
    if k is not None:
        kmax = int(min(int(k.max()), S))
        idx = scores.topk(kmax, dim=-1).indices
        rank_ok = torch.arange(kmax, device=scores.device).view(1, 1, 1, kmax) < k.view(1, -1, 1, 1)
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, rank_ok.expand_as(idx))
        scores = scores.masked_fill(~keep, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


AttentionInterface.register("csa_topk", topk_attention)


def evaluate(model, ids, windows, device):
    nll, count, tokens = 0.0, 0, 0
    with torch.no_grad():
        b, e, _ = windows[0]
        model(ids[b:e].unsqueeze(0).to(device))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for b, e, first in windows:
            x = ids[b:e].unsqueeze(0).to(device)
            logits = model(x).logits[0].float()
            lp = torch.log_softmax(logits[first - 1:-1], dim=-1)
            tgt = x[0, first:]
            nll += float(-lp.gather(1, tgt.unsqueeze(1)).sum())
            count += int(tgt.numel())
            tokens += e - b
        if device.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
    return {"ppl": math.exp(nll / count), "scored_targets": count, "tokens_processed": tokens,
            "wall_seconds": secs, "tokens_per_second": tokens / secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ids")
    ap.add_argument("policy")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--stride", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    stride = a.stride or a.ctx // 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ids = torch.tensor(json.load(open(a.ids)), dtype=torch.long)
    if a.max_tokens:
        ids = ids[: a.max_tokens]
    windows = plan_windows(len(ids), a.ctx, stride)
    policy = json.load(open(a.policy))
    budgets = policy["budgets"]

    runs = []
    for label, impl, use_policy in [("hf-eager-dense", "eager", False), ("hf-sdpa-dense", "sdpa", False),
                                    ("hf-eager-topk", "csa_topk", True)]:
        model = AutoModelForCausalLM.from_pretrained(a.model, attn_implementation=impl,
                                                     dtype=torch.float32).to(device).eval()
        BUDGETS.clear()
        if use_policy:
            H = model.config.num_attention_heads
            for l, row in enumerate(budgets):
                # A banded policy lists [H][bands] per layer (flattened): the peer applies each
                # head's largest band budget at every position (the same top-k work per row).
                k = torch.tensor(row, dtype=torch.long, device=device).view(H, -1).amax(1)
                BUDGETS[l] = k
        r = evaluate(model, ids, windows, device)
        r["label"] = label
        r["attn_implementation"] = impl
        runs.append(r)
        print(label, json.dumps(r), flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    out = {"kind": "hf-reference-bench", "model": a.model, "ctx": a.ctx, "stride": stride,
           "batch": 1, "tokens": len(ids), "windows": len(windows), "policy": a.policy,
           "policy_k_max": policy.get("k_max"), "runs": runs,
           "command": " ".join(sys.argv),
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "python": platform.python_version()},
           "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor()}
    json.dump(out, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
