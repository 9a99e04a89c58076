// The generic decoder: one forward pass for every family, driven by ModelConfig flags
// (norm kind, activation, gated MLP, parallel residual, rotary / learned positions, biases, GQA).
// Attention goes through csa's one attention path (attention/attention.h) with optional hooks.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/attention.h"
#include "csa/model/model.h"
#include "csa/model/rope.h"

namespace csa {

// Keys and values of the positions already processed (incremental decoding).
struct KvCache {
  std::vector<at::Tensor> k, v;  // per layer [B, Hkv, S, D]
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

  const Model& model_;
  AttentionOptions attention_;
  RopeTable rope_;
};

}  // namespace csa
