// Micro-benchmark of the attention path (csa-bench): time and peak memory of one attention call
// vs context length, dense vs per-head top-k, fused kernel vs the explicit score path, on random
// q/k/v of a model's head layout. scripts/bench_scaling.sh runs it one process per point (peak
// RSS is per process) and writes results/.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa {

struct AttentionBenchOptions {
  int64_t ctx = 2048;
  int64_t batch = 1;
  int64_t heads = 6, kv_heads = 2, head_dim = 64;
  std::string mode = "dense";    // dense | top_k | top_p (older spellings topk, topp read too)
  std::vector<int64_t> budgets;  // topk: one per head, or one for all (default 64)
  double mass = 0.9;             // topp
  std::string path = "auto";     // auto (fastest the build has) | explicit (score tensor)
  int repeats = 5;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// {"config", "seconds": [...], "median_seconds", "flops", "bytes", "peak_memory_bytes", ...}
Json run_attention_bench(const AttentionBenchOptions& options);

}  // namespace csa
