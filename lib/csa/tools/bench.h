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

// A model's forward on the CPU at the evaluation's batching: `batch` windows of `ctx` tokens per
// pass (non-overlapping, from `corpus` or random ids), hidden states, LM head and per-token NLL
// as csa-eval runs them, dense or under a uniform top-k (--mode top_k --budget K).
struct ForwardBenchOptions {
  std::string model;   // a model csa-eval takes
  std::string corpus;  // text; empty: random token ids
  int64_t ctx = 2048, batch = 4;
  std::string mode = "dense";  // dense | top_k
  int64_t budget = 64;
  int repeats = 3;
};

// {"seconds", "median_seconds", "flops" (linear layers, LM head, causal attention of a dense
// forward), "gflops_per_second", "flops_by_part", "peak_memory_bytes", ...}
Json run_forward_bench(const ForwardBenchOptions& options);

// The GEMM peer of run_forward_bench: BLAS sgemm (the kernel's cpu::gemm_nt, cblas_sgemm where
// the build has it) alone on that forward's matrix shapes with the process's threads: per layer
// q/k/v, output, MLP up and down on [batch·ctx, ·] rows, the LM head per window, and attention's
// scores and values as dense [G·ctx, D] x [D, ctx] products per (batch, KV head). Each shape's
// median time; the FLOP-weighted rate over one forward's worth of them.
Json run_gemm_bench(const ForwardBenchOptions& options);

}  // namespace csa
