#!/usr/bin/env bash
# Load time of a 1B-shaped checkpoint before and after weight hashing moved from csa's
# hand-written SHA-256 to OpenSSL's (commit 27a0e0b; "before" is its parent), and how much of
# each load the hash alone takes on the same bytes. Bench tier: never in CI.
#
# The checkpoint: Llama-3.2-1B's published config (configs/llama-3.2-1b.json) with random bf16
# weights (csa-bench --save-random: a Hugging Face directory, 2.47 GB model.safetensors) in
# $TMPDIR (default /tmp), never in the repository; deleted at the end.
#   after:  build/apps/csa-bench --load DIR (this tree)
#   before: a driver doing the same (read_checkpoint + build_model, then Sha256 alone over the
#           stored weight bytes after one untimed pass), compiled against the old commit's library
#           in a temporary worktree (configured like scripts/setup.sh: Release, ccache)
# Both load on CPU in float32 (the tools' default), one load per process, REPEATS processes each,
# alternating before / after; medians reported (the file was just written, so it is read from
# the page cache). "load_minus_hash" is each load less the hash-alone time of its process.
#
#   bash scripts/bench_load.sh            # writes results/cpu/load_1b.json
# Environment: CSA_BIN (build/apps), REPEATS (5), THREADS (intra-op threads of both sides; default
# all cores, as the tools), OLD_COMMIT (27a0e0b~1), OLD_DIR (a worktree
# of OLD_COMMIT to build in; default $TMPDIR/csa-bench-load-old, removed at the end unless
# KEEP_OLD=1), CONFIG (configs/llama-3.2-1b.json). Needs ~3 GB free in $TMPDIR and ~8 GB memory;
# building the old library takes minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${CSA_BIN:-build/apps}
REPEATS=${REPEATS:-5}
THREADS=${THREADS:-$(nproc)}
CONFIG=${CONFIG:-configs/llama-3.2-1b.json}
OLD_COMMIT=${OLD_COMMIT:-27a0e0b~1}
TMP=${TMPDIR:-/tmp}
OLD_DIR=${OLD_DIR:-$TMP/csa-bench-load-old}
OUT=results/cpu/load_1b.json
CKPT=$(mktemp -d "$TMP/csa-load-1b.XXXXXX")
WORK=$(mktemp -d "$TMP/csa-load-work.XXXXXX")
source scripts/old_worktree.sh
cleanup() {
  rm -rf "$CKPT" "$WORK"
  old_worktree_remove
}
trap cleanup EXIT

[[ -x "$BIN/csa-bench" ]] || { echo "bench_load: no $BIN/csa-bench (build first, or set CSA_BIN)" >&2; exit 2; }
free_kb=$(df -Pk "$TMP" | awk 'NR==2 {print $4}')
[ "$free_kb" -gt 4000000 ] || { echo "bench_load: under 4 GB free in $TMP" >&2; exit 2; }

# The old commit's library and a driver against it.
old_worktree_add bench_load
mkdir -p "$OLD_DIR/load_driver"
cat > "$OLD_DIR/load_driver/main.cpp" <<'CPP'
// csa-bench --load's measurement, against the csa library of the tree it is built in.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "csa/core/hash.h"
#include "csa/model/model.h"

using namespace csa;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const std::string path = argv[1];
  const int repeats = std::atoi(argv[2]);
  at::set_num_threads(std::atoi(argv[3]));  // as the tools' --threads
  std::vector<double> total, read, build, hash;
  std::string sha;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    Checkpoint ck = read_checkpoint(path);
    read.push_back(since(t0));
    auto t1 = Clock::now();
    const Model m = build_model(std::move(ck));
    build.push_back(since(t1));
    total.push_back(since(t0));
    sha = m.identity.weights_sha256;
  }
  const Checkpoint ck = read_checkpoint(path);
  const ModelConfig c = parse_model_config(ck.config, ck.config_origin);
  const auto tensors = source_tensors(ck, c);
  int64_t bytes = 0;
  auto hash_all = [&] {
    Sha256 h;
    bytes = 0;
    for (const auto& [name, t] : tensors) {
      const at::Tensor b = t.contiguous();
      const size_t n = static_cast<size_t>(b.numel()) * b.element_size();
      h.update(b.data_ptr(), n);
      bytes += static_cast<int64_t>(n);
    }
    return h.hex_digest();
  };
  hash_all();
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    hash_all();
    hash.push_back(since(t0));
  }
  Json j;
  j["mode"] = "load";
  j["model"] = path;
  j["format"] = ck.format;
  j["family"] = c.family;
  j["threads"] = at::get_num_threads();
  j["weights_sha256"] = sha;
  j["seconds"] = total;
  j["median_seconds"] = median(total);
  j["read_seconds"] = read;
  j["build_seconds"] = build;
  j["hash"] = "SHA-256 (csa's hand-written lib/csa/core/hash.cpp)";
  j["hash_bytes"] = bytes;
  j["hash_seconds"] = hash;
  j["hash_median_seconds"] = median(hash);
  j["hash_mb_per_second"] = static_cast<double>(bytes) / median(hash) / 1e6;
  j["hash_fraction"] = median(hash) / median(total);
  std::cout << dump_json(j);
  return 0;
}
CPP
grep -q load_driver "$OLD_DIR/CMakeLists.txt" || cat >> "$OLD_DIR/CMakeLists.txt" <<'CMAKE'
add_executable(csa_load_driver load_driver/main.cpp)
target_link_libraries(csa_load_driver PRIVATE csa)
CMAKE
if [ ! -f "$OLD_DIR/build/CMakeCache.txt" ]; then
  GEN=()
  command -v ninja >/dev/null && GEN=(-G Ninja)
  LAUNCHER=()
  command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$OLD_DIR" -B "$OLD_DIR/build" "${GEN[@]}" "${LAUNCHER[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCSA_BUILD_TESTS=OFF -DCSA_BUILD_APPS=OFF >&2
fi
CCACHE_BASEDIR=$OLD_DIR cmake --build "$OLD_DIR/build" -j "$(nproc)" --target csa_load_driver >&2

# The checkpoint, then both loads of it.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN/csa-bench" --save-random "$CKPT" --config "$CONFIG" -q > "$WORK/save.json"
ls -l "$CKPT" >&2
# Alternating, one load per process, so that the other jobs on a shared machine weigh on both.
for i in $(seq "$REPEATS"); do
  "$OLD_DIR/build/csa_load_driver" "$CKPT" 1 "$THREADS" > "$WORK/before.$i.json"
  "$BIN/csa-bench" --load "$CKPT" --repeats 1 --threads "$THREADS" -q > "$WORK/after.$i.json"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p results/cpu
python3 - "$WORK" "$OUT" <<PY
import json, os, platform, subprocess, sys
work, out = sys.argv[1], sys.argv[2]
j = lambda n: json.load(open(os.path.join(work, n)))
save = j("save.json")
def merged(side):
    runs = [j(f"{side}.{i}.json") for i in range(1, int("$REPEATS") + 1)]
    m = dict(runs[0])
    for key in ("seconds", "read_seconds", "build_seconds", "hash_seconds"):
        m[key] = [x for r in runs for x in r[key]]
    med = lambda v: sorted(v)[len(v) // 2]
    m["median_seconds"] = med(m["seconds"])
    m["min_seconds"] = min(m["seconds"])
    m["hash_median_seconds"] = med(m["hash_seconds"])
    m["hash_min_seconds"] = min(m["hash_seconds"])
    m["hash_mb_per_second"] = m["hash_bytes"] / m["hash_median_seconds"] / 1e6
    m["hash_fraction"] = m["hash_median_seconds"] / m["median_seconds"]
    m["hash_fraction_of_min"] = m["hash_min_seconds"] / m["min_seconds"]
    m["non_hash_median_seconds"] = med([t - h for t, h in zip(m["seconds"], m["hash_seconds"])])
    m["processes"] = len(runs)
    assert len({r["weights_sha256"] for r in runs}) == 1
    return m
before, after = merged("before"), merged("after")
def sh(*a):
    return subprocess.run(a, capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
# Medians, and minima: other jobs on a shared machine only ever add time, so the fastest run is
# the closest to an idle machine's (hash_fraction_of_min: fastest hash over fastest load).
summary = {
    "load_seconds_before": before["median_seconds"],
    "load_seconds_after": after["median_seconds"],
    "load_min_seconds_before": before["min_seconds"],
    "load_min_seconds_after": after["min_seconds"],
    "hash_seconds_before": before["hash_median_seconds"],
    "hash_seconds_after": after["hash_median_seconds"],
    "hash_fraction_before": before["hash_fraction"],
    "hash_fraction_after": after["hash_fraction"],
    "hash_fraction_of_min_before": before["hash_fraction_of_min"],
    "hash_fraction_of_min_after": after["hash_fraction_of_min"],
    "hash_mb_per_second_before": before["hash_mb_per_second"],
    "hash_mb_per_second_after": after["hash_mb_per_second"],
    "load_minus_hash_seconds_before": before["non_hash_median_seconds"],
    "load_minus_hash_seconds_after": after["non_hash_median_seconds"],
    "same_weights_sha256": before["weights_sha256"] == after["weights_sha256"],
}
doc = {
    "kind": "csa-load-bench",
    "command": "REPEATS=$REPEATS THREADS=$THREADS CONFIG=$CONFIG OLD_COMMIT=$OLD_COMMIT bash scripts/bench_load.sh",
    "repeats": int("$REPEATS"),
    "threads": int("$THREADS"),
    "config": "$CONFIG",
    "commits": {"after": sh("git", "rev-parse", "HEAD"), "before": "$old_sha",
                "hash_change": "27a0e0b (OpenSSL EVP SHA-256)"},
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_kb": int(mem),
                "kernel": platform.release(), "openssl": sh("openssl", "version"),
                "csa": sh("$BIN/csa-bench", "--version"),
                "load_average_start": "$load_start", "load_average_end": "$load_end"},
    "checkpoint": save,  # its directory was deleted after the run
    "summary": summary,
    "before": before,
    "after": after,
}
json.dump(doc, open(out, "w"), indent=1)
open(out, "a").write("\n")
print(json.dumps(summary, indent=1))
PY
