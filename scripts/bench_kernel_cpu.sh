#!/usr/bin/env bash
# CPU speed on this machine, every ratio measured in the same run (results/cpu/kernel.json and
# kernel.png):
#   kernel   one attention call at ctx 2048 (batch 4, 6 heads, 2 KV heads, d 64): dense and
#            uniform top-64, fused kernel and explicit score path, 1 and 2 threads
#   forward  llama-mini on wikitext-2 test, one pass of 4 windows of 2048 tokens as csa-eval runs
#            it (hidden states, LM head, NLL): dense and uniform top-64, 1 and 2 threads
#   gemm     the GEMM peer: BLAS sgemm alone on that forward's shapes, 1 and 2 threads
# Every configuration runs ROUNDS times, round-robin (one csa-bench process per point, so a burst
# of load from other jobs hits every configuration alike); the summary takes medians over rounds.
# Each point records the load average before it ran. With CSA_BIN_BEFORE=<dir of an older
# csa-bench> the kernel points also run that binary in the same rounds (before/after).
#
#   bash scripts/bench_kernel_cpu.sh                 # ROUNDS=3
#   CSA_BIN_BEFORE=/tmp/base/build/apps ROUNDS=5 bash scripts/bench_kernel_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CSA_BIN:-build/apps}
BEFORE=${CSA_BIN_BEFORE:-}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-../shared/models/llama-mini}
CORPUS=${CORPUS:-../shared/corpora/wikitext2-test.raw}
out=results/cpu/kernel.json
mkdir -p results/cpu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

point() {  # point NAME BUILD CSA-BENCH-ARGS...: one run, its JSON tagged, appended to points
  local name=$1 build=$2 bin=$B
  shift 2
  [ "$build" = before ] && bin=$BEFORE
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  "$bin/csa-bench" "$@" -q > "$work/p.json"
  python3 - "$work/p.json" "$name" "$build" "$load" "$r" "$bin/csa-bench $*" >> "$work/points.jsonl" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j.update({"point": sys.argv[2], "build": sys.argv[3], "load_average_before": sys.argv[4],
          "round": int(sys.argv[5]), "command": sys.argv[6]})
print(json.dumps(j))
PY
}

start_load=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
  for t in 1 2; do
    for mode in dense top_k; do
      for path in auto explicit; do
        point "kernel $mode $path" after --ctx 2048 --batch 4 --mode $mode --budget 64 \
              --path $path --threads $t --repeats 5
      done
      [ -n "$BEFORE" ] && point "kernel $mode auto" before --ctx 2048 --batch 4 --mode $mode \
                                --budget 64 --path auto --threads $t --repeats 5
      point "forward $mode" after --forward --model "$MODEL" --corpus "$CORPUS" --ctx 2048 \
            --batch 4 --mode $mode --budget 64 --threads $t --repeats 3
    done
    point gemm after --gemm --model "$MODEL" --ctx 2048 --batch 4 --threads $t --repeats 3
  done
  echo "bench_kernel_cpu: round $r of $ROUNDS done (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done

python3 - "$work/points.jsonl" "$out" "$start_load" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "bash scripts/bench_kernel_cpu.sh (ROUNDS=$ROUNDS${BEFORE:+, CSA_BIN_BEFORE=$BEFORE})" \
  "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, statistics, sys, platform
points = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
           "unknown")

def med(name, build, threads, key="median_seconds"):
    xs = [p[key] for p in points if p["point"] == name and p["build"] == build
          and p["threads"] == threads]
    return statistics.median(xs) if xs else None

summary = {}
for build in ("after", "before"):
    for name in sorted({p["point"] for p in points if p["build"] == build}):
        for t in (1, 2):
            w, c = med(name, build, t), med(name, build, t, "median_cpu_seconds")
            if w is None:
                continue
            row = {"median_seconds": w}
            if c is not None:
                row["median_cpu_seconds"] = c
            g = med(name, build, t, "gflops_per_second")
            if g is not None:
                row["gflops_per_second"] = g
            summary.setdefault(build, {}).setdefault(name, {})[f"threads_{t}"] = row
a = summary["after"]
ratios = {
    "kernel_dense_speedup_2_over_1": a["kernel dense auto"]["threads_1"]["median_seconds"]
    / a["kernel dense auto"]["threads_2"]["median_seconds"],
    "kernel_top_k_speedup_2_over_1": a["kernel top_k auto"]["threads_1"]["median_seconds"]
    / a["kernel top_k auto"]["threads_2"]["median_seconds"],
}
for t in (1, 2):
    fwd, peer = a["forward dense"][f"threads_{t}"], a["gemm"][f"threads_{t}"]
    ratios[f"forward_dense_over_gemm_peer_threads_{t}"] = (
        fwd["gflops_per_second"] / peer["gflops_per_second"])
    ratios[f"forward_policy_over_dense_seconds_threads_{t}"] = (
        a["forward top_k"][f"threads_{t}"]["median_seconds"] / fwd["median_seconds"])
if "before" in summary:
    for mode in ("dense", "top_k"):
        for t in (1, 2):
            ratios[f"kernel_{mode}_before_over_after_threads_{t}"] = (
                summary["before"][f"kernel {mode} auto"][f"threads_{t}"]["median_seconds"]
                / a[f"kernel {mode} auto"][f"threads_{t}"]["median_seconds"])
peak = max(p["peak_memory_bytes"] for p in points if p["point"].startswith("forward"))
targets = {
    "forward_dense_at_least_half_the_gemm_peer (2 threads)":
        ratios["forward_dense_over_gemm_peer_threads_2"] >= 0.5,
    "kernel_2_thread_speedup_at_least_1.7 (dense and top_k)":
        min(ratios["kernel_dense_speedup_2_over_1"], ratios["kernel_top_k_speedup_2_over_1"]) >= 1.7,
    "dense_forward_at_least_as_fast_as_policy (2 threads)":
        ratios["forward_policy_over_dense_seconds_threads_2"] >= 1.0,
    "forward_peak_rss_at_most_2GB": peak <= 2 << 30,
}
doc = {"kind": "csa-cpu-kernel-bench", "schema_version": 2, "command": sys.argv[5],
       "git_commit": sys.argv[6], "machine": {"cpu": cpu, "cores": len(
           [l for l in open("/proc/cpuinfo") if l.startswith("processor")]),
           "kernel": platform.release()},
       "load_average_start": sys.argv[3], "load_average_end": sys.argv[4],
       "note": "wall medians over rounds; cpu seconds are the process's (all threads). Under "
               "load from other jobs (each login session is a scheduler autogroup with an equal "
               "share of the 2 cores) a second thread cannot get more CPU: read the 2-thread "
               "ratios with load_average_before of their points",
       "summary": summary, "ratios": ratios, "forward_peak_rss_bytes": peak, "targets": targets,
       "points": points}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
for k, v in ratios.items():
    print(f"{k}: {v:.3f}")
for k, v in targets.items():
    print(f"{k}: {'met' if v else 'MISSED'}")
PY
/usr/bin/python3 scripts/bench_kernel_report.py "$out" || echo "bench_kernel_cpu: no plot (needs /usr/bin/python3 with matplotlib)" >&2
