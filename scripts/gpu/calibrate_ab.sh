#!/usr/bin/env bash
# On the GPU machine (carry .dev/debs and .dev/qcorp, unpacked to .dev/shared/corpora): a change's
# effect on csa-calibrate's whole-process time, measured against the code it replaced in one run.
# Builds the tree (build-gpu) and keeps its apps, applies PATCH (the old code), builds and keeps
# those, restores the tree; then for each MODEL:CTX[:MAX_POSITIONS] calibrates 10,000 tokens of
# wikitext2-valid RUNS times with each build, alternating (old, new, old, new, ...), each with
# --profile, and keeps the first run's policies. Writes $OUT/NAME.tar.gz
# (NAME/{LABEL.MODEL.ctxN.I.wall, ...profile.json, ...policy.json, ...log});
# scripts/gpu/calibrate_ab_report.py summarises.
#   run: bash scripts/gpu/calibrate_ab.sh NAME PATCH MODEL:CTX[:MAX_POSITIONS]...
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n 2,10p "$0"; exit 2; }
NAME=$1 PATCH=$2
shift 2
W=/tmp/calibrate_ab/$NAME
rm -rf "$W" && mkdir -p "$W/bin"
keep() {  # LABEL: build the tree as it is, keep its apps
  bash scripts/gpu/build.sh > "$W/build.$1.log" 2>&1 || { tail -20 "$W/build.$1.log"; exit 1; }
  mkdir -p "$W/bin/$1" && cp build-gpu/apps/csa-calibrate "$W/bin/$1/"
}
keep new
patch -p1 < "$PATCH" > /dev/null || exit 1
keep old
patch -p1 -R < "$PATCH" > /dev/null || exit 1
source scripts/gpu/env.sh
echo "bash scripts/gpu/calibrate_ab.sh $NAME $PATCH $* (RUNS=${RUNS:-5})" > "$W/invocation.txt"
for spec in "$@"; do
  IFS=: read -r M CTX MAXPOS <<< "$spec"
  tag=$(basename "$M").ctx$CTX
  if [ -n "${MAXPOS:-}" ]; then
    csa_model_with_positions "$M" "$W/model" "$MAXPOS" || exit 1
    M=$W/model
  fi
  for i in $(seq 1 "${RUNS:-5}"); do
    for label in old new; do
      csa_wall "$W" "$label.$tag.$i" "$W/bin/$label/csa-calibrate" "$M" \
        .dev/shared/corpora/wikitext2-valid.tokens --device cuda --ctx "$CTX" -q \
        --profile "$W/$label.$tag.$i.profile.json" -o "$W/$label.$tag.$i.policy.json"
      [ "$i" = 1 ] || rm -f "$W/$label.$tag.$i.policy.json"  # the first run's policies are kept
    done
  done
  rm -rf "$W/model"
done
rm -rf "$W/bin"
tar -C "$W/.." -czf "${OUT:-/tmp}/$NAME.tar.gz" "$NAME"
