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
# csa-bench) the kernel points also run that binary in the same rounds (before/after);
# CSA_BIN_BEFORE_LABEL says what it is (e.g. the commit it was built from).
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
trap 'cp "$work/points.jsonl" "$out.points.jsonl" 2>/dev/null || true' ERR

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
  "bash scripts/bench_kernel_cpu.sh (ROUNDS=$ROUNDS${BEFORE:+, CSA_BIN_BEFORE=$BEFORE: ${CSA_BIN_BEFORE_LABEL:-}})" \
  "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, statistics, sys, platform
points = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
           "unknown")

def values(name, build, threads, key):
    return [p[key] for p in points if p["point"] == name and p["build"] == build
            and p["threads"] == threads and key in p]

# Per configuration: the median over rounds, and the best round (least disturbed by other jobs:
# the shortest time, the highest rate).
summary = {}
for build in ("after", "before"):
    for name in sorted({p["point"] for p in points if p["build"] == build}):
        for t in (1, 2):
            row = {}
            for key in ("median_seconds", "median_cpu_seconds", "gflops_per_second",
                        "linear_gflops_per_second"):
                xs = values(name, build, t, key)
                if xs:
                    row[key] = statistics.median(xs)
                    best = max(xs) if "gflops" in key else min(xs)
                    row["best_" + key.replace("median_", "")] = best
            if row:
                summary.setdefault(build, {}).setdefault(name, {})[f"threads_{t}"] = row

def ratios_for(stat):
    sec = "median_seconds" if stat == "median" else "best_seconds"
    gf = "gflops_per_second" if stat == "median" else "best_gflops_per_second"
    a = summary["after"]
    r = {}
    for mode in ("dense", "top_k"):
        k = a[f"kernel {mode} auto"]
        r[f"kernel_{mode}_speedup_2_over_1"] = k["threads_1"][sec] / k["threads_2"][sec]
    for t in (1, 2):
        fwd, peer = a["forward dense"][f"threads_{t}"], a["gemm"][f"threads_{t}"]
        r[f"forward_dense_over_gemm_peer_threads_{t}"] = fwd[gf] / peer[gf]
        r[f"forward_policy_over_dense_seconds_threads_{t}"] = (
            a["forward top_k"][f"threads_{t}"][sec] / fwd[sec])
        if "before" in summary:
            for mode in ("dense", "top_k"):
                r[f"kernel_{mode}_before_over_after_threads_{t}"] = (
                    summary["before"][f"kernel {mode} auto"][f"threads_{t}"][sec]
                    / a[f"kernel {mode} auto"][f"threads_{t}"][sec])
    return r

peak = max(p["peak_memory_bytes"] for p in points if p["point"].startswith("forward"))
ratios, targets = {}, {}
for stat in ("median", "best"):
    r = ratios[stat] = ratios_for(stat)
    targets[stat] = {
        "forward_dense_at_least_half_the_gemm_peer (2 threads)":
            r["forward_dense_over_gemm_peer_threads_2"] >= 0.5,
        "kernel_2_thread_speedup_at_least_1.7 (dense and top_k)":
            min(r["kernel_dense_speedup_2_over_1"], r["kernel_top_k_speedup_2_over_1"]) >= 1.7,
        "dense_forward_at_least_as_fast_as_policy (2 threads)":
            r["forward_policy_over_dense_seconds_threads_2"] >= 1.0,
        "forward_peak_rss_at_most_2GB": peak <= 2 << 30,
    }
# The kernel's 2-thread speedup round by round, with the load it ran under.
per_round = []
for rnd in sorted({p["round"] for p in points}):
    row = {"round": rnd}
    for mode in ("dense", "top_k"):
        pts = {p["threads"]: p for p in points if p["round"] == rnd and p["build"] == "after"
               and p["point"] == f"kernel {mode} auto"}
        row[f"kernel_{mode}_speedup_2_over_1"] = pts[1]["median_seconds"] / pts[2]["median_seconds"]
        row[f"load_average_before_2_threads_{mode}"] = pts[2]["load_average_before"]
    per_round.append(row)

doc = {"kind": "csa-cpu-kernel-bench", "schema_version": 2, "command": sys.argv[5],
       "git_commit": sys.argv[6], "machine": {"cpu": cpu, "cores": len(
           [l for l in open("/proc/cpuinfo") if l.startswith("processor")]),
           "kernel": platform.release()},
       "load_average_start": sys.argv[3], "load_average_end": sys.argv[4],
       "note": "median: over rounds; best: the least disturbed round (shortest time, highest "
               "rate). cpu seconds are the process's, all threads. Other jobs on this machine "
               "run in their own scheduler autogroups, each with an equal share of the 2 cores: "
               "while one runs, a second thread of ours gets no more CPU, so the 2-thread ratios "
               "follow the load (per_round has the kernel's speedup with the load it ran under)",
       "summary": summary, "ratios": ratios, "targets": targets, "per_round": per_round,
       "forward_peak_rss_bytes": peak, "points": points}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
for stat in ("median", "best"):
    for k, v in ratios[stat].items():
        print(f"{stat:6} {k}: {v:.3f}")
    for k, v in targets[stat].items():
        print(f"{stat:6} {k}: {'met' if v else 'MISSED'}")
for row in per_round:
    print(row)
PY
/usr/bin/python3 scripts/bench_kernel_report.py "$out" || echo "bench_kernel_cpu: no plot (needs /usr/bin/python3 with matplotlib)" >&2
