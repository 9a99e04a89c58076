#include "csa/model/weights.h"

#include "csa/core/error.h"

namespace csa {

at::Tensor& Weights::param(Param p, int layer) {
  switch (p) {
    case Param::kTokEmb:
      return tok_emb;
    case Param::kPosEmb:
      return pos_emb;
    case Param::kFinalNormW:
      return final_norm_w;
    case Param::kFinalNormB:
      return final_norm_b;
    case Param::kLmHead:
      return lm_head;
    case Param::kLmHeadB:
      return lm_head_b;
    default:
      break;
  }
  CSA_CHECK(layer >= 0 && layer < static_cast<int>(layers.size()), "layer index out of range");
  LayerWeights& l = layers[static_cast<size_t>(layer)];
  switch (p) {
    case Param::kNorm1W:
      return l.norm1_w;
    case Param::kNorm1B:
      return l.norm1_b;
    case Param::kNorm2W:
      return l.norm2_w;
    case Param::kNorm2B:
      return l.norm2_b;
    case Param::kQkvW:
      return l.qkv_w;
    case Param::kQkvB:
      return l.qkv_b;
    case Param::kOutW:
      return l.out_w;
    case Param::kOutB:
      return l.out_b;
    case Param::kUpW:
      return l.up_w;
    case Param::kUpB:
      return l.up_b;
    case Param::kDownW:
      return l.down_w;
    case Param::kDownB:
      return l.down_b;
    default:
      break;
  }
  CSA_CHECK(false, "unknown parameter");
}

std::vector<int64_t> canonical_shape(const ModelConfig& c, Param p) {
  const int64_t C = c.d_model, F = c.d_ff * (c.gated_mlp ? 2 : 1);
  switch (p) {
    case Param::kTokEmb:
    case Param::kLmHead:
      return {c.vocab_size, C};
    case Param::kLmHeadB:
      return {c.vocab_size};
    case Param::kPosEmb:
      return {c.n_ctx, C};
    case Param::kFinalNormW:
    case Param::kFinalNormB:
    case Param::kNorm1W:
    case Param::kNorm1B:
    case Param::kNorm2W:
    case Param::kNorm2B:
    case Param::kOutB:
    case Param::kDownB:
      return {C};
    case Param::kQkvW:
      return {c.qkv_rows(), C};
    case Param::kQkvB:
      return {c.qkv_rows()};
    case Param::kOutW:
      return {C, c.n_head * c.head_dim};
    case Param::kUpW:
      return {F, C};
    case Param::kUpB:
      return {F};
    case Param::kDownW:
      return {C, c.d_ff};
  }
  CSA_CHECK(false, "unknown parameter");
}

void weights_to(Weights& w, const at::Device& device, at::ScalarType dtype) {
  auto move = [&](at::Tensor& t) {
    if (t.defined()) t = t.to(device, dtype);
  };
  bool tied = w.lm_head.defined() && w.lm_head.is_same(w.tok_emb);
  move(w.tok_emb);
  move(w.pos_emb);
  move(w.final_norm_w);
  move(w.final_norm_b);
  if (tied)
    w.lm_head = w.tok_emb;
  else
    move(w.lm_head);
  move(w.lm_head_b);
  for (auto& l : w.layers) {
    for (at::Tensor* t : {&l.norm1_w, &l.norm1_b, &l.norm2_w, &l.norm2_b, &l.qkv_w, &l.qkv_b,
                          &l.out_w, &l.out_b, &l.up_w, &l.up_b, &l.down_w, &l.down_b})
      move(*t);
  }
}

}  // namespace csa
