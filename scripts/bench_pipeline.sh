#!/usr/bin/env bash
# The CI-grade targets of the performance issue (12), on this machine, after setup:
#   1. the README's main job with EVAL_TOKENS=65536 (scripts/run_default.sh: calibrate 10k tokens
#      -> sweep on 32,768 tokens -> evaluate dense + policy + uniform on 65,536 test tokens),
#      stage by stage, on the embedded default model;
#   2. a full-test evaluation (dense + the swept policy + one baseline, uniform top-k at the
#      sweep's k) of WikiText-2 test on the same model.
# Peak RSS of each step through GNU time; calibrate and sweep are the medians of RUNS (3) runs.
# Writes results/cpu/pipeline.json and pipeline.png.
#   bash scripts/bench_pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${CSA_SHARED:-../shared}
MODEL=${CSA_MODEL:-models/qwen2-mini/model.pt}
O=results/cpu
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$O"
bash scripts/setup.sh > "$W/setup.log" 2>&1 || { tail -20 "$W/setup.log"; exit 1; }
B=build/apps
step() {  # name, command... : GNU time's wall and peak RSS into $W/name.time
  local name=$1; shift
  echo "== $(date -u +%T) $name" >&2
  /usr/bin/time -v "$@" 2> "$W/$name.time" > "$W/$name.out" || [ $? -eq 7 ]
}
CORP=(--progress none)
# Calibrate and sweep RUNS times each (the same inputs, so the same outputs): their medians are
# the figures; the first run's outputs feed the later steps.
RUNS=${RUNS:-3}
for r in $(seq 1 "$RUNS"); do
  step calibrate_$r $B/csa-calibrate "$MODEL" "$SHARED/corpora/wikitext2-valid.tokens" "${CORP[@]}" \
    -o "$W/policy_$r.json"
done
cp "$W/policy_1.json" "$W/policy.json"
for r in $(seq 1 "$RUNS"); do
  step sweep_$r $B/csa-sweep "$MODEL" "$W/policy.json" "$SHARED/corpora/wikitext2-valid.tokens" \
    "${CORP[@]}" -o "$W/swept_$r.json" --results "$W/sweep_$r.json"
done
cp "$W/swept_1.json" "$W/swept.json"
cp "$W/sweep_1.json" "$W/sweep.json"
UNI=$(python3 -c "import json,sys; print((json.load(open(sys.argv[1])).get('uniform_sweep') or {}).get('best_cap') or '')" "$W/sweep.json")
BASE=(); [ -n "$UNI" ] && BASE=(--baseline "uniform:$UNI")
step eval_65536 $B/csa-eval "$MODEL" "$SHARED/corpora/wikitext2-test.raw" --policy "$W/swept.json" \
  "${BASE[@]}" --max-tokens 65536 "${CORP[@]}" -o "$W/eval_65536.json"
step eval_full $B/csa-eval "$MODEL" "$SHARED/corpora/wikitext2-test.raw" --policy "$W/swept.json" \
  "${BASE[@]}" "${CORP[@]}" -o "$W/eval_full.json"
/usr/bin/python3 - "$W" "$O" "$MODEL" "$RUNS" <<'PY'
import json, re, sys, subprocess, statistics
w, o, model, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def timing(name):
    t = open(f"{w}/{name}.time").read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1).split(":")
    return {"wall_seconds": sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall))),
            "peak_rss_bytes": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024,
            "command": re.search(r'Command being timed: "(.*)"', t).group(1).replace(w, "$TMP")}
def median_of_runs(name):
    rs = [timing(f"{name}_{r}") for r in range(1, runs + 1)]
    walls = [x["wall_seconds"] for x in rs]
    d = dict(rs[0])
    d["wall_seconds"] = statistics.median(walls)
    d["runs_wall_seconds"] = walls
    d["peak_rss_bytes"] = max(x["peak_rss_bytes"] for x in rs)
    d["command"] = re.sub(r"_1\.json", ".json", d["command"])
    return d
steps = {"calibrate": median_of_runs("calibrate"), "sweep": median_of_runs("sweep")}
steps.update({n: timing(n) for n in ["eval_65536", "eval_full"]})
sw = json.load(open(f"{w}/sweep.json"))
steps["sweep"]["forward_passes"] = sw.get("forward_passes")
steps["sweep"]["policy_passes"] = (sw.get("policy_sweep") or {}).get("sparse_forward_passes")
steps["sweep"]["uniform_passes"] = (sw.get("uniform_sweep") or {}).get("sparse_forward_passes")
for n in ["eval_65536", "eval_full"]:
    ev = json.load(open(f"{w}/{n}.json"))
    steps[n]["runs"] = [{"label": "dense", "wall_seconds": ev["dense"]["wall_seconds"],
                         "tokens_per_second": ev["dense"]["tokens_per_second"]}] + [
        {"label": r["label"].replace(w, "$TMP"), "wall_seconds": r["wall_seconds"],
         "tokens_per_second": r["tokens_per_second"], "reads": r["reads"]["query_side_fraction"],
         "matches_dense": r["comparison"]["matches_dense"]} for r in ev["runs"]]
    steps[n]["scored_targets"] = ev["dense"]["scored_targets"]
main = sum(steps[n]["wall_seconds"] for n in ["calibrate", "sweep", "eval_65536"])
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
targets = {"calibrate_10k_s": 10, "sweep_32k_s": 180, "main_job_65536_s": 300, "full_test_eval_s": 600,
           "peak_rss_bytes": 2 * 1024 ** 3}
measured = {"calibrate_10k_s": steps["calibrate"]["wall_seconds"], "sweep_32k_s": steps["sweep"]["wall_seconds"],
            "main_job_65536_s": main, "full_test_eval_s": steps["eval_full"]["wall_seconds"],
            "peak_rss_bytes": max(s["peak_rss_bytes"] for s in steps.values())}
out = {"kind": "csa-cpu-pipeline", "command": "bash scripts/bench_pipeline.sh", "git_commit": commit,
       "model": model, "machine": {"cpu": cpu[0], "cores": len(cpu)}, "steps": steps,
       "main_job_seconds": main, "targets": targets, "measured": measured,
       "met": {k: measured[k] <= targets[k] for k in targets}}
json.dump(out, open(f"{o}/pipeline.json", "w"), indent=1)
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
names = ["calibrate", "sweep", "eval_65536", "eval_full"]
tg = [10, 180, None, 600]
fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.barh(names, [steps[n]["wall_seconds"] for n in names], color="tab:blue", label="measured")
for i, t in enumerate(tg):
    if t: ax.plot([t, t], [i - 0.4, i + 0.4], color="tab:red", lw=2, label="target" if i == 0 else None)
ax.set_xlabel("seconds (wall, %d cores)" % len(cpu)); ax.set_title(f"csa on CPU, {model.split('/')[-2] if '/' in model else model}: main job {main:.0f} s (target 300)")
ax.legend(); fig.tight_layout(); fig.savefig(f"{o}/pipeline.png", dpi=120)
print(json.dumps(out["measured"]), json.dumps(out["met"]))
PY
