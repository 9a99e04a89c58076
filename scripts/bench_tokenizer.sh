#!/usr/bin/env bash
# Tokenizer speed (bench tier, never in CI): csa-tokenize on a corpus with every shared model's
# tokenizer and the shared reference tokenizers, one thread and all threads, against Hugging Face
# `tokenizers` (its Node binding: same Rust library as the Python one) on the same machine when
# it is installed. Writes results/tokenizer/speed.json and speed.png.
#
#   scripts/bench_tokenizer.sh                       # defaults below
#   RUNS=7 CSA_BUILD_DIR=build-a scripts/bench_tokenizer.sh
#
# Environment:
#   CSA_BUILD_DIR        build directory holding apps/csa-tokenize (default: build)
#   CSA_SHARED           shared data (default: ../shared beside the checkout)
#   CORPUS               text to tokenize (default: $CSA_SHARED/corpora/wikitext2-test.raw)
#   RUNS                 runs per configuration, >= 5 (default 5); the JSON reports the median
#   OUT                  output folder (default: results/tokenizer)
#   HF_TOKENIZERS_NODE   the `tokenizers` npm package folder (default:
#                        /work/.node-tokenizers/node_modules/tokenizers; install it with
#                        `npm install tokenizers` in a folder outside the repo). Absent: the JSON
#                        says why there is no HF figure.
#   PYTHON               a python3 with matplotlib (default: /usr/bin/python3)
#   KEEP_RAW             set: keep the per-run JSON files (their folder is printed)
#
# Timings: csa's `encode_seconds` is the tokenizer call alone, measured inside csa-tokenize
# (--json); the process wall time (libtorch start, tokenizer load, output) is recorded beside it.
# HF's is the `encode` call alone, one fresh node process (and tokenizer) per run. Every round
# runs each configuration once (csa and HF interleaved), so that load from other processes
# spreads over all of them; the load average is recorded.
set -euo pipefail

# The exact command, with the environment overrides the caller set (before defaults apply).
COMMAND="$(printf '%q ' "$0" "$@")"
for v in KEEP_RAW PYTHON HF_TOKENIZERS_NODE OUT RUNS CORPUS CSA_SHARED CSA_BUILD_DIR; do
  if [[ -n "${!v:-}" ]]; then COMMAND="$v=$(printf '%q' "${!v}") $COMMAND"; fi
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CSA_BUILD_DIR:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SHARED=${CSA_SHARED:-$ROOT/../shared}
CORPUS=${CORPUS:-$SHARED/corpora/wikitext2-test.raw}
RUNS=${RUNS:-5}
OUT=${OUT:-$ROOT/results/tokenizer}
HF_NODE=${HF_TOKENIZERS_NODE:-/work/.node-tokenizers/node_modules/tokenizers}
PYTHON=${PYTHON:-/usr/bin/python3}
TOKENIZE="$BUILD/apps/csa-tokenize"

[[ -x "$TOKENIZE" ]] || { echo "no $TOKENIZE: build it (cmake --build $BUILD --target csa-tokenize)" >&2; exit 1; }
[[ -f "$CORPUS" ]] || { echo "no corpus $CORPUS" >&2; exit 1; }
(( RUNS >= 5 )) || { echo "RUNS must be >= 5 (the median of at least five runs)" >&2; exit 1; }
ALL_THREADS=$(nproc)

# name | csa path | reference kind | reference path. Kinds: tokenizer.json and gpt2-files run HF
# tokenizers; sentencepiece runs the sentencepiece Python binding (the library csa calls for
# tokenizer.model), with HF's absence explained in HF_WHY; "-": no reference (reason in HF_WHY).
TOKENIZERS=(
  "gpt2-mini|$SHARED/models/gpt2-mini|tokenizer.json|$SHARED/models/gpt2-mini/tokenizer.json"
  "pythia-mini|$SHARED/models/pythia-mini|tokenizer.json|$SHARED/models/pythia-mini/tokenizer.json"
  "qwen2-mini|$SHARED/models/qwen2-mini|tokenizer.json|$SHARED/models/qwen2-mini/tokenizer.json"
  "llama-mini|$SHARED/models/llama-mini|sentencepiece|$SHARED/models/llama-mini/tokenizer.model"
  "stories260K|$SHARED/models/stories260K|-|-"
  "gpt2-50257|$SHARED/tokenizers/gpt2|gpt2-files|$SHARED/tokenizers/gpt2"
  "llama2-spm|$SHARED/tokenizers/llama2/tokenizer.model|sentencepiece|$SHARED/tokenizers/llama2/tokenizer.model"
)
declare -A HF_WHY=(
  [llama-mini]="its tokenizer.json is a 3-token stub (HF tokenizes the corpus to 1 token); the model's real tokenizer is tokenizer.model (SentencePiece), which HF tokenizers cannot load"
  [stories260K]="llama2.c tok512.bin: no HF tokenizers loader"
  [llama2-spm]="SentencePiece tokenizer.model: no HF tokenizers loader (no tokenizer.json shipped)"
)

RAW=$(mktemp -d)
if [[ -n "${KEEP_RAW:-}" ]]; then echo "raw runs kept in $RAW" >&2; else trap 'rm -rf "$RAW"' EXIT; fi
mkdir -p "$OUT"

HF_OK=0
HF_REASON=""
if [[ ! -d "$HF_NODE" ]]; then
  HF_REASON="the tokenizers npm package is not installed at $HF_NODE (npm install tokenizers in a folder outside the repo, then set HF_TOKENIZERS_NODE)"
elif ! command -v node >/dev/null; then
  HF_REASON="node is not installed"
elif ! node -e "require('$HF_NODE')" 2>"$RAW/hf_load.err"; then
  HF_REASON="require('$HF_NODE') failed: $(head -c 300 "$RAW/hf_load.err" | tr '\n' ' ')"
else
  HF_OK=1
fi

SPM_OK=0
"$PYTHON" -c "import sentencepiece" 2>/dev/null && SPM_OK=1

echo "loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)" > "$RAW/machine.txt"
for ((r = 1; r <= RUNS; r++)); do
  for entry in "${TOKENIZERS[@]}"; do
    IFS='|' read -r name path hf_kind hf_path <<< "$entry"
    [[ -e "$path" ]] || continue
    for threads in 1 "$ALL_THREADS"; do
      out="$RAW/csa.$name.t$threads.r$r.json"
      t0=$(date +%s.%N)
      "$TOKENIZE" "$path" "$CORPUS" --json -q --threads "$threads" -o "$out"
      t1=$(date +%s.%N)
      echo "$t0 $t1" > "$out.wall"
      # Ids are identical across runs: keep them once per tokenizer.
      if (( r > 1 || threads != 1 )); then
        "$PYTHON" -c 'import json, sys; p = sys.argv[1]; d = json.load(open(p)); d.pop("ids", None); json.dump(d, open(p, "w"))' "$out"
      fi
      if (( HF_OK )) && [[ "$hf_kind" == tokenizer.json || "$hf_kind" == gpt2-files ]]; then
        RAYON_NUM_THREADS=$threads TOKENIZERS_PARALLELISM=true \
          node "$ROOT/scripts/bench_tokenizer_hf.js" "$HF_NODE" "$hf_kind" "$hf_path" "$CORPUS" 1 \
          > "$RAW/hf.$name.t$threads.r$r.json"
      elif (( SPM_OK && threads == 1 )) && [[ "$hf_kind" == sentencepiece ]]; then
        "$PYTHON" "$ROOT/scripts/bench_tokenizer_spm.py" "$hf_path" "$CORPUS" 1 \
          > "$RAW/spm.$name.t1.r$r.json"
      fi
    done
  done
  echo "round $r/$RUNS done ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
echo "loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/machine.txt"

"$PYTHON" "$ROOT/scripts/bench_tokenizer_report.py" \
  --raw "$RAW" --out "$OUT" --corpus "$CORPUS" --runs "$RUNS" --threads "$ALL_THREADS" \
  --command "$COMMAND" --root "$ROOT" --tokenize "$TOKENIZE" --shared "$SHARED" \
  --hf-module "$HF_NODE" --hf-ok "$HF_OK" --hf-reason "$HF_REASON" --spm-ok "$SPM_OK" \
  --tokenizers "${TOKENIZERS[@]}" \
  --hf-why "$(for k in "${!HF_WHY[@]}"; do printf '%s\t%s\n' "$k" "${HF_WHY[$k]}"; done)"
