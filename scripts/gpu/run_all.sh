#!/usr/bin/env bash
# One call on the GPU machine: build against its libtorch, run the CPU-vs-CUDA tests, then the
# GPU benchmarks; everything lands in $OUT/gpu.tar.gz (unpacked into results/gpu/ by
# scripts/gpu/collect.sh here). Needs, carried in .dev: debs/ (scripts/gpu/fetch_debs.sh) and
# shared/ = a subset of ../shared (models/$MODEL, corpora/wikitext2-{valid.tokens,test.raw}).
#   run: bash scripts/gpu/run_all.sh          (MODEL=qwen2-mini by default)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-/tmp/csa-out}
R=$OUTDIR/gpu
mkdir -p "$R"
MODEL=${MODEL:-qwen2-mini}
SH=$PWD/.dev/shared
MD=$SH/models/$MODEL
VALID=$SH/corpora/wikitext2-valid.tokens
TEST=$SH/corpora/wikitext2-test.raw
export PYTHONUNBUFFERED=1
step() { echo "== $(date -u +%T) $*" | tee -a "$R/steps.log"; }
finish() { tar -C "$OUTDIR" -czf "$OUTDIR/gpu.tar.gz" gpu && rm -rf "$R"; }
trap finish EXIT

step environment
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch,transformers,tokenizers;print('torch',torch.__version__,'cuda',torch.version.cuda,'transformers',transformers.__version__,'tokenizers',tokenizers.__version__)"
  nproc; lscpu | grep 'Model name'; } > "$R/environment.txt" 2>&1

step build
( time bash scripts/gpu/build.sh ) > "$R/build.log" 2>&1 || grep -E "error|FAILED" "$R/build.log" | head -40
[ -x build-gpu/apps/csa-eval ] || { tail -60 "$R/build.log"; exit 1; }
tail -3 "$R/build.log"
source scripts/gpu/env.sh
B=build-gpu/apps

want() { [[ " ${STEPS:-tests tokenizer quality hf scaling} " == *" $1 "* ]]; }

if want tests; then
step tests
timeout 120 build-gpu/tests/csa_tests "[gpu]" --requires cuda > "$R/tests_gpu.log" 2>&1
echo "gpu tests rc=$? (77: skipped, no CUDA device)" | tee -a "$R/steps.log"; tail -4 "$R/tests_gpu.log"
CSA_SHARED=$SH timeout 240 build-gpu/tests/csa_tests "[unit],[golden]" > "$R/tests.log" 2>&1
echo "unit+golden tests rc=$?" | tee -a "$R/steps.log"; tail -4 "$R/tests.log"
fi

if want tokenizer; then
step tokenizer speed
$B/csa-tokenize "$MD" "$TEST" -o "$R/test.ids.json" --time 2> "$R/tokenize.log"
python3 - "$MD/tokenizer.json" "$TEST" "$R/test.ids.json" > "$R/tokenizer_hf.json" <<'PY'
import json, sys, time, tokenizers, statistics
tok = tokenizers.Tokenizer.from_file(sys.argv[1]); text = open(sys.argv[2], encoding="utf-8").read()
times = []
for _ in range(5):
    t0 = time.perf_counter(); enc = tok.encode(text, add_special_tokens=False); times.append(time.perf_counter() - t0)
ours = json.load(open(sys.argv[3]))
print(json.dumps({"library": "tokenizers " + tokenizers.__version__, "seconds": times,
                  "median_seconds": statistics.median(times), "n_ids": len(enc.ids),
                  "identical_to_csa": enc.ids == ours}))
PY
for i in 1 2 3 4 5; do $B/csa-tokenize "$MD" "$TEST" -o /dev/null --time -q 2>> "$R/tokenize.log" || $B/csa-tokenize "$MD" "$TEST" -o /dev/null --time 2>> "$R/tokenize.log"; done

fi
[ -f "$R/test.ids.json" ] || $B/csa-tokenize "$MD" "$TEST" -o "$R/test.ids.json" -q

if want quality; then
step quality pipeline on cuda
CTX=${CTX:-2048}
( time DEVICE=cuda CSA_SHARED=$SH CSA_BIN=$B bash scripts/quality.sh "$MD" "$MODEL" "$CTX" "$R/quality" ) > "$R/quality.log" 2>&1
grep -E "calibrated|matches|misses|error|real" "$R/quality.log" | tail -60
if [ -n "${CODE:-}" ]; then
  ( EVAL_ONLY=1 EVAL_TAG=code-heldout DEVICE=cuda CSA_SHARED=$SH CSA_BIN=$B bash scripts/quality.sh "$MD" "$MODEL" "$CTX" "$R/quality" "$SH/corpora/code-heldout.txt" ) > "$R/quality_code.log" 2>&1
fi
cp "$R/quality/$MODEL.effective_keys.swept.json" "$R/policy.swept.json" 2>/dev/null || cp "$R/quality/$MODEL.effective_keys.policy.json" "$R/policy.swept.json"
fi

if want hf; then
step csa vs hf on the first 65536 test tokens
( time $B/csa-eval "$MD" "$R/test.ids.json" --pretokenized --max-tokens 65536 --device cuda \
    --policy "$R/policy.swept.json" -o "$R/csa_65536.json" ) > "$R/csa_65536.log" 2>&1
( time $B/csa-eval "$MD" "$R/test.ids.json" --pretokenized --max-tokens 65536 --device cuda --dtype bfloat16 \
    --policy "$R/policy.swept.json" -o "$R/csa_65536_bf16.json" ) > "$R/csa_65536_bf16.log" 2>&1
timeout 300 python3 scripts/bench_vs_hf.py "$MD" "$R/test.ids.json" "$R/policy.swept.json" \
    --max-tokens 65536 --out "$R/hf_65536.json" > "$R/hf.log" 2>&1
tail -4 "$R/hf.log"
fi

if want scaling; then
step attention scaling
# float32 and bfloat16, ctx 512..16384, dense / top-64, auto / explicit, batch 4, 5 repeats.
CSA_BIN=$B bash scripts/bench_scaling.sh --device cuda --timeout 60 --out "$R/scaling.json" \
  > "$R/scale.log" 2>&1 || echo "scaling: some points failed (scale.log)" | tee -a "$R/steps.log"
tail -3 "$R/scale.log"
fi
step done
