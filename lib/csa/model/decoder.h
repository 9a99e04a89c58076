// The generic decoder: one forward pass for every family, driven by ModelConfig flags
// (norm kind, activation, gated MLP, parallel residual, rotary / learned positions, biases, GQA).
// Attention goes through csa's one attention path (attention/attention.h) with optional hooks.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "csa/attention/attention.h"
#include "csa/attention/decode.h"
#include "csa/model/model.h"
#include "csa/model/rope.h"

namespace csa {

// RMSNorm over the last dimension (LlamaRMSNorm / Qwen2RMSNorm): float32 mean of squares,
// (x · rsqrt(mean + eps)) in x's type, times w. One pass per row on the CPU (float32) and, in GPU
// builds, one CUDA kernel (model/norm_cuda_kernel.h) unless allow_kernel is false; the tensor
// form otherwise. The paths agree to rounding (the sums' order differs).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, bool allow_kernel = true);

// Keys and values of the positions already processed (incremental decoding). With page > 0 the
// cache is paged (attention/decode.h): steps of one token read only the pages the hook's rule
// keeps (a page-granular top_k rule of the same page size) or every page (no rule).
struct DecodeStepGraph;  // decoder.cpp: a captured one-token step

struct KvCache {
  std::vector<at::Tensor> k, v;     // per layer [B, Hkv, S, D] (page 0)
  std::vector<PagedKvCache> paged;  // per layer (page > 0)
  int64_t page = 0;
  int64_t reserve = 0;  // paged: positions to allocate at the first append (0: the model's)
  int64_t length = 0;
  // Paged caches on CUDA (GPU builds): one-token steps replay a CUDA graph of the whole step
  // (every layer; the position comes from device memory, so one graph serves every length up to
  // the storage's capacity). The first such step runs eagerly with the graph's kernels, the
  // second captures, later ones replay; a change of batch, hook or storage captures again.
  // Steps whose hook counts reads or observes, or whose rule the kernels do not take, run
  // eagerly. Results equal the eager steps'.
  bool graphs = false;
  std::shared_ptr<DecodeStepGraph> graph;
  // Paged steps' kernel options (decode.h); the position is the decoder's.
  DecodeOptions decode;
};

class Decoder {
 public:
  explicit Decoder(const Model& model, AttentionOptions attention = {});

  // tokens: [B, T] int64. Returns the final hidden states [B, T, C] (after the final norm).
  // With `cache`, positions continue from cache->length and the cache is extended. Token ids on
  // the CPU are checked against the vocabulary (InputError); ids already on the model's device
  // are not (the check would wait for the device at every step).
  at::Tensor hidden(const at::Tensor& tokens, AttentionHook* hook = nullptr,
                    KvCache* cache = nullptr) const;
  // hidden [..., C] -> logits [..., V] in float32.
  at::Tensor logits(const at::Tensor& hidden) const;
  // hidden + logits: [B, T, V] float32.
  at::Tensor forward(const at::Tensor& tokens, AttentionHook* hook = nullptr,
                     KvCache* cache = nullptr) const;

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config; }
  const AttentionOptions& attention_options() const { return attention_; }
  void set_attention_options(const AttentionOptions& o) { attention_ = o; }

 private:
  at::Tensor norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;
  at::Tensor mlp(const LayerWeights& l, const at::Tensor& x) const;
  // The output projection and the residual / MLP of a layer after its attention a [B, H, T, D].
  at::Tensor finish_layer(const LayerWeights& l, const at::Tensor& x, at::Tensor a, int64_t B,
                          int64_t T) const;
  at::Tensor paged_step(const at::Tensor& q, const PagedKvCache& pc, const ModelConfig& c,
                        int layer, const LayerRule& rule, AttentionHook* hook) const;
  // The layers and the final norm for ids [B, T] on the device at positions pos0...; with
  // `position` (int64 [1] on the device, = pos0, T = 1, a paged cache) every position-dependent
  // operation reads it there (what a CUDA graph captures).
  at::Tensor layers(const at::Tensor& ids, AttentionHook* hook, KvCache* cache, int64_t pos0,
                    const at::Tensor& position) const;
  // Whether a one-token step with this hook can be captured (KvCache::graphs).
  bool graphable(const KvCache& cache, AttentionHook* hook) const;
  at::Tensor graph_step(const at::Tensor& ids, AttentionHook* hook, KvCache* cache) const;

  const Model& model_;
  AttentionOptions attention_;
  RopeTable rope_;
};

}  // namespace csa
