// The generic decoder: one forward pass for every family, driven by ModelConfig flags
// (norm kind, activation, gated MLP, parallel residual, rotary / learned positions, biases, GQA).
// Attention goes through csa's one attention path (attention/attention.h) with optional hooks.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/attention.h"
#include "csa/attention/decode.h"
#include "csa/model/model.h"
#include "csa/model/rope.h"

namespace csa {

// Keys and values of the positions already processed (incremental decoding). With page > 0 the
// cache is paged (attention/decode.h): steps of one token read only the pages the hook's rule
// keeps (a page-granular top_k rule of the same page size) or every page (no rule).
struct KvCache {
  std::vector<at::Tensor> k, v;     // per layer [B, Hkv, S, D] (page 0)
  std::vector<PagedKvCache> paged;  // per layer (page > 0)
  int64_t page = 0;
  int64_t reserve = 0;  // paged: positions to allocate at the first append (0: the model's)
  int64_t length = 0;
};

class Decoder {
 public:
  explicit Decoder(const Model& model, AttentionOptions attention = {});

  // tokens: [B, T] int64. Returns the final hidden states [B, T, C] (after the final norm).
  // With `cache`, positions continue from cache->length and the cache is extended.
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

  const Model& model_;
  AttentionOptions attention_;
  RopeTable rope_;
};

}  // namespace csa
