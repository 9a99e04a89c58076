#!/usr/bin/env bash
# One call on the GPU machine for sparse decoding (issue 14): build, the [gpu] tier, the decode
# benchmark (scripts/gpu/bench_decode.sh), then page-granular quality (scripts/quality_pages.sh)
# for each model in MODELS that is present. Everything lands in $OUT/decode.tar.gz, re-packed
# after each step (a run stopped at its limit returns what finished): unpack it here and run
# scripts/gpu/decode_report.py. Carry .dev/debs and .dev/shared/corpora (and .dev/shared/models/X
# for a model other than the embedded qwen2-mini).
#   run: MODELS="qwen2-mini" bash scripts/gpu/run_decode.sh      (STEPS="build tests bench quality")
#   GPU_TESTS="CUDA paged*,CUDA graph*" runs the decode tests of the [gpu] tier only; STEPS may
#   also name "profile" (Nsight Compute of one step's kernels at 64K; NCU_SECTIONS="--set full"
#   for stall reasons) and "model-profile" (every kernel's time over the first whole-model decode
#   steps at 64K: scripts/gpu/decode_model_profile.py tabulates one step) and "sass" (Nsight
#   Compute's full set and per-instruction stall counts of the group step's bounds, select and
#   combine kernels at 64K).
set -uo pipefail
cd "$(dirname "$0")/../.."
W=/tmp/csa-decode/decode
mkdir -p "$W"
pack() { tar -C "$W/.." -czf "${OUT:-/tmp/csa-out}/decode.tar.gz" decode; }
want() { [[ " ${STEPS:-build tests bench quality} " == *" $1 "* ]]; }
if want build || [ ! -x build-gpu/apps/csa-bench ]; then
  ( time bash scripts/gpu/build.sh ) > "$W/build.log" 2>&1 ||
    { grep -E " error|error:" "$W/build.log" | head -30; tail -30 "$W/build.log"; pack; exit 1; }
  tail -3 "$W/build.log"
fi
source scripts/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$W/environment.txt"
if want tests; then
  timeout 200 build-gpu/tests/csa_tests "${GPU_TESTS:-[gpu]}" --requires cuda > "$W/tests_gpu.log" 2>&1
  echo "gpu tests rc=$?"; tail -4 "$W/tests_gpu.log"; pack
fi
if want bench; then
  OUT=$W bash scripts/gpu/bench_decode.sh; pack
fi
if want profile; then  # Nsight Compute on one 64K, batch-1 step (results/gpu/decode_ncu_*.txt)
  N=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
  B="build-gpu/apps/csa-bench --device cuda --dtype bfloat16 --config configs/llama-3.2-1b.json -q"
  B="$B --decode --ctx 65536 --batch 1 --repeats 1 --fraction 0.1"
  S=${NCU_SECTIONS:-"--section SpeedOfLight --section Occupancy --section LaunchStats"}
  # The dense step's attend and combine (its first launches), then a sparse step's bounds,
  # select and attend (past the 47 dense attend launches: 23 timed eagerly, 24 in graphs).
  timeout 50 "$N" --clock-control none -k regex:"attend|combine" -c 2 $S $B > "$W/ncu_dense.txt" 2>&1
  timeout 50 "$N" --clock-control none -k regex:"bounds|select|attend" --launch-skip 47 -c 3 $S $B \
    > "$W/ncu_sparse.txt" 2>&1
  # The group selection's (rule.h): past the per-head sparse runs' 48 launches of each kernel
  # (one with the selection returned, 23 eager, 24 in graphs). Its select grid has Hkv blocks.
  timeout 50 "$N" --clock-control none -k regex:"bounds|select|attend" --launch-skip 191 -c 3 $S \
    $B > "$W/ncu_group.txt" 2>&1
  pack
fi
if want sass; then  # per-instruction stall counts of the group selection's bounds, select, combine
  N=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
  B="build-gpu/apps/csa-bench --device cuda --dtype bfloat16 --config configs/llama-3.2-1b.json -q"
  B="$B --decode --ctx 65536 --batch 1 --repeats 1 --fraction 0.1"
  # Past the dense run's 47 combines and the per-head runs' 48 launches of each kernel.
  for kn in bounds:48 select:48 combine:95; do
    k=${kn%%:*}; skip=${kn##*:}
    timeout 60 "$N" --clock-control none --set full -k regex:"${k}_kernel" --launch-skip "$skip" \
      -c 1 $B > "$W/ncu_full_$k.txt" 2>&1
    timeout 60 "$N" --clock-control none --set full -k regex:"${k}_kernel" --launch-skip "$skip" \
      -c 1 --page source --print-source sass --csv $B > "$W/ncu_sass_$k.csv" 2>&1
  done
  pack
fi
if want model-profile; then  # every kernel of whole-model decode steps at 64K (ncu_model.csv)
  N=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
  B="build-gpu/apps/csa-bench --device cuda --dtype bfloat16 --config configs/llama-3.2-1b.json -q"
  timeout 300 "$N" --clock-control none --metrics gpu__time_duration.sum --csv -c 2500 $B \
    --decode-model --ctx 65536 --batch 1 --repeats 1 --fraction 0.1 > "$W/ncu_model.csv" 2>&1
  pack
fi
if want quality; then
  export CSA_BIN=build-gpu/apps CSA_SHARED=$PWD/.dev/shared DEVICE=cuda
  for m in ${MODELS:-qwen2-mini}; do
    case $m in
      qwen2-mini) path=models/qwen2-mini/model.pt ;;
      *) path=$CSA_SHARED/models/$m; [ -e "$path" ] || { echo "$m: not carried"; continue; } ;;
    esac
    ctx=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['protocol']['ctx'])" "results/quality/$m.sweep.json")
    timeout "${QUALITY_TIMEOUT:-400}" bash scripts/quality_pages.sh "$path" "$m" "$ctx" "$W/quality" \
      > "$W/quality.$m.log" 2>&1
    echo "$m quality rc=$?"; tail -3 "$W/quality.$m.log"; pack
  done
fi
pack
