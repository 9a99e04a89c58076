#!/usr/bin/env bash
# csa-calibrate with 1 and with 2 threads on the inputs of tests/cli/test_determinism.cpp
# (stories260K, the first 20,000 bytes of wikitext2-valid, --tokens 1024 --ctx 256), and per
# need-curve field how far the two policies differ: entries, entries that differ, the largest
# |difference| (and the two values there) and the field's largest magnitude, summed |differences| over summed magnitudes,
# entries past the test's per-entry bound (1e-4 relative + 1% of the field's largest magnitude).
# Writes OUT (default results/cpu/thread_counts.json) with the command and the CPU model.
#   bash scripts/thread_count_curves.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/cpu/thread_counts.json}
SHARED=${CSA_SHARED:-../shared}
B=${CSA_BUILD_DIR:-build}/apps
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
head -c 20000 "$SHARED/corpora/wikitext2-valid.tokens" > "$T/corpus.txt"
for n in 1 2; do
  "$B/csa-calibrate" "$SHARED/models/stories260K" "$T/corpus.txt" --tokens 1024 --ctx 256 \
    --threads "$n" -q -o "$T/p$n.json"
done
python3 - "$T/p1.json" "$T/p2.json" "$OUT" <<'PY'
import json, platform, subprocess, sys
a, b = (json.load(open(p))["need_curves"] for p in sys.argv[1:3])
def leaves(x):
    if isinstance(x, list):
        for y in x:
            yield from leaves(y)
    else:
        yield x
fields = {}
for k, xa in a.items():
    xs, ys = list(leaves(xa)), list(leaves(b[k]))
    if not isinstance(xa, list) or not all(isinstance(v, (int, float)) for v in xs + ys):
        continue
    d = [abs(x - y) for x, y in zip(xs, ys)]
    m = [max(abs(x), abs(y)) for x, y in zip(xs, ys)]
    big = max(m) if m else 0.0
    i = max(range(len(d)), key=d.__getitem__) if d else 0
    fields[k] = {"entries": len(xs), "differing": sum(v > 0 for v in d), "max_abs_diff": max(d, default=0.0),
                 "max_diff_values": [xs[i], ys[i]] if d else [],
                 "max_magnitude": big, "sum_diff_over_sum_magnitude": sum(d) / sum(m) if sum(m) else 0.0,
                 "past_entry_bound": sum(dd > 1e-4 * mm + 1e-2 * big for dd, mm in zip(d, m))}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
json.dump({"command": "bash scripts/thread_count_curves.sh", "cpu": cpu,
           "calibrate": "csa-calibrate stories260K corpus.txt --tokens 1024 --ctx 256 --threads {1,2}",
           "need_curves_1_vs_2_threads": fields}, open(sys.argv[3], "w"), indent=1)
print(json.dumps(fields, indent=1))
PY
