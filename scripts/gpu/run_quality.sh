#!/usr/bin/env bash
# On the GPU machine: build (once per machine), then scripts/quality.sh (or SCRIPT=quality_rules.sh)
# for each model named,
# on CUDA in float32. Everything lands in $OUT/quality.tar.gz (re-packed after every model, so a
# run stopped at its time limit still returns what finished); unpack it into results/quality/rules
# here. Carry .dev: debs/ (scripts/gpu/fetch_debs.sh), shared/corpora/ and shared/models/<name>/
# (the embedded models/qwen2-mini/model.pt needs nothing carried).
# The shared minis (25-33 MB each) and the tree (about 46 MB) do not fit one call's 64 MiB: the
# sixth session's run shipped them in calls of their own while the machine stayed warm (ignored
# paths stay between calls), with models/, results/ and tests/fixtures moved out of the local tree
# for those calls (the quality run needs none of them), then ran the three at once (PARALLEL=1).
#   run: bash scripts/gpu/run_quality.sh qwen2-mini [pythia-mini ...]
#   DEADLINE=540: seconds after which no further model starts (and a running one is stopped).
#   PARALLEL=1: every model at once (the minis leave an H200 mostly idle; one call's time limit
#   then covers all four).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
WORK=/tmp/csa-quality/quality
mkdir -p "$WORK"
pack() { tar -C "$WORK/.." -czf "${OUT:-/tmp/csa-out}/quality.tar.gz" quality; }
if [ ! -x build-gpu/apps/csa-sweep ] || [ -n "${REBUILD:-}" ]; then
  ( time bash scripts/gpu/build.sh ) > "$WORK/build.log" 2>&1 ||
    { grep -E " error" "$WORK/build.log" | head -30; tail -30 "$WORK/build.log"; pack; exit 1; }
  tail -3 "$WORK/build.log"
fi
source scripts/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$WORK/environment.txt"
export CSA_BIN=build-gpu/apps CSA_SHARED=$PWD/.dev/shared DEVICE=cuda
one() {
  local m=$1 left=$(( ${DEADLINE:-540} - ($(date +%s) - start) )) path ctx
  [ "$left" -gt 30 ] || { echo "$m: not started (deadline)"; return; }
  case $m in
    qwen2-mini) path=models/qwen2-mini/model.pt ;;
    *) path=.dev/shared/models/$m ;;
  esac
  ctx=2048; [ "$m" = gpt2-mini ] && ctx=1024  # each model's context (../shared/README.md)
  timeout "$left" bash scripts/${SCRIPT:-quality.sh} "$path" "$m" "$ctx" "$WORK" 2> "$WORK/$m.log"
  echo "$m rc=$? after $(( $(date +%s) - start )) s: $(tail -1 "$WORK/$m.log")"
}
for m in "$@"; do
  if [ -n "${PARALLEL:-}" ]; then one "$m" & else one "$m"; pack; fi
done
wait
pack
