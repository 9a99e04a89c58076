#!/usr/bin/env python3
"""results/gpu/pipeline (scripts/gpu/run_pipeline_speed.sh on the GPU machine, unpacked here) ->
results/gpu/pipeline/summary.json: issue 13's pipeline figures — whole-process seconds of
csa-calibrate and csa-sweep with their largest phases, csa-eval tokens/s (dense and the swept
policy, float32 and bfloat16; medians over the runs) and the Hugging Face peers'
(scripts/bench_vs_hf.py, float32; medians), with the ratios the issue's targets name (of medians).
A plot beside it (pipeline.png: the same tokens/s, every run as a dot).
usage: /usr/bin/python3 scripts/gpu/pipeline_speed_report.py [results/gpu/pipeline]"""
import glob
import os
import json
import statistics
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "results/gpu/pipeline"


def walls(tool):
    return [float(open(f).read()) for f in sorted(glob.glob(f"{D}/{tool}.*.wall"))]


def phases(tool):
    """The last run's phases of at least 10 ms (nested: forward/hidden holds forward/attention,
    which holds the observers), and per run the process's start-up before main and main's own
    seconds (profiles since the seventh session; the rest of the wall time is the exit)."""
    profiles = [json.load(open(f)) for f in sorted(glob.glob(f"{D}/{tool}.*.profile.json"))]
    p = profiles[-1]["phases"]
    out = {k: round(v["seconds"], 3)
           for k, v in sorted(p.items(), key=lambda x: -x[1]["seconds"]) if v["seconds"] >= 0.01}
    if all("process" in q for q in profiles):
        out["process/start_up_runs"] = [round(q["process"]["start_up_seconds"], 3) for q in profiles]
        out["process/main_runs"] = [round(q["process"]["main_seconds"], 3) for q in profiles]
    return out


out = {"device": open(f"{D}/environment.txt").read().strip(),
       "script": (open(f"{D}/invocation.txt").read().strip() if glob.glob(f"{D}/invocation.txt")
                  else "bash scripts/gpu/run_pipeline_speed.sh") +
                 f"; /usr/bin/python3 scripts/gpu/pipeline_speed_report.py {D}",
       "calibrate_seconds": walls("calibrate"), "calibrate_phases": phases("calibrate"),
       "sweep_seconds": walls("sweep"), "sweep_phases": phases("sweep")}
out["calibrate_median_seconds"] = statistics.median(out["calibrate_seconds"])
out["sweep_median_seconds"] = statistics.median(out["sweep_seconds"])
ev = {}
for dt in ("float32", "bfloat16"):
    es = [json.load(open(f)) for f in sorted(glob.glob(f"{D}/eval.{dt}.*.json"))]  # EVALS runs
    dense = [e["dense"]["tokens_per_second"] for e in es]
    pol = [e["runs"][0]["tokens_per_second"] for e in es]
    ev[dt] = {"dense_tokens_per_second": statistics.median(dense),
              "policy_tokens_per_second": statistics.median(pol),
              "dense_tokens_per_second_runs": dense, "policy_tokens_per_second_runs": pol,
              "policy_ppl": es[0]["runs"][0]["ppl"], "dense_ppl": es[0]["dense"]["ppl"],
              "command": es[0]["run"]["command"]}
hf_runs = {}
for f in sorted(glob.glob(f"{D}/hf_65536.*.json")):
    for r in json.load(open(f))["runs"]:
        hf_runs.setdefault(r["label"], []).append(r)
hf = {k: {"tokens_per_second": statistics.median(r["tokens_per_second"] for r in rs),
          "tokens_per_second_runs": [r["tokens_per_second"] for r in rs], "ppl": rs[0]["ppl"]}
      for k, rs in hf_runs.items()}
out["csa_eval"] = ev
out["hf"] = hf
peer = hf["hf-eager-topk"]["tokens_per_second"]
for dt in ev:
    ev[dt]["policy_over_hf_eager_topk"] = ev[dt]["policy_tokens_per_second"] / peer
    ev[dt]["policy_over_csa_dense"] = (ev[dt]["policy_tokens_per_second"] /
                                       ev[dt]["dense_tokens_per_second"])
json.dump(out, open(f"{D}/summary.json", "w"), indent=1)
print(json.dumps(out, indent=1))

# The plot beside it: tokens/s of csa (dense, policy; float32 and bfloat16) and the HF peers
# (float32), medians with every run as a dot, the ratios the targets name in the title.
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # the GPU machine's python may lack it; the JSON is the record
    sys.exit(0)
bars = [(f"csa dense {dt}", ev[dt]["dense_tokens_per_second"], ev[dt]["dense_tokens_per_second_runs"])
        for dt in ev] + \
       [(f"csa policy {dt}", ev[dt]["policy_tokens_per_second"], ev[dt]["policy_tokens_per_second_runs"])
        for dt in ev] + \
       [(k + " fp32", v["tokens_per_second"], v["tokens_per_second_runs"]) for k, v in sorted(hf.items())]
fig, ax = plt.subplots(figsize=(8, 3.6))
for i, (name, med, runs) in enumerate(bars):
    ax.barh(i, med / 1e3, color="tab:blue" if name.startswith("csa policy") else
            ("tab:gray" if name.startswith("csa") else "tab:orange"))
    ax.plot([r / 1e3 for r in runs], [i] * len(runs), "k.", ms=3)
ax.set_yticks(range(len(bars)))
ax.set_yticklabels([b[0] for b in bars], fontsize=8)
ax.set_xlabel("thousand tokens / s (median; dots: runs)")
ax.set_title(f"{os.path.basename(os.path.normpath(D))}: policy / HF eager-topk "
             f"{ev['float32']['policy_over_hf_eager_topk']:.2f}x (fp32); policy / dense "
             f"{ev['float32']['policy_over_csa_dense']:.2f}x fp32, "
             f"{ev['bfloat16']['policy_over_csa_dense']:.2f}x bf16", fontsize=8)
fig.tight_layout()
fig.savefig(f"{D}/pipeline.png", dpi=110)
