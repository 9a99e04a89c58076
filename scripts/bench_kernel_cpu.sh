#!/usr/bin/env bash
# The fused CPU kernel vs the explicit score path on this machine: one attention call at ctx 2048
# (batch 4, 6 heads, 2 KV heads, d 64), dense and uniform top-64, 1 and 2 threads, median of 5.
# Writes results/cpu/kernel.json.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CSA_BIN:-build/apps}
out=results/cpu/kernel.json
mkdir -p results/cpu
{
  echo '{"kind": "csa-cpu-kernel-bench", "command": "bash scripts/bench_kernel_cpu.sh",'
  echo " \"load_average_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"points\": ["
  first=1
  for t in 1 2; do for mode in dense top_k; do for path in auto explicit; do
    [ $first -eq 1 ] || echo ","
    first=0
    "$B/csa-bench" --ctx 2048 --batch 4 --mode $mode --budget 64 --path $path --threads $t --repeats 5 -q
  done; done; done
  echo "]}"
} > "$out.tmp"
python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2],'w'), indent=1)" "$out.tmp" "$out"
rm -f "$out.tmp"
python3 -c "
import json; j=json.load(open('$out'))
for p in j['points']: print(p['threads'], p['mode'], p['path'], round(p['median_seconds'],3))"
