#!/usr/bin/env bash
# csa as a CI quality gate (docs/ci.md): calibrate -> sweep -> evaluate as one shell pipeline,
#
#   csa-calibrate M cal.txt | csa-sweep M - val.txt | csa-eval M test.txt --policy - --require-quality
#
# with the swept policy cached between runs (keyed by the csa build, the model's files, the corpora
# and the options), Markdown summaries for the job page, and the exit code of the stage that failed
# (docs/cli.md: 7 = the policy misses dense quality, or the sweep found no cap).
#
#   MODEL=../shared/models/qwen2-mini CAL=../shared/corpora/wikitext2-valid.tokens \
#   TEST=../shared/corpora/wikitext2-test.raw EVAL_TOKENS=65536 bash scripts/ci_example.sh
#
# Environment:
#   MODEL            the model: a file or directory (required)
#   CAL              calibration corpus (required); VAL the sweep's (default: CAL, where the sweep
#                    takes the tokens after the calibration slice); TEST the gate's (default: VAL)
#   CAL_TOKENS       calibration tokens (10000)      SWEEP_TOKENS  sweep slice (32768)
#   EVAL_TOKENS      test tokens (default: the whole test corpus)
#   TOLERANCE, POSITION_TOLERANCE   dense-matching criteria for the sweep and the gate (0.005, 0.01)
#   CSA_ARGS         options for all three tools (e.g. "--ctx 1024 --threads 2")
#   CAL_ARGS, SWEEP_ARGS, EVAL_ARGS   options for one of them (e.g. EVAL_ARGS="--baseline uniform:64")
#   CSA_BIN          directory of the csa tools (default: build/apps of this checkout, else PATH)
#   OUT              outputs (out/ci): policy.json, sweep.json, sweep.md, eval.json, summary.md
#   POLICY_CACHE     cached swept policies (default $OUT/cache; point CI's cache at it); NO_CACHE=1
#                    recomputes
# $GITHUB_STEP_SUMMARY, when set, gets sweep.md and summary.md appended.
# Exit: 0 the policy matches dense on the test corpus; else the first failing stage's exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
: "${MODEL:?set MODEL to the model file or directory}"
: "${CAL:?set CAL to the calibration corpus}"
VAL=${VAL:-$CAL}
TEST=${TEST:-$VAL}
OUT=${OUT:-out/ci}
POLICY_CACHE=${POLICY_CACHE:-$OUT/cache}
TOL=(--tolerance "${TOLERANCE:-0.005}" --position-tolerance "${POSITION_TOLERANCE:-0.01}")
read -r -a common <<<"${CSA_ARGS:-}"
read -r -a cal_args <<<"${CAL_ARGS:-}"
read -r -a sweep_args <<<"${SWEEP_ARGS:-}"
read -r -a eval_args <<<"${EVAL_ARGS:-}"
if [ -n "${CSA_BIN:-}" ]; then
  bin=$CSA_BIN/
elif [ -x "$here/build/apps/csa-eval" ]; then
  bin=$here/build/apps/
else
  bin=""  # on PATH (an installed csa)
fi
cal_opts=(--tokens "${CAL_TOKENS:-10000}" "${common[@]}" "${cal_args[@]}")
sweep_opts=(--tokens "${SWEEP_TOKENS:-32768}" "${TOL[@]}" "${common[@]}" "${sweep_args[@]}")
calibrate=("${bin}csa-calibrate" "$MODEL" "$CAL" "${cal_opts[@]}")
sweep=("${bin}csa-sweep" "$MODEL" - "$VAL" "${sweep_opts[@]}"
       --results "$OUT/sweep.json" --summary "$OUT/sweep.md")
gate=("${bin}csa-eval" "$MODEL" "$TEST" --policy - --require-quality "${TOL[@]}"
      ${EVAL_TOKENS:+--max-tokens "$EVAL_TOKENS"} -o "$OUT/eval.json" --summary "$OUT/summary.md"
      "${common[@]}" "${eval_args[@]}")
mkdir -p "$OUT" "$POLICY_CACHE"
rm -f "$OUT/policy.json" "$OUT/eval.json" "$OUT/summary.md" "$OUT/sweep.json" "$OUT/sweep.md"

meaning() {  # docs/cli.md's exit codes
  case $1 in
    1) echo "internal error" ;; 2) echo "usage error" ;; 3) echo "a file is missing or unwritable" ;;
    4) echo "corrupt or malformed input" ;; 5) echo "unsupported model feature" ;;
    6) echo "bad input" ;; 7) echo "quality bar not met" ;; 141) echo "killed by SIGPIPE" ;;
    *) echo "exit $1" ;;
  esac
}

# The cache key: whatever changes the swept policy. The csa build (version and commit), every file
# of the model, the calibration and sweep corpora, and the options of the two stages.
sha() { sha256sum | cut -c1-64; }
model_hash=$(if [ -d "$MODEL" ]; then
               (cd "$MODEL" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
             else sha256sum <"$MODEL"; fi | sha)
key=$({ "${bin}csa-calibrate" --version; echo "$model_hash"; sha256sum <"$CAL"; sha256sum <"$VAL"
        printf '%s\n' "${cal_opts[@]}" -- "${sweep_opts[@]}"; } | sha)
cached=$POLICY_CACHE/policy-$key.json

start=$(date +%s)
if [ -s "$cached" ] && [ "${NO_CACHE:-0}" != 1 ]; then
  echo "ci: cached policy $cached (calibration and sweep skipped)" >&2
  cp "$cached" "$OUT/policy.json"
  set +e
  "${gate[@]}" <"$OUT/policy.json"
  rc=$?
  set -e
  stage=csa-eval
else
  # The pipeline. The swept policy is also kept (tee) for the cache and the job's artifacts.
  set +e
  "${calibrate[@]}" | "${sweep[@]}" | tee "$OUT/policy.json.tmp" | "${gate[@]}"
  status=("${PIPESTATUS[@]}")
  set -e
  rc=0
  stage=""
  names=(csa-calibrate csa-sweep tee csa-eval)
  # The first stage that failed is the cause (later ones saw an empty pipe); a stage killed by
  # SIGPIPE (141) only saw a later one exit early.
  for i in 0 1 2 3; do
    s=${status[$i]}
    if [ "$s" -ne 0 ] && { [ "$s" -ne 141 ] || [ "$rc" -eq 0 ]; }; then
      if [ "$rc" -eq 0 ] || [ "$rc" -eq 141 ]; then rc=$s; stage=${names[$i]}; fi
    fi
  done
  if [ "${status[0]}" -eq 0 ] && [ "${status[1]}" -eq 0 ] && [ -s "$OUT/policy.json.tmp" ]; then
    mv "$OUT/policy.json.tmp" "$OUT/policy.json"
    cp "$OUT/policy.json" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
  else
    rm -f "$OUT/policy.json.tmp"
  fi
fi
echo "ci: $(( $(date +%s) - start )) s" >&2

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  for f in "$OUT/sweep.md" "$OUT/summary.md"; do
    [ -f "$f" ] && { cat "$f"; echo; } >>"$GITHUB_STEP_SUMMARY"
  done
fi
if [ "$rc" -eq 0 ]; then
  echo "ci: passed: the policy matches dense quality on $TEST (summary: $OUT/summary.md)" >&2
else
  echo "ci: FAILED at $stage: $(meaning "$rc") (exit $rc)" >&2
fi
exit "$rc"
