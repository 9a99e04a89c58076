#!/usr/bin/env python3
"""Tabulates scripts/quality_refine.sh runs (results/quality/refine) next to an earlier run of the
same models (BEFORE, default DIR's parent: results/quality, the protocol without learnt band
weights): sweep-slice reads at dense-matching quality, the advantage over uniform top-k of the same
sweep, the whole-test-set check and each run's wall time.
  python3 scripts/quality_refine_report.py [DIR] [BEFORE]      -> DIR/summary.md
  python3 scripts/quality_refine_report.py results/quality/refine65k results/quality/refine"""
import json
import os
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "results/quality/refine"
OLD = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(D.rstrip("/")), "")


def load(p):
    with open(p) as f:
        return json.load(f)


def best(sweep):
    b = (sweep or {}).get("best") or {}
    return b.get("reads_fraction")


def pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


def probes(sweep):
    """The levels a sweep tried, in order: ✓ matched dense, ✗ missed."""
    ax = sweep["axis"]
    return " ".join(f"{p[ax]}{'✓' if p['matches_dense'] else '✗'}" for p in sweep["probes"])


def below_bracket(sweep):
    """Whether a sweep probed below its bracket as it stood (under the largest miss below the
    smallest match), as the refine does; a sweep that stops at its bracket never does."""
    ax, seen = sweep["axis"], []
    for p in sweep["probes"]:
        hi = min([q[ax] for q in seen if q["matches_dense"]], default=None)
        lo = max([q[ax] for q in seen if not q["matches_dense"] and hi is not None and q[ax] < hi], default=None)
        if lo is not None and p[ax] < lo:
            return "yes"
        seen.append(p)
    return "no"


def ntok(sweep):
    """Sweep tokens in all (every slice)."""
    return sum(sl.get("tokens", 0) for sl in sweep.get("slices") or [sweep.get("slice") or {}])


def wall(j):
    w = (j or {}).get("run", {}).get("wall_seconds")
    return "—" if w is None else f"{w / 60:.1f} min"


def test_check(e):
    """The policy's and uniform's (Δppl, worst bucket) on the test set, as one cell."""
    if not e:
        return "—"
    cells = []
    for r in e["runs"]:
        c = r["comparison"]
        lab = "policy" if r.get("role") == "policy" or r.get("policy_path") else r["label"]
        cells.append(f"{lab} {100 * c['delta_rel']:+.2f}% / {100 * c['max_bucket_worsening_rel']:+.2f}%")
    return "; ".join(cells)


rows, evals, uni_probes, vs_before, slice_tokens, levels = [], [], [], [], set(), set()
for name in sorted(os.listdir(D)):
    if not name.endswith(".sweep.json"):
        continue
    label = name[: -len(".sweep.json")]
    s = load(os.path.join(D, name))
    levels.add(s.get("criteria", {}).get("confidence", 0))
    cands = s.get("candidates") or [{"rule": s["rule"], "sweep": s["policy_sweep"]}]
    parts = []
    for c in cands:
        r = c["rule"]
        tag = r["rule"] + ":" + r.get("metric", "") + ("" if r.get("banded", True) else "+unbanded")
        sw = c["sweep"]
        parts.append(f"{tag} {pct(best(sw))} ({len(sw['probes'])} passes)")
    u = best(s.get("uniform_sweep"))
    pol = best(s["policy_sweep"])
    old_p = os.path.join(OLD, f"{label}.sweep.json")
    old = load(old_p) if os.path.exists(old_p) else None
    old_pol = best(old["policy_sweep"]) if old else None
    old_u = best(old.get("uniform_sweep")) if old else None
    dev = (s.get("run") or {}).get("device", "?")
    slice_tokens.add(ntok(s))
    ev = os.path.join(D, f"{label}.eval.json")
    e = load(ev) if os.path.exists(ev) else None
    old_ev = os.path.join(OLD, f"{label}.eval.json")
    old_e = load(old_ev) if old and os.path.exists(old_ev) else None
    if old:
        ou = old.get("uniform_sweep") or {}
        ratio = f"{u / pol:.2f}×" if pol and u else "—"
        old_ratio = f"{old_u / old_pol:.2f}×" if old_pol and old_u else "—"
        vs_before.append(
            f"| {label} | {ntok(old):,} → {ntok(s):,} | "
            f"{pct(old_pol)} → {pct(pol)} | k={ou.get('best_cap')} {pct(old_u)} → k={s['uniform_sweep'].get('best_cap')} {pct(u)} | "
            f"{old_ratio} → {ratio} | {len(old['policy_sweep']['probes'])} → {len(s['policy_sweep']['probes'])} | "
            f"{test_check(old_e)} → {test_check(e)} | sweep {wall(old)} → {wall(s)}; eval {wall(old_e)} → {wall(e)} |"
        )
    rows.append(
        f"| {label} ({dev}) | {'; '.join(parts)} | {s['chosen']} {pct(pol)} | uniform k={s['uniform_sweep'].get('best_cap')} "
        f"{pct(u)} | {u / pol:.2f}× | {pct(old_pol)} vs {pct(old_u)} |"
        if pol and u
        else f"| {label} ({dev}) | {'; '.join(parts)} | {s['chosen']} | {pct(u)} | — | — |"
    )
    uni_probes.append(f"| {label} | {probes(s['uniform_sweep'])} | {below_bracket(s['uniform_sweep'])} |")
    if e:
        for r in e["runs"]:
            c = r["comparison"]
            lab = "policy (swept)" if r.get("role") == "policy" or r.get("policy_path") else r["label"]
            evals.append(
                f"| {label} | {lab} | {100 * c['delta_rel']:+.2f}% | {100 * c['max_bucket_worsening_rel']:+.2f}% | "
                f"{pct(r['reads']['query_side_fraction'])} | {'yes' if c['delta_rel'] <= 0.005 and c['max_bucket_worsening_rel'] <= 0.01 else 'no'} |"
            )

out = [
    "# Sweeps with learnt position-band weights",
    "",
    "Generated by `scripts/quality_refine_report.py` from the JSON beside it (`scripts/quality_refine.sh`; "
    "the device of each run beside the model, commands recorded in each file). Sweep slice: "
    + " / ".join(f"{t:,}" for t in sorted(slice_tokens))
    + " tokens of wikitext2-valid after the 10k "
    "calibration tokens; criteria 0.5% ppl, 1% per position bucket"
    + ("".join(f" (one-sided {100 * c:g}% upper confidence bounds in the sweep)" for c in sorted(levels) if c)
       if any(levels) else " (point estimates)")
    + ". 'Before': the same model's run in "
    + (f"{OLD.rstrip('/')}" if len(sys.argv) > 2 else "results/quality (fixed band weights)")
    + ", policy vs uniform reads.",
    "",
    "| model | candidates: reads at match (passes) | chosen | uniform (same sweep) | × fewer reads | before: policy vs uniform |",
    "|---|---|---|---|---|---|",
    *rows,
    "",
    "## Uniform top-k's probes (k in the order tried; ✓ matches dense, ✗ misses)",
    "",
    "Since the refine applies to every axis (docs/metrics.md \"Sweep\"), uniform's k gets the same "
    "search below its smallest matching level as the policy's reads: a step below it, lower after a "
    "match, half the step after a miss, two misses in a row end it (`--refine-passes`). Runs made "
    "before that stop at their bracket.",
    "",
    "| model | uniform k probed | searched below its bracket |",
    "|---|---|---|",
    *uni_probes,
    "",
    *(
        [
            f"## Against {OLD.rstrip('/')}",
            "",
            "| model | sweep tokens | policy reads | uniform (same sweep) | × fewer reads | policy passes | test Δppl / worst bucket | wall time |",
            "|---|---|---|---|---|---|---|---|",
            *vs_before,
            "",
        ]
        if vs_before and len(sys.argv) > 2
        else []
    ),
    "## Whole WikiText-2 test (csa-eval)",
    "",
    "| model | run | Δppl | worst bucket | reads | matches |",
    "|---|---|---|---|---|---|",
    *evals,
    "",
]
with open(os.path.join(D, "summary.md"), "w") as f:
    f.write("\n".join(out))
print("\n".join(out))
