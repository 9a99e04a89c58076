# Sourced by the quality scripts (quality.sh, quality_refine.sh, quality_topp.sh,
# quality_rules.sh, quality_pages.sh) from the project root, with the default output folder and
# their own arguments:   source scripts/quality_common.sh DEFAULT_OUT "$@"
# Arguments MODEL LABEL CTX [OUT_DIR]; environment CSA_SHARED (default ../shared), CSA_BIN
# (build/apps) and DEVICE (cpu). Sets MODEL LABEL CTX OUT SHARED C (corpora) B (binaries)
# DEV (--device, --ctx) P (OUT/LABEL, the outputs' prefix), makes OUT and defines log.
if [ $# -lt 4 ]; then
  echo "usage: bash $0 MODEL LABEL CTX [OUT_DIR]   (OUT_DIR default $1)" >&2
  exit 2
fi
MODEL=$2
LABEL=$3
CTX=$4
OUT=${5:-$1}
SHARED=${CSA_SHARED:-../shared}
C=$SHARED/corpora
B=${CSA_BIN:-build/apps}
DEV=(--device "${DEVICE:-cpu}" --ctx "$CTX")
P=$OUT/$LABEL
mkdir -p "$OUT"
log() { echo "== $(date -u +%T) $LABEL: $*" >&2; }
