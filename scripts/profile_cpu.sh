#!/usr/bin/env bash
# Where a CPU evaluation's time goes: csa-eval --profile on llama-mini, the first 8192 tokens of
# wikitext-2 test at ctx 2048 (batch 4: two forward passes of 4 and 3 windows), a dense pass and
# a policy pass (uniform top-64), on 1 and 2 threads, broken down by phase into
# results/cpu/profile.json: linear layers (q/k/v, output, MLP), q·k, selection, softmax, P·V, LM
# head + log-softmax (NLL), other (norms, rotary, MLP activation, the rest). Each run records its
# command and the load average around it. With CSA_BIN_BEFORE=<dir of an older csa-eval that has
# --profile> the same runs of that binary are interleaved (before/after in one run);
# CSA_BIN_BEFORE_LABEL says what it is (e.g. the commit it was built from).
#
#   bash scripts/profile_cpu.sh
#   CSA_BIN_BEFORE=/tmp/before/build/apps bash scripts/profile_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CSA_BIN:-build/apps}
BEFORE=${CSA_BIN_BEFORE:-}
MODEL=${MODEL:-../shared/models/llama-mini}
CORPUS=${CORPUS:-../shared/corpora/wikitext2-test.raw}
TOKENS=${TOKENS:-8192}
out=results/cpu/profile.json
mkdir -p results/cpu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

builds=(after)
[ -n "$BEFORE" ] && builds=(before after)
n=0
for t in 1 2; do
  for build in "${builds[@]}"; do
    bin=$B
    [ "$build" = before ] && bin=$BEFORE
    n=$((n + 1))
    cmd=("$bin/csa-eval" "$MODEL" "$CORPUS" --max-tokens "$TOKENS" --ctx 2048 --batch 4
         --baseline uniform:64 --threads "$t" -q -o "$work/eval$n.json" --profile "$work/prof$n.json")
    echo "{\"build\": \"$build\", \"threads\": $t, \"command\": \"${cmd[*]}\"," \
         "\"load_average_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"," > "$work/run$n.meta"
    "${cmd[@]}"
    echo "\"load_average_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$work/run$n.meta"
  done
done

python3 - "$work" "$n" "$out" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, os, sys
work, n, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
           "unknown")
LINEAR = {"forward/qkv", "forward/out", "forward/mlp_up", "forward/mlp_down"}
KERNEL = {"attention/qk": "q.k", "attention/select": "selection", "attention/softmax": "softmax",
          "attention/pv": "P.V", "attention/softmax_pv_gathered": "softmax + P.V (gathered)",
          "attention/reads": "reads"}

def breakdown(section):
    ph = {k: v["seconds"] for k, v in section["phases"].items()}
    wall = section["wall_seconds"]
    rows = {"linear layers (qkv, out, MLP up/down)": sum(ph.get(k, 0) for k in LINEAR)}
    # Kernel phases sum their threads' time: shared out over the attention call's wall time.
    att = ph.get("forward/attention", 0)
    ksum = sum(ph.get(k, 0) for k in KERNEL)
    for k, name in KERNEL.items():
        if k in ph:
            rows["attention: " + name] = att * ph[k] / ksum if ksum else 0
    if ksum == 0 and att:
        rows["attention (explicit path or old kernel, not broken down)"] = att
    rows["lm_head + log-softmax (NLL)"] = ph.get("lm_head", 0) + ph.get("nll", 0)
    rows["norms"] = ph.get("forward/norm", 0)
    rows["rotary"] = ph.get("forward/rope", 0) + ph.get("forward/layout", 0)
    rows["MLP activation"] = ph.get("forward/mlp_act", 0)
    rows["other (embedding, residuals, window batching, ...)"] = max(0.0, wall - sum(rows.values()))
    return {"wall_seconds": wall, "cpu_seconds": section["cpu_seconds"],
            "seconds": rows, "fraction": {k: v / wall for k, v in rows.items()}}

runs = []
for i in range(1, n + 1):
    meta = json.loads(open(f"{work}/run{i}.meta").read().replace("\n", " "))
    prof = json.load(open(f"{work}/prof{i}.json"))
    ev = json.load(open(f"{work}/eval{i}.json"))
    meta["ppl"] = {"dense": ev["dense"]["ppl"], "uniform k=64": ev["runs"][0]["ppl"]}
    meta["breakdown"] = {s["label"]: breakdown(s) for s in prof["sections"]}
    meta["profile"] = prof
    runs.append(meta)
doc = {"kind": "csa-cpu-profile", "command": "bash scripts/profile_cpu.sh" +
       (" (CSA_BIN_BEFORE=" + os.environ["CSA_BIN_BEFORE"] + ": " +
        os.environ.get("CSA_BIN_BEFORE_LABEL", "") + ")" if os.environ.get("CSA_BIN_BEFORE") else ""),
       "git_commit": commit, "machine": {"cpu": cpu, "cores": sum(
           1 for l in open("/proc/cpuinfo") if l.startswith("processor"))},
       "note": "wall seconds per phase; the attention kernel's phases run on every thread and "
               "are shown as their share of the attention call's wall time",
       "runs": runs}
json.dump(doc, open(out, "w"), indent=1)
for r in runs:
    for label, b in r["breakdown"].items():
        print(f"{r['build']:6} threads {r['threads']} {label:13} wall {b['wall_seconds']:6.2f} s "
              f"(load {r['load_average_before']})")
        for k, v in b["seconds"].items():
            print(f"    {k:55} {v:6.2f} s  {100 * b['fraction'][k]:5.1f}%")
PY
