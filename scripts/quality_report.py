#!/usr/bin/env python3
"""Summarises results/quality (written by scripts/quality.sh through scripts/gpu/run_quality.sh)
into results/quality/summary.json, summary.md and plots:
  reads_vs_dppl.png      every sweep probe of every candidate rule and of uniform top-k, per model:
                         reads vs the worst position bucket's change (the binding criterion; its
                         upper confidence bound where the sweep bounds its verdicts);
  budgets.png            per-(layer, head) budget per position band of each swept policy;
  need_curves.MODEL.png  the calibrated need curves (mean relative output error vs budget, one line
                         per position band), one small panel per (layer, head);
  per_position_delta.png the test-set change per position bucket, policy vs uniform top-k.
results/quality/rules (the rule exploration, scripts/quality_rules.sh) is tabulated too.
Uses Debian's python3-matplotlib / python3-numpy.
usage: /usr/bin/python3 scripts/quality_report.py [results/quality]"""
import glob
import gzip
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

D = sys.argv[1] if len(sys.argv) > 1 else "results/quality"
MODELS = ["gpt2-mini", "pythia-mini", "qwen2-mini", "llama-mini"]
TEXTS = ["wikitext2-test", "code-heldout-2", "docs-heldout"]


def load(p):
    """A JSON file, or None; swept policies are stored gzipped (p + ".gz")."""
    if os.path.exists(p):
        return json.load(open(p))
    if os.path.exists(p + ".gz"):
        return json.load(gzip.open(p + ".gz", "rt"))
    return None


def best(sweep):
    b = (sweep or {}).get("best") or {}
    return b.get("reads_fraction"), b.get("kv_reads_fraction")


def short(label):
    return label.replace("/tmp/csa-quality/quality/", "")


def chosen_rule(policy):
    a = (policy or {}).get("allocation") or {}
    if not a:
        return None
    name = a.get("rule", "?")
    if "metric" in a and a.get("scalar") == "reads":
        name += ":" + a["metric"] + ("" if a.get("banded", True) else "+unbanded") + \
            ("+kv" if a.get("kv_aware") else "")
    elif a.get("rule") == "power":
        name += f"({a.get('alpha')})"
    return name


summary = {"models": {}}
for m in MODELS:
    sw = load(f"{D}/{m}.sweep.json")
    if not sw:
        continue
    uni = sw.get("uniform_sweep") or {}
    ur, ukv = best(uni)
    e = {"uniform": {"k": uni.get("best_cap"), "reads": ur, "kv_reads": ukv},
         "candidates": [], "chosen": sw.get("chosen"),
         "chosen_rule": chosen_rule(load(f"{D}/{m}.swept.json")),
         "advantage": sw.get("reads_advantage_vs_uniform"),
         "kv_advantage": sw.get("kv_reads_advantage_vs_uniform"),
         "sweep_passes": sw.get("forward_passes")}
    for c in sw.get("candidates", []):
        r, kv = best(c["sweep"])
        e["candidates"].append({"rule": c["sweep"]["label"].replace("policy ", ""), "reads": r,
                                "kv_reads": kv, "passes": c["sweep"].get("sparse_forward_passes")})
    kvs = load(f"{D}/{m}.kv.sweep.json")
    if kvs:
        e["kv_aware"] = [{"rule": c["sweep"]["label"].replace("policy ", ""),
                          "reads": best(c["sweep"])[0], "kv_reads": best(c["sweep"])[1]}
                         for c in kvs.get("candidates", [])]
    mx = load(f"{D}/{m}.mixed.sweep.json")
    if mx:
        e["mixed"] = [{"rule": c["sweep"]["label"].replace("policy ", ""),
                       "reads": best(c["sweep"])[0]} for c in mx.get("candidates", [])]
    e["eval"] = {}
    for t in TEXTS:
        ev = load(f"{D}/{m}.eval.{t}.json")
        if not ev:
            continue
        e["eval"][t] = {"dense_ppl": ev["dense"]["ppl"], "targets": ev["dense"]["scored_targets"],
                        "runs": [{"label": short(r["label"]), "ppl": r["ppl"],
                                  "delta_rel": r["comparison"]["delta_rel"],
                                  "worst_bucket": r["comparison"]["max_bucket_worsening_rel"],
                                  "bucket_delta_rel": r["comparison"]["bucket_delta_rel"],
                                  "reads": r["reads"]["query_side_fraction"],
                                  "kv_reads": r["reads"]["kv_side_fraction"],
                                  "matches_dense": r["comparison"]["matches_dense"]}
                                 for r in ev["runs"]]}
    summary["models"][m] = e

# The rule exploration: every rule's sweep on the same slice, with uniform from the same run.
# MODEL.uniform.sweep.json is the run's first sweep, the one that also swept uniform top-k.
rules = {}
for f in sorted(glob.glob(f"{D}/rules/*.sweep.json")):
    name = os.path.basename(f)[:-len(".sweep.json")]
    m, rule = name.split(".", 1)
    if rule == "uniform":
        continue
    d = load(f)
    ps = d.get("policy_sweep") or {}
    r, kv = best(ps)
    u = load(f"{D}/rules/{m}.uniform.sweep.json") or {}
    rules.setdefault(m, {})[rule] = {"reads": r, "kv_reads": kv,
                                     "passes": ps.get("sparse_forward_passes"),
                                     "uniform_reads": best(u.get("uniform_sweep"))[0],
                                     "uniform_kv_reads": best(u.get("uniform_sweep"))[1],
                                     "command": d["run"]["command"]}
summary["rules"] = rules
json.dump(summary, open(f"{D}/summary.json", "w"), indent=1)


def pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


md = ["# Quality: need-based policies vs uniform top-k", "",
      "Generated by `scripts/quality_report.py` from the JSON beside it (commands recorded in each "
      "file). Sweep slice: 32,768 tokens of wikitext2-valid after the 10k calibration tokens; "
      "criteria 0.5% ppl, 1% per position bucket (16 buckets).", "",
      "## Sweep slice: fewest reads that match dense", "",
      "| model | uniform k | uniform reads (KV) | " + "candidate rules: reads at match" +
      " | chosen | × fewer reads than uniform (KV) |", "|---|---|---|---|---|---|"]
for m, e in summary["models"].items():
    cands = "; ".join(f"{c['rule']} {pct(c['reads'])}" for c in e["candidates"])
    md.append(f"| {m} | {e['uniform']['k']} | {pct(e['uniform']['reads'])} ({pct(e['uniform']['kv_reads'])}) "
              f"| {cands} | {e['chosen_rule'] if e['chosen'] == 'policy' else e['chosen']} | {e['advantage']:.2f}× ({e['kv_advantage']:.2f}×) |")
md += ["", "KV-aware variants (GQA; cost = the KV group's union):", ""]
for m, e in summary["models"].items():
    for c in e.get("kv_aware", []):
        md.append(f"- {m} {c['rule']}: query-side {pct(c['reads'])}, KV-side {pct(c['kv_reads'])} "
                  f"(uniform KV-side {pct(e['uniform']['kv_reads'])}: "
                  f"{e['uniform']['kv_reads'] / c['kv_reads']:.2f}× fewer)" if c['kv_reads'] else "")
md += ["", "## Whole texts (csa-eval)", "",
       "| model | text | run | Δppl | worst bucket | reads | KV reads | matches |",
       "|---|---|---|---|---|---|---|---|"]
for m, e in summary["models"].items():
    for t, ev in e["eval"].items():
        for r in ev["runs"]:
            md.append(f"| {m} | {t} | {r['label']} | {100 * r['delta_rel']:+.2f}% | "
                      f"{100 * r['worst_bucket']:+.2f}% | {pct(r['reads'])} | {pct(r['kv_reads'])} | "
                      f"{'yes' if r['matches_dense'] else 'no'} |")
if rules:
    md += ["", "## Rule exploration (results/quality/rules, scripts/quality_rules.sh)", "",
           "Reads at match on the sweep slice per rule; uniform from the same run.", "",
           "| model | rule | reads | uniform | × |", "|---|---|---|---|---|"]
    for m, rs in rules.items():
        for rule, r in sorted(rs.items(), key=lambda kv: kv[1]["reads"] or 9):
            u = r["uniform_reads"]
            x = f"{u / r['reads']:.2f}" if (u and r["reads"]) else "—"
            md.append(f"| {m} | {rule} | {pct(r['reads'])} | {pct(u)} | {x} |")
open(f"{D}/summary.md", "w").write("\n".join(md) + "\n")

# reads vs the binding criterion, every probe
ms = list(summary["models"])
fig, axes = plt.subplots(1, len(ms), figsize=(4.2 * len(ms), 3.6), squeeze=False)
for ax, m in zip(axes[0], ms):
    sw = load(f"{D}/{m}.sweep.json")
    series = [(c["sweep"]["label"].replace("policy ", ""), c["sweep"]) for c in sw["candidates"]]
    series.append(("uniform top-k", sw["uniform_sweep"]))
    for name, s in series:
        pr = sorted(s["probes"], key=lambda p: p["reads_fraction"])
        # the value the sweep judged: the upper confidence bound where it bounds, else the point
        ax.plot([100 * p["reads_fraction"] for p in pr],
                [100 * p.get("max_bucket_worsening_upper", p["max_bucket_worsening_rel"]) for p in pr],
                "o-" if "uniform" not in name else "s--",
                ms=3, lw=1, label=name, color="black" if "uniform" in name else None)
    ax.axhline(1.0, color="red", lw=0.8, ls=":")
    ax.set_xscale("log"); ax.set_yscale("symlog", linthresh=1)
    ax.set_title(m); ax.set_xlabel("% of dense reads (query side)")
    ax.set_ylabel("worst position bucket Δppl % (upper bound)")
    ax.legend(fontsize=6)
fig.suptitle("Sweep probes: reads vs worst bucket, the upper confidence bound the sweep judges "
             "(red: 1% tolerance)")
fig.tight_layout(); fig.savefig(f"{D}/reads_vs_dppl.png", dpi=110); plt.close(fig)

# budget heat maps per swept policy
pols = [(m, tag, load(f"{D}/{m}{tag}.swept.json")) for m in ms for tag in ["", ".kv", ".mixed"]]
pols = [p for p in pols if p[2]]
cols = 3
rows_n = (len(pols) + cols - 1) // cols
fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3.2 * rows_n), squeeze=False)
for ax in axes.flat:
    ax.axis("off")
for ax, (m, tag, p) in zip(axes.flat, pols):
    b = np.array(p["budgets"], dtype=float)  # [L][H][NB], or [L][H] with one band
    if b.ndim == 2:
        b = b[:, :, None]
    L, H, NB = b.shape
    ax.axis("on")
    im = ax.imshow(np.log2(b.reshape(L * H, NB)), aspect="auto", cmap="viridis")
    ax.set_xticks(range(NB)); ax.set_xticklabels(p.get("band_start", [0])[:NB], fontsize=6, rotation=90)
    ax.set_yticks([l * H for l in range(L)]); ax.set_yticklabels([f"L{l}" for l in range(L)], fontsize=6)
    a = p.get("allocation", {})
    ax.set_title(f"{m}{tag}: {a.get('rule')} {a.get('metric', '')} "
                 f"{'kv' if a.get('kv_aware') else ''}", fontsize=8)
    ax.set_xlabel("band start (query position)", fontsize=7)
    fig.colorbar(im, ax=ax, label="log2 budget")
fig.tight_layout(); fig.savefig(f"{D}/budgets.png", dpi=110); plt.close(fig)

# need curves, small multiples
for m in ms:
    p = load(f"{D}/{m}.swept.json")
    nc = (p or {}).get("need_curves")
    if not nc:
        continue
    err = np.array(nc["rel_err"])  # [L][H][NB][G]
    L, H, NB, G = err.shape
    fig, axes = plt.subplots(L, H, figsize=(1.9 * H, 1.5 * L), sharex=True, sharey=True, squeeze=False)
    colors = plt.cm.plasma(np.linspace(0, 0.9, NB))
    for l in range(L):
        for h in range(H):
            ax = axes[l][h]
            for b in range(NB):
                ax.plot(nc["grid"], np.maximum(err[l, h, b], 1e-4), color=colors[b], lw=0.8,
                        label=f"pos ≥ {nc['band_start'][b]}" if (l, h) == (0, 0) else None)
            ax.set_xscale("log"); ax.set_yscale("log"); ax.set_ylim(1e-3, 5)
            ax.tick_params(labelsize=5)
            ax.set_title(f"L{l} H{h}", fontsize=6)
    axes[0][0].legend(fontsize=4)
    fig.suptitle(f"{m}: mean relative output error vs budget k, per position band", fontsize=8)
    fig.tight_layout(); fig.savefig(f"{D}/need_curves.{m}.png", dpi=110); plt.close(fig)

# per-position change on the test text
fig, axes = plt.subplots(1, len(ms), figsize=(4.2 * len(ms), 3.2), squeeze=False)
for ax, m in zip(axes[0], ms):
    ev = summary["models"][m]["eval"].get("wikitext2-test")
    if not ev:
        continue
    for r in ev["runs"]:
        if r["label"].startswith("window"):
            continue
        ax.plot(100 * np.array(r["bucket_delta_rel"]), marker=".", lw=1,
                label=f"{r['label'][:38]} ({pct(r['reads'])})")
    ax.axhline(1.0, color="red", lw=0.8, ls=":"); ax.axhline(0, color="gray", lw=0.5)
    ax.set_title(f"{m}: WikiText-2 test"); ax.set_xlabel("position bucket (of 16)")
    ax.set_ylabel("Δppl %"); ax.legend(fontsize=5)
fig.tight_layout(); fig.savefig(f"{D}/per_position_delta.png", dpi=110); plt.close(fig)
print(f"wrote {D}/summary.json, summary.md and plots")
