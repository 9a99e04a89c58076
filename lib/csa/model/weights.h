// The decoder's canonical weights, filled from any checkpoint through one tensor visitor.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/model/config.h"
#include "csa/model/family.h"

namespace csa {

struct LayerWeights {
  at::Tensor norm1_w, norm1_b;  // [C]
  at::Tensor norm2_w, norm2_b;  // [C]
  at::Tensor qkv_w;             // [(H + 2*Hkv) * D, C]: rows q heads, k heads, v heads
  at::Tensor qkv_b;             // [(H + 2*Hkv) * D] or undefined
  at::Tensor out_w;             // [C, H*D]
  at::Tensor out_b;             // [C] or undefined
  at::Tensor up_w;              // [F, C], or [2F, C] gated: rows gate then up
  at::Tensor up_b;              // [F] / [2F] or undefined
  at::Tensor down_w;            // [C, F]
  at::Tensor down_b;            // [C] or undefined
};

struct Weights {
  at::Tensor tok_emb;                     // [V, C]
  at::Tensor pos_emb;                     // [n_ctx, C] (learned positions) or undefined
  at::Tensor final_norm_w, final_norm_b;  // [C]
  at::Tensor lm_head;                     // [V, C] (the same tensor as tok_emb when tied)
  at::Tensor lm_head_b;                   // undefined for every supported family
  std::vector<LayerWeights> layers;

  at::Tensor& param(Param p, int layer);
};

// Canonical shape of parameter `p` (every row that slots may write).
std::vector<int64_t> canonical_shape(const ModelConfig& c, Param p);

// Moves every tensor to `device` / `dtype` (norm weights included).
void weights_to(Weights& w, const at::Device& device, at::ScalarType dtype);

}  // namespace csa
