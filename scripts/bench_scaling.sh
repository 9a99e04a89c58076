#!/usr/bin/env bash
# Attention time and peak memory vs context length (bench tier, never in CI): csa-bench over
# context lengths, dense and uniform top-k, the fused ("auto") and the explicit score path, one
# process per point, since peak memory is per process (CPU: the process's peak RSS; CUDA: the
# caching allocator's peak for the call). Writes results/<cpu|gpu>/scaling.json:
#   {"kind": "csa-attention-scaling", "device", "command", "git_commit", "points": [...]}
# each point being csa-bench's JSON (with its own command), the layout scripts/bench_report.py
# plots. scripts/gpu/run_all.sh runs it with --device cuda.
#
#   bash scripts/bench_scaling.sh                  # cpu: ctx 512..4096, float32 (minutes)
#   bash scripts/bench_scaling.sh --device cuda    # ctx 512..16384, float32 and bfloat16
#   bash scripts/bench_scaling.sh --ctx "512 1024" --modes dense --repeats 3 --out /tmp/s.json
#
# Options (lists are space- or comma-separated):
#   --device D     cpu (default), cuda, cuda:N
#   --ctx LIST     context lengths (cpu: 512 1024 2048 4096; cuda: 512 ... 16384)
#   --dtypes LIST  cpu: float32; cuda: float32 bfloat16
#   --modes LIST   dense top_k       --paths LIST  auto explicit
#   --batch N (4)  --budget K (64, the top-k budget)  --repeats N (5)  --threads N (cpu: all cores)
#   --timeout S    per point (600); a failed or timed-out point is listed under "failed" and the
#                  script exits 1 after writing the JSON
#   --out FILE     default results/cpu/scaling.json or results/gpu/scaling.json
# Environment: CSA_BIN, the folder holding csa-bench (default build/apps).
set -euo pipefail

COMMAND="bash scripts/bench_scaling.sh$(printf ' %q' "$@")"
[[ -n "${CSA_BIN:-}" ]] && COMMAND="CSA_BIN=$(printf '%q' "$CSA_BIN") $COMMAND"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CSA_BIN:-$ROOT/build/apps}

device=cpu ctx="" dtypes="" modes="dense top_k" paths="auto explicit"
batch=4 budget=64 repeats=5 threads="" timeout_s=600 out=""
while [[ $# -gt 0 ]]; do
  if [[ $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
  fi
  case "$1" in
    --device | --ctx | --dtypes | --modes | --paths | --batch | --budget | --repeats | --threads | \
      --timeout | --out) [[ $# -ge 2 ]] || { echo "bench_scaling: $1 needs a value" >&2; exit 2; } ;;
    *) echo "bench_scaling: unknown option '$1' (--help)" >&2; exit 2 ;;
  esac
  case "$1" in
    --device) device=$2 ;;
    --ctx) ctx=$2 ;;
    --dtypes) dtypes=$2 ;;
    --modes) modes=$2 ;;
    --paths) paths=$2 ;;
    --batch) batch=$2 ;;
    --budget) budget=$2 ;;
    --repeats) repeats=$2 ;;
    --threads) threads=$2 ;;
    --timeout) timeout_s=$2 ;;
    --out) out=$2 ;;
  esac
  shift 2
done

case "$device" in
  cpu) kind_dir=cpu; : "${ctx:=512 1024 2048 4096}"; : "${dtypes:=float32}" ;;
  cuda | cuda:*) kind_dir=gpu; : "${ctx:=512 1024 2048 4096 8192 16384}"
                 : "${dtypes:=float32 bfloat16}" ;;
  *) echo "bench_scaling: --device must be cpu, cuda or cuda:N (got '$device')" >&2; exit 2 ;;
esac
out=${out:-$ROOT/results/$kind_dir/scaling.json}
[[ -x "$BIN/csa-bench" ]] || { echo "bench_scaling: no $BIN/csa-bench (build first, or set CSA_BIN)" >&2; exit 2; }
list() { echo "${1//,/ }"; }

# Where it ran: the GPU's name, or the CPU model and core count.
if [[ $kind_dir == gpu ]]; then
  index=${device#cuda}; index=${index#:}
  machine=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "${index:-0}" 2>/dev/null | head -1 || true)
  machine=${machine:-$device}
else
  machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/csa-scaling.XXXXXX")
trap 'rm -rf "$work"' EXIT
extra=()
[[ -n "$threads" ]] && extra+=(--threads "$threads")
n=0
for dt in $(list "$dtypes"); do for c in $(list "$ctx"); do
  for mode in $(list "$modes"); do for path in $(list "$paths"); do
    n=$((n + 1))
    point=$(printf '%s/%03d' "$work" "$n")
    args=(--device "$device" --dtype "$dt" --ctx "$c" --mode "$mode" --path "$path"
          --budget "$budget" --batch "$batch" --repeats "$repeats" "${extra[@]}" -q)
    echo "$(date -u +%T) ctx $c $dt $mode $path" >&2
    rc=0
    timeout "$timeout_s" "$BIN/csa-bench" "${args[@]}" > "$point.json" 2> "$point.err" || rc=$?
    [[ $rc -eq 124 ]] && echo "timed out after ${timeout_s} s" >> "$point.err"
    if [[ $rc -ne 0 ]]; then
      echo "  failed (exit $rc): $(tail -1 "$point.err")" >&2
      printf '%s\n' "$rc" "csa-bench ${args[*]}" > "$point.failed"
      rm -f "$point.json"
    fi
  done; done
done; done

mkdir -p "$(dirname "$out")"
python3 - "$work" "$out" "$machine" "$COMMAND" "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'PY'
import glob, json, os, sys
work, out, machine, command, commit = sys.argv[1:]
points, failed = [], []
for f in sorted(glob.glob(os.path.join(work, "*.json"))):
    points.append(json.load(open(f)))
for f in sorted(glob.glob(os.path.join(work, "*.failed"))):
    rc, cmd = open(f).read().split("\n", 1)
    err = open(f[: -len(".failed")] + ".err").read().strip().splitlines()
    failed.append({"command": cmd.strip(), "exit_code": int(rc), "message": err[-1] if err else ""})
result = {"kind": "csa-attention-scaling", "device": machine, "command": command,
          "git_commit": commit, "points": points}
if failed:
    result["failed"] = failed
tmp = out + ".tmp"
json.dump(result, open(tmp, "w"), indent=1)
os.replace(tmp, out)
for p in points:
    print(f'{p["ctx"]:>6} {p["dtype"]:>8} {p["mode"]:>5} {p["path"]:>8} '
          f'{1e3 * p["median_seconds"]:10.2f} ms {p["peak_memory_bytes"] / 2**20:9.1f} MiB')
print(f"{out}: {len(points)} points" + (f", {len(failed)} failed" if failed else ""))
sys.exit(1 if failed else 0)
PY
