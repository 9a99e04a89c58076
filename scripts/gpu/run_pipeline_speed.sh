#!/usr/bin/env bash
# One call on the GPU machine for issue 13's pipeline targets, on the embedded qwen2-mini
# (models/qwen2-mini/model.pt; carry .dev/debs and .dev/shared/corpora):
#   1. whole-process wall time of csa-calibrate (10k tokens of wikitext2-valid, ctx 2048) and of
#      a full csa-sweep (README protocol), each with --profile (per-phase times), 3 and 2 runs;
#   2. csa-eval of the swept policy and dense on the first 65,536 wikitext2-test tokens, float32
#      and bfloat16 (tokens/s in each JSON), EVALS runs of each (default 5; the report takes
#      medians: one pass is a fraction of a second);
#   3. the peer: Hugging Face eager attention with the per-head top-k mask, eager and SDPA dense
#      (scripts/bench_vs_hf.py), on an HF directory rebuilt from the archive's weights and config,
#      HF_RUNS runs (default 3).
# Everything lands in $OUT/LABEL.tar.gz (REPS, SWEEPS: the runs of 1).
#   run: bash scripts/gpu/run_pipeline_speed.sh
# Another model: MODEL=.dev/shared/models/llama-mini LABEL=speed-llama-mini CTX=2048 (an HF
# directory is its own peer, no conversion). A mini does not travel beside the tree, the embedded
# model and .dev/debs (64 MiB): move models/qwen2-mini/model.pt out of the checkout for the call
# and carry the model packed (scripts/gpu/pack_model.py pack here, unpack there), with
# MAX_POSITIONS=N an HF directory's copy whose config allows N positions (RoPE models past their
# trained length: a speed measurement at that ctx, not a quality one). results/gpu/pipeline_minis.
set -uo pipefail
cd "$(dirname "$0")/../.."
LABEL=${LABEL:-speed}
W=${OUT:-/tmp/csa-out}/$LABEL
mkdir -p "$W"
( time bash scripts/gpu/build.sh ) > "$W/build.log" 2>&1 || { tail -30 "$W/build.log"; exit 1; }
source scripts/gpu/env.sh
B=build-gpu/apps M=${MODEL:-models/qwen2-mini/model.pt} C=.dev/shared/corpora
if [ -n "${MAX_POSITIONS:-}" ]; then
  csa_model_with_positions "$M" "$W/model" "$MAX_POSITIONS" || exit 1
  M=$W/model
fi
DEV=(--device cuda --ctx "${CTX:-2048}")
echo "MODEL=${MODEL:-$M} ${MAX_POSITIONS:+MAX_POSITIONS=$MAX_POSITIONS }LABEL=$LABEL CTX=${CTX:-2048} REPS=${REPS:-3} SWEEPS=${SWEEPS:-2} EVALS=${EVALS:-5} HF_RUNS=${HF_RUNS:-3} bash scripts/gpu/run_pipeline_speed.sh" > "$W/invocation.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$W/environment.txt"
wall() { csa_wall "$W" "$@"; }  # NAME cmd...: $W/NAME.log and $W/NAME.wall
for i in $(seq 1 "${REPS:-3}"); do
  wall "calibrate.$i" timeout 120 "$B/csa-calibrate" "$M" "$C/wikitext2-valid.tokens" "${DEV[@]}" -q \
    --profile "$W/calibrate.$i.profile.json" -o "$W/policy.json"
done
for i in $(seq 1 "${SWEEPS:-2}"); do
  wall "sweep.$i" timeout 120 "$B/csa-sweep" "$M" "$W/policy.json" "$C/wikitext2-valid.tokens" \
    "${DEV[@]}" -q --profile "$W/sweep.$i.profile.json" -o "$W/swept.json" --results "$W/sweep.$i.json"
done
timeout 60 "$B/csa-tokenize" "$M" "$C/wikitext2-test.raw" -o "$W/test.ids.json" -q
for i in $(seq 1 "${EVALS:-5}"); do
  for dt in float32 bfloat16; do
    wall "eval.$dt.$i" timeout 120 "$B/csa-eval" "$M" "$W/test.ids.json" --pretokenized \
      --max-tokens 65536 "${DEV[@]}" --dtype "$dt" --policy "$W/swept.json" -q -o "$W/eval.$dt.$i.json"
  done
done
HF=$M
if [ -f "$M" ]; then  # a TorchScript archive: an HF directory from its weights and config
HF=$W/hf-model
timeout 120 python3 - "$M" "$W/hf-model" > "$W/hf_convert.log" 2>&1 <<'PY'
import json, sys, torch, transformers
files = {n: "" for n in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")}
m = torch.jit.load(sys.argv[1], map_location="cpu", _extra_files=files)
cfg = transformers.AutoConfig.for_model(**json.loads(files["config.json"]))
model = transformers.AutoModelForCausalLM.from_config(cfg)
sd = {k: v for k, v in m.state_dict().items()}
want = set(model.state_dict())
for prefix in ("", "model.", "module."):
    cand = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if want <= set(cand) | {"lm_head.weight"}:
        sd = cand
        break
res = model.load_state_dict(sd, strict=False)
print("missing", res.missing_keys, "unexpected", res.unexpected_keys[:5])
if cfg.tie_word_embeddings: model.tie_weights()
model.save_pretrained(sys.argv[2])
for n in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
    if files[n]: open(f"{sys.argv[2]}/{n}", "w").write(files[n] if isinstance(files[n], str) else files[n].decode())
PY
echo "hf convert rc=$?"; tail -2 "$W/hf_convert.log"
fi
for i in $(seq 1 "${HF_RUNS:-3}"); do
  timeout 240 python3 scripts/bench_vs_hf.py "$HF" "$W/test.ids.json" "$W/swept.json" \
    --max-tokens 65536 --ctx "${CTX:-2048}" --out "$W/hf_65536.$i.json" > "$W/hf.$i.log" 2>&1
  echo "hf $i rc=$?"; tail -1 "$W/hf.$i.log"
done
rm -rf "$W/hf-model" "$W/model" "$W/test.ids.json"
tar -C "$W/.." -czf "$W/../$LABEL.tar.gz" "$LABEL" && rm -rf "$W"  # one file comes back
