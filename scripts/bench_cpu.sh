#!/usr/bin/env bash
# CPU targets of the performance issue, on this machine: calibrate 10k tokens; policy eval of the
# first 65,536 WikiText-2 test tokens of llama-mini at ctx 2048; peak RSS of each (GNU time).
# Writes results/cpu/bench.json (+ the tools' own JSON beside it). Policy: the swept llama-mini
# policy from results/quality (made on the GPU machine; same weights; stored gzipped, read as it
# is). The committed bench.json predates the need-based policies (its policy was
# llama-mini.mass_keys.swept.json, since replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${CSA_SHARED:-../shared}
B=build/apps
O=results/cpu
mkdir -p "$O"
run() {  # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" 2> "$O/$name.time" > /dev/null
  python3 - "$O/$name.time" "$name" "$*" >> "$O/points.jsonl" <<'PY'
import json, sys, re
t = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1).split(":")
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
print(json.dumps({"name": sys.argv[2], "command": sys.argv[3], "wall_seconds": secs, "peak_rss_bytes": rss,
                  "load_average": open("/proc/loadavg").read().split()[:3]}))
PY
}
: > "$O/points.jsonl"
run calibrate_qwen2_10k $B/csa-calibrate models/qwen2-mini/model.pt "$SHARED/corpora/wikitext2-valid.tokens" -q -o "$O/calibrate_qwen2.json"
run calibrate_llama_10k $B/csa-calibrate "$SHARED/models/llama-mini" "$SHARED/corpora/wikitext2-valid.tokens" -q -o "$O/calibrate_llama.json"
run eval_llama_65536_policy $B/csa-eval "$SHARED/models/llama-mini" "$SHARED/corpora/wikitext2-test.raw" \
  --max-tokens 65536 --policy results/quality/llama-mini.swept.json.gz -q -o "$O/eval_llama_65536.json"
python3 - "$O" <<'PY'
import json, sys, platform, subprocess
o = sys.argv[1]
pts = [json.loads(l) for l in open(f"{o}/points.jsonl")]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
ev = json.load(open(f"{o}/eval_llama_65536.json"))
out = {"kind": "csa-cpu-bench", "command": "bash scripts/bench_cpu.sh", "machine": {"cpu": cpu[0], "cores": len(cpu)},
       "points": pts,
       "eval_llama_65536": {"dense_seconds": ev["dense"]["wall_seconds"],
                            "policy_seconds": ev["runs"][0]["wall_seconds"],
                            "policy_reads": ev["runs"][0]["reads"]["query_side_fraction"],
                            "dense_ppl": ev["dense"]["ppl"], "policy_ppl": ev["runs"][0]["ppl"]},
       "git_commit": subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()}
json.dump(out, open(f"{o}/bench.json", "w"), indent=1)
print(json.dumps(out, indent=1))
PY
