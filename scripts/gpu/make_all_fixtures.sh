#!/usr/bin/env bash
# Runs every reference-fixture generator on the GPU machine (where transformers, tokenizers and
# sentencepiece are installed) and packs the results for tests/fixtures/.
#
# usage: scripts/gpu/make_all_fixtures.sh SHARED_COPY OUT_DIR [MODELS_FOR_REFERENCE]
#   SHARED_COPY: a copy of ../shared (models/, tokenizers/, corpora/) inside the repo (carried)
#   MODELS_FOR_REFERENCE: comma list for make_reference_logits.py (default: all with weights)
set -uo pipefail
shared=$1
out=$2
only=${3:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/fx/models" "$out/fx/tokenizers" "$out/fx/reference" "$out/fx/interop"
export PYTHONUNBUFFERED=1
{
  echo "== environment"; date -u; uname -a; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, transformers, tokenizers, sentencepiece, safetensors; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'sentencepiece', sentencepiece.__version__, 'safetensors', safetensors.__version__); print('cmake_prefix', torch.utils.cmake_prefix_path)"
  which cmake ninja nvcc gcc g++; g++ --version | head -1; cmake --version | head -1
  cat /etc/os-release | head -3; ldd --version | head -1
} > "$out/fx/environment.txt" 2>&1
cat "$out/fx/environment.txt"

if [ -z "${SKIP_TINY:-}" ]; then
  echo "== tiny model fixtures"
  python3 "$here/scripts/make_fixtures.py" "$out/fx/models" 2>&1 | tail -20
fi
if [ -z "${SKIP_TOKENIZERS:-}" ]; then
  echo "== tokenizer fixtures"
  python3 "$here/scripts/make_tokenizer_fixtures.py" "$shared" "$out/fx/tokenizers" 2>&1 | tail -20
fi
echo "== reference logits"
python3 "$here/scripts/make_reference_logits.py" "$shared/models" "$shared/corpora/wikitext2-test.raw" \
  "$out/fx/reference" ${only:+--only "$only"} 2>&1 | tail -20
if [ -f "$here/.dev/csa_written_stories.pt" ]; then
  echo "== interop: torch.jit.load of an archive written by csa (libtorch 1.13)"
  python3 - "$here/.dev/csa_written_stories.pt" "$shared/models/stories260K" > "$out/fx/interop/jit_load.json" <<'PY'
import json, sys, torch
from safetensors.torch import load_file
extra = {"config.json": "", "csa_manifest.json": ""}
m = torch.jit.load(sys.argv[1], _extra_files=extra)
params = dict(m.named_parameters())
ref = load_file(sys.argv[2] + "/model.safetensors")
diff = max(float((params[k].float() - ref[k].float()).abs().max()) for k in ref)
print(json.dumps({"torch": torch.__version__, "n_params": len(params), "names_equal": sorted(params) == sorted(ref),
                  "max_abs_diff_vs_hf_safetensors": diff, "manifest": json.loads(extra["csa_manifest.json"])}))
PY
  cat "$out/fx/interop/jit_load.json"
fi
tar -C "$out" -czf "$out/fixtures.tar.gz" fx && rm -rf "$out/fx"
ls -la "$out"
