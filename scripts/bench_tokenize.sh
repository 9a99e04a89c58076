#!/usr/bin/env bash
# csa-tokenize, whole process, before and after SentencePiece learned to encode long texts in
# 4 KB parts cut at spaces where that provably gives the same ids (commit 91b4a19). "before" is
# its parent, built in a temporary worktree (Release, ccache, csa-tokenize only); "after" is this
# tree's build. Bench tier: never in CI.
#
# Cases: llama-mini (SentencePiece tokenizer.model) on wikitext2-valid.tokens, Llama 2's
# tokenizer.model on wikitext2-test.raw, and qwen2-mini (byte-level BPE tokenizer.json, the same
# code on both sides since the BPE part of 91b4a19 was taken back) on wikitext2-valid.tokens as a
# control for the machine's noise. REPEATS processes per side and case, alternating before / after;
# medians. Also `--version` of each binary (the process's start-up alone) and whether both sides
# wrote the same ids.
#   bash scripts/bench_tokenize.sh        # writes results/cpu/tokenize_parts.json
# Environment: CSA_BIN (build/apps), CSA_SHARED (../shared), REPEATS (5), OLD_COMMIT (91b4a19~1),
# OUT (results/cpu/tokenize_parts.json; another change: OLD_COMMIT=its parent OUT=...),
# OLD_DIR (default ../csa-bench-tokenize-old, beside the checkout so ccache's base directory
# can share objects; removed at the end unless KEEP_OLD=1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CSA_BIN:-build/apps}
SHARED=${CSA_SHARED:-../shared}
REPEATS=${REPEATS:-5}
OLD_COMMIT=${OLD_COMMIT:-91b4a19~1}
OLD_DIR=${OLD_DIR:-$(cd .. && pwd)/csa-bench-tokenize-old}
OUT=${OUT:-results/cpu/tokenize_parts.json}
COMMAND="OLD_COMMIT=$OLD_COMMIT OUT=$OUT REPEATS=$REPEATS bash scripts/bench_tokenize.sh"
WORK=$(mktemp -d)
source scripts/old_worktree.sh
cleanup() {
  rm -rf "$WORK"
  old_worktree_remove
}
trap cleanup EXIT
[[ -x "$BIN/csa-tokenize" ]] || { echo "bench_tokenize: no $BIN/csa-tokenize (build first)" >&2; exit 2; }

old_worktree_add bench_tokenize
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
[ -f "$OLD_DIR/build/CMakeCache.txt" ] ||
  cmake -S "$OLD_DIR" -B "$OLD_DIR/build" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > "$WORK/old_configure.log"
cmake --build "$OLD_DIR/build" -j "$(nproc)" --target csa-tokenize csa_spm > "$WORK/old_build.log"
OLD=$OLD_DIR/build/apps/csa-tokenize
NEW=$BIN/csa-tokenize

seconds() {  # command... -> wall seconds of one run (output discarded)
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1"
}
CASES=("llama-mini-spm|$SHARED/models/llama-mini|$SHARED/corpora/wikitext2-valid.tokens"
       "llama2-spm|$SHARED/tokenizers/llama2/tokenizer.model|$SHARED/corpora/wikitext2-test.raw"
       "qwen2-mini-bpe|models/qwen2-mini/model.pt|$SHARED/corpora/wikitext2-valid.tokens")
: > "$WORK/times.txt"
for i in $(seq 1 "$REPEATS"); do
  for side in before after; do
    exe=$NEW; [ "$side" = before ] && exe=$OLD
    echo "startup $side $(seconds "$exe" --version)" >> "$WORK/times.txt"
    for c in "${CASES[@]}"; do
      IFS='|' read -r name tok text <<< "$c"
      echo "$name $side $(seconds "$exe" "$tok" "$text" -q -o "$WORK/$name.$side.json")" \
        >> "$WORK/times.txt"
    done
  done
done
same=()
for c in "${CASES[@]}"; do
  name=${c%%|*}
  cmp -s "$WORK/$name.before.json" "$WORK/$name.after.json" && same+=("$name=1") || same+=("$name=0")
done
python3 - "$WORK/times.txt" "$OUT" "$old_sha" "$(git rev-parse HEAD)" "$REPEATS" "$COMMAND" \
  "${same[@]}" <<'PY'
import json, platform, statistics, subprocess, sys
times, out, old, new, reps, command = sys.argv[1:7]
same = dict(s.split("=") for s in sys.argv[7:])
runs = {}
for line in open(times):
    name, side, sec = line.split()
    runs.setdefault(name, {}).setdefault(side, []).append(float(sec))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
res = {"kind": "csa-bench-tokenize-parts",
       "command": command,
       "machine": {"cpu": cpu, "cores": int(subprocess.check_output(["nproc"]).decode()),
                   "load_average_end": open("/proc/loadavg").read().split()[:3],
                   "platform": platform.platform()},
       "before_commit": old, "after_commit": new, "repeats": int(reps),
       "unit": "wall seconds of one csa-tokenize process (start-up included); medians",
       "cases": {}}
for name, sides in runs.items():
    b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
    res["cases"][name] = {"before_median": b, "after_median": a, "before_runs": sides["before"],
                          "after_runs": sides["after"], "before_over_after": b / a}
    if name in same:
        res["cases"][name]["identical_ids"] = same[name] == "1"
json.dump(res, open(out, "w"), indent=1)
print(json.dumps({k: {kk: round(vv, 3) if isinstance(vv, float) else vv for kk, vv in v.items()
                      if not kk.endswith("_runs")} for k, v in res["cases"].items()}, indent=1))
PY
