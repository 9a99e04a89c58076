#!/usr/bin/env bash
# Registers and spills of the tiled kernel's six instantiations as ptxas reports them (nvcc
# -Xptxas -v, sm_90; needs nvcc, no GPU), for the tree or for the tree with PATCH's lib/ part
# applied to a copy of lib/. Prints JSON lines {kernel, registers, stack_bytes, spill_store_bytes,
# spill_load_bytes, patch, nvcc}.
#   bash scripts/gpu/ptxas_stats.sh [PATCH] > OUT.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp -r lib "$T/lib"
if [ $# -ge 1 ]; then  # (git apply outside a repository: like patch, with --include)
  P=$(realpath "$1")
  (cd "$T" && git apply --include='lib/*' "$P")
fi
for t in f32 bf16 f16; do
  "$NVCC" -std=c++17 -O3 -arch=sm_90 -I"$T/lib" -Xptxas -v -c \
    "$T/lib/csa/attention/fused_cuda_tiled_$t.cu" -o "$T/$t.o" > "$T/$t.log" 2>&1 &
done
wait
cat "$T"/f32.log "$T"/bf16.log "$T"/f16.log | python3 -c '
import json, re, sys
patch, nvcc = sys.argv[1], sys.argv[2]
fn = None
for line in sys.stdin:
    m = re.search(r"Compiling entry function .(\S*tiled_topk_kernelI(\w+?)EE\S*).", line)
    if m:
        fn = m.group(2); rec = {"kernel": fn, "patch": patch, "nvcc": nvcc}; continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m and fn:
        rec.update(stack_bytes=int(m.group(1)), spill_store_bytes=int(m.group(2)), spill_load_bytes=int(m.group(3)))
    m = re.search(r"Used (\d+) registers", line)
    if m and fn:
        rec["registers"] = int(m.group(1)); print(json.dumps(rec)); fn = None
' "${1:-}" "$("$NVCC" --version | tail -2 | head -1)"
