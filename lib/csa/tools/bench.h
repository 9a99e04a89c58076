// Benchmarks (csa-bench), as JSON:
//   * one attention call: time and peak memory vs context length, dense vs per-head top-k, fused
//     kernel vs the explicit score path, on random q/k/v of a head layout (flags, or a real
//     model's config.json). scripts/bench_scaling.sh runs it one process per point (peak RSS is
//     per process) and writes results/.
//   * a whole-model forward pass of a random-weight model of any config.json (model/random.h):
//     tokens/s and the per-token FLOPs estimate.
//   * a model load (load_model): seconds, its read and build phases, and the weight hashing alone
//     on the same bytes (scripts/bench_load.sh).
//   * writing a random-weight checkpoint (config.json + model.safetensors) for the load benchmark.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa {

struct AttentionBenchOptions {
  int64_t ctx = 2048;
  int64_t batch = 1;
  // A Hugging Face config.json whose num_attention_heads / num_key_value_heads / head_dim set
  // the layout. An explicit heads / kv_heads / head_dim must agree with it (else a UsageError);
  // without a config they default to 6 / 2 / 64.
  std::string config;
  std::optional<int64_t> heads, kv_heads, head_dim;
  std::string mode = "dense";    // dense | top_k | top_p (older spellings topk, topp read too)
  std::vector<int64_t> budgets;  // topk: one per head, or one for all (default 64)
  double mass = 0.9;             // topp
  std::string path = "auto";     // auto (fastest the build has) | explicit (score tensor)
  int repeats = 5;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// {"ctx", "heads", ..., "seconds": [...], "median_seconds", "flops", "bytes_min",
//  "peak_memory_bytes", ...}
Json run_attention_bench(const AttentionBenchOptions& options);

struct ForwardBenchOptions {
  std::string config;  // a Hugging Face config.json (required)
  int64_t batch = 1, tokens = 128;
  int repeats = 3;
  uint64_t seed = 0;                         // random weights and token ids
  at::ScalarType stored_dtype = at::kFloat;  // the random checkpoint's dtype
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;  // compute dtype
};

// Builds the random model (timed as "build_seconds"), then times Decoder::forward on [batch,
// tokens] random ids: {"seconds", "median_seconds", "tokens_per_second", "flops_per_token", ...}.
Json run_forward_bench(const ForwardBenchOptions& options);

// FLOPs of one token's forward pass at `tokens` positions of causal context (the multiply-adds of
// every weight matrix, lm_head included, x2; plus q.k and p.v over the (tokens + 1) / 2 keys a
// token reads on average): {"matmul", "attention", "total"}.
Json forward_flops_per_token(const Json& config, const std::string& origin, int64_t tokens);

struct LoadBenchOptions {
  std::string model;   // any model path the tools take
  std::string config;  // --config override
  int repeats = 3;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// Times load_model `repeats` times (the first may read from disk, the rest from the page cache),
// its two phases (read_checkpoint, build_model), and SHA-256 alone over the same weight bytes:
// {"seconds", "median_seconds", "read_seconds", "build_seconds", "hash_seconds",
//  "hash_bytes", "hash_fraction", ...}.
Json run_load_bench(const LoadBenchOptions& options);

struct SaveRandomOptions {
  std::string config;  // a Hugging Face config.json (required)
  std::string dir;     // written: dir/config.json + dir/model.safetensors
  uint64_t seed = 0;
  at::ScalarType stored_dtype = at::kBFloat16;
};

Json run_save_random(const SaveRandomOptions& options);

// A model's forward on the CPU at the evaluation's batching: `batch` windows of `ctx` tokens per
// pass (non-overlapping, from `corpus` or random ids), hidden states, LM head and per-token NLL
// as csa-eval runs them, dense or under a uniform top-k (--mode top_k --budget K).
struct ModelForwardBenchOptions {
  std::string model;   // a model csa-eval takes
  std::string corpus;  // text; empty: random token ids
  int64_t ctx = 2048, batch = 4;
  std::string mode = "dense";  // dense | top_k
  int64_t budget = 64;
  int repeats = 3;
  std::string device = "cpu", dtype = "float32";
  std::string path = "auto";  // auto | explicit (no fused attention kernels)
};

// {"seconds", "median_seconds", "flops" (linear layers, LM head, causal attention of a dense
// forward), "gflops_per_second", "flops_by_part", "peak_memory_bytes", ...}
Json run_model_forward_bench(const ModelForwardBenchOptions& options);

// The GEMM peer of run_model_forward_bench: BLAS sgemm (the kernel's cpu::gemm_nt, cblas_sgemm
// where the build has it) alone on that forward's matrix shapes with the process's threads: per
// layer q/k/v, output, MLP up and down on [batch·ctx, ·] rows, the LM head per window, and
// attention's scores and values as dense [G·ctx, D] x [D, ctx] products per (batch, KV head). Each
// shape's median time; the FLOP-weighted rate over one forward's worth of them.
Json run_gemm_bench(const ModelForwardBenchOptions& options);

// One decode step over a KV cache of `ctx` positions (attention/decode.h), random q/k/v of a
// head layout, every variant in one run: dense SDPA (the query group folded into query rows, no
// K/V copy), the paged kernels reading every page, the paged kernels at each budget fraction
// (uniform top-k of fraction x ctx keys, page-granular, pages chosen per query head and per KV
// group: rule.h's `group`), and exact token top-k at each fraction
// through the attention path (the fused CUDA kernel where its scores fit, else the explicit
// path). With `model`: whole-model decode steps of a random-weight model of `config` instead,
// dense vs paged top-k, tokens/s. {"runs": [{"label", "median_seconds", "reads_fraction",
// "kv_bytes_fraction", ...}], ...}
struct DecodeBenchOptions {
  std::string config;
  std::optional<int64_t> heads, kv_heads, head_dim;
  int64_t ctx = 4096, batch = 1, page = 16;
  std::vector<double> fractions = {0.05, 0.1};
  int repeats = 5, iters = 20;
  bool model = false;           // whole-model steps (needs config)
  int kept_pages_per_warp = 1;  // DecodeOptions::kept_pages_per_warp of the sparse steps
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};
Json run_decode_bench(const DecodeBenchOptions& options);

// csa-bench's options, flat as on the command line: the mode picks which run_* gets them.
struct BenchOptions {
  bool forward = false;           // --forward (of --model, or of a random model of --config)
  bool gemm = false;              // --gemm (BLAS alone on --model's forward shapes)
  bool decode = false;            // --decode (one decode step over a paged cache of --ctx)
  bool decode_model = false;      // --decode-model (whole-model decode steps of --config)
  int64_t page = 16;              // --page
  int kept_pages_per_warp = 1;    // --kept-pages-per-warp
  std::vector<double> fractions;  // --fraction (decode budgets; default 0.05 and 0.1)
  std::string model, corpus;      // --model, --corpus (--forward / --gemm of a real model)
  std::string load;               // --load MODEL
  std::string save_random;        // --save-random DIR
  std::string config;             // --config
  std::optional<int64_t> ctx;     // attention: context (2048); forward: tokens per sequence (128)
  int64_t batch = 1;
  std::optional<int64_t> heads, kv_heads, head_dim;
  std::string mode = "dense";
  std::vector<int64_t> budgets;
  double mass = 0.9;
  std::string path = "auto";
  std::optional<int> repeats;  // 5 for attention, 3 for forward and load
  uint64_t seed = 0;
  std::string stored_dtype;  // random weights: float32 (forward) / bfloat16 (save-random)
  std::string device = "cpu", dtype = "float32";
};

// Checks that the flags fit the mode (UsageError naming the flag otherwise) and runs it.
Json run_bench(const BenchOptions& options);

}  // namespace csa
