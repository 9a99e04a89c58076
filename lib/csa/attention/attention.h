// csa's one attention path: scaled dot-product causal attention with GQA, query chunking to
// bound memory, and hooks (hooks.h) that restrict (a LayerRule) or observe every (layer, head).
// Dispatch: SDPA for unrestricted, unobserved layers (libtorch >= 2); the fused CPU kernel for
// float32 CPU layers that are not observed (token-granular rules); the fused CUDA top-k kernel
// likewise; otherwise the explicit score path, which masks through mask.h (pages.h for
// page-granular rules) and hands probabilities to observers.
#pragma once

#include <ATen/ATen.h>

#include "csa/attention/hooks.h"

namespace csa {

struct AttentionOptions {
  // Upper bound on the bytes of one float32 score block [B, H, Tq, S]; queries are processed in
  // chunks of rows to stay under it (peak memory grows linearly with context, not quadratically).
  int64_t max_score_bytes = int64_t(64) << 20;
  // The same bound on CUDA devices, where larger blocks mean fewer, fuller kernels.
  int64_t max_score_bytes_cuda = int64_t(1) << 30;
  // Use the fused dense kernel (SDPA, libtorch >= 2.0) when no hook is active for the layer.
  bool allow_fused = true;
  // On CPU in float32, run layers that no hook observes through the fused kernel (fused_cpu.h):
  // causal keys only, linear-time selection, softmax and A·V over the kept keys. Off: every
  // restricted layer takes the explicit score path.
  bool allow_fused_cpu = true;
  // On CUDA, run top-k layers that no hook observes through the fused kernel (fused_cuda.h, GPU
  // builds): no score tensor in memory, softmax and P·V over the kept keys. Off (or where the
  // kernel does not apply): the explicit score path.
  bool allow_fused_cuda = true;
};

// q: [B, H, T, D]; k, v: [B, Hkv, S, D] with S >= T; query t sits at position S - T + t.
// `scale` multiplies q.k. Returns [B, H, T, D] in q's dtype.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                  int layer, AttentionHook* hook, const AttentionOptions& options = {});

// The causal -inf mask for a chunk: [Tq, S] with -inf where key > q_pos0 + row.
at::Tensor causal_mask(int64_t q_pos0, int64_t rows, int64_t keys, const at::TensorOptions& opts);

}  // namespace csa
