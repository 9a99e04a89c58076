// GPT-2 (GPT2LMHeadModel). transformers/models/gpt2/modeling_gpt2.py:
// learned absolute positions, pre-LayerNorm, Conv1D weights stored [in, out], fused c_attn.
#include "csa/core/error.h"
#include "csa/model/families/common.h"
#include "csa/model/family.h"

namespace csa {
namespace {

void parse(const JsonReader& r, ModelConfig& c) {
  c.n_layer = r.get_int("n_layer");
  c.n_head = r.get_int("n_head");
  c.n_head_kv = c.n_head;
  c.d_model = r.get_int("n_embd");
  if (c.n_head <= 0 || c.d_model % c.n_head != 0)
    r.fail("n_embd",
           std::to_string(c.d_model) + " is not divisible by n_head " + std::to_string(c.n_head));
  c.head_dim = c.d_model / c.n_head;
  c.d_ff = r.get_int("n_inner", 4 * c.d_model);
  c.vocab_size = r.get_int("vocab_size");
  c.n_ctx = r.get_int("n_positions");
  c.norm = NormKind::kLayerNorm;
  c.norm_eps = r.get_double("layer_norm_epsilon", 1e-5);
  c.activation = families::parse_activation(r, "activation_function");
  c.rope.type = RopeType::kNone;
  c.qkv_bias = c.out_bias = c.mlp_bias = true;
  c.tied_embeddings = r.get_bool("tie_word_embeddings", true);
  // scale_attn_weights=false means raw q.k scores (modeling_gpt2.py eager_attention_forward).
  c.attn_scale = r.get_bool("scale_attn_weights", true) ? 0.0 : 1.0;
  if (r.get_bool("scale_attn_by_inverse_layer_idx", false))
    throw UnsupportedError(r.origin() +
                           ": field 'scale_attn_by_inverse_layer_idx' = true is not "
                           "supported");
}

std::vector<TensorSlot> tensors(const ModelConfig& c) {
  const int64_t C = c.d_model, F = c.d_ff;
  std::vector<TensorSlot> s = {
      {"transformer.wte.weight", {c.vocab_size, C}, Param::kTokEmb},
      {"transformer.wpe.weight", {c.n_ctx, C}, Param::kPosEmb},
  };
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    auto add = [&](const std::string& n, std::vector<int64_t> shape, Param param,
                   Transform t = Transform::kNone) {
      s.push_back({p + n, std::move(shape), param, i, 0, t});
    };
    add("ln_1.weight", {C}, Param::kNorm1W);
    add("ln_1.bias", {C}, Param::kNorm1B);
    add("attn.c_attn.weight", {C, 3 * C}, Param::kQkvW, Transform::kTranspose);
    add("attn.c_attn.bias", {3 * C}, Param::kQkvB);
    add("attn.c_proj.weight", {C, C}, Param::kOutW, Transform::kTranspose);
    add("attn.c_proj.bias", {C}, Param::kOutB);
    add("ln_2.weight", {C}, Param::kNorm2W);
    add("ln_2.bias", {C}, Param::kNorm2B);
    add("mlp.c_fc.weight", {C, F}, Param::kUpW, Transform::kTranspose);
    add("mlp.c_fc.bias", {F}, Param::kUpB);
    add("mlp.c_proj.weight", {F, C}, Param::kDownW, Transform::kTranspose);
    add("mlp.c_proj.bias", {C}, Param::kDownB);
  }
  s.push_back({"transformer.ln_f.weight", {C}, Param::kFinalNormW});
  s.push_back({"transformer.ln_f.bias", {C}, Param::kFinalNormB});
  TensorSlot head{"lm_head.weight", {c.vocab_size, C}, Param::kLmHead};
  head.required = !c.tied_embeddings;
  s.push_back(head);
  return s;
}

}  // namespace

const FamilySpec& gpt2_family() {
  static const FamilySpec kSpec{"gpt2",
                                {"gpt2"},
                                "GPT2LMHeadModel",
                                "transformer.",
                                parse,
                                tensors,
                                {R"(.*\.attn\.(masked_)?bias)"}};
  return kSpec;
}

}  // namespace csa
