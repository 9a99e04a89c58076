// GPT-NeoX / Pythia (GPTNeoXForCausalLM). transformers/models/gpt_neox/modeling_gpt_neox.py:
// partial rotary (rotary_pct / partial_rotary_factor), parallel residual, fused qkv laid out
// per head as [q, k, v], untied embed_out.
#include "csa/core/error.h"
#include "csa/model/families/common.h"
#include "csa/model/family.h"

namespace csa {
namespace {

void parse(const JsonReader& r, ModelConfig& c) {
  c.n_layer = r.get_int("num_hidden_layers");
  c.n_head = r.get_int("num_attention_heads");
  c.n_head_kv = c.n_head;
  c.d_model = r.get_int("hidden_size");
  if (c.n_head <= 0 || c.d_model % c.n_head != 0)
    r.fail("hidden_size", std::to_string(c.d_model) + " is not divisible by num_attention_heads");
  c.head_dim = c.d_model / c.n_head;
  c.d_ff = r.get_int("intermediate_size");
  c.vocab_size = r.get_int("vocab_size");
  c.n_ctx = r.get_int("max_position_embeddings");
  c.norm = NormKind::kLayerNorm;
  c.norm_eps = r.get_double("layer_norm_eps", 1e-5);
  c.activation = families::parse_activation(r, "hidden_act");
  c.parallel_residual = r.get_bool("use_parallel_residual", true);
  c.rope = families::parse_rope(r, c.head_dim, 0.25);
  c.qkv_bias = c.out_bias = r.get_bool("attention_bias", true);
  c.mlp_bias = true;
  c.tied_embeddings = r.get_bool("tie_word_embeddings", false);
}

std::vector<TensorSlot> tensors(const ModelConfig& c) {
  const int64_t C = c.d_model, F = c.d_ff, HD = c.n_head * c.head_dim;
  std::vector<TensorSlot> s = {{"gpt_neox.embed_in.weight", {c.vocab_size, C}, Param::kTokEmb}};
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "gpt_neox.layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& n, std::vector<int64_t> shape, Param param,
                   Transform t = Transform::kNone) {
      s.push_back({p + n, std::move(shape), param, i, 0, t});
    };
    add("input_layernorm.weight", {C}, Param::kNorm1W);
    add("input_layernorm.bias", {C}, Param::kNorm1B);
    add("post_attention_layernorm.weight", {C}, Param::kNorm2W);
    add("post_attention_layernorm.bias", {C}, Param::kNorm2B);
    add("attention.query_key_value.weight", {3 * HD, C}, Param::kQkvW, Transform::kNeoxQkv);
    if (c.qkv_bias)
      add("attention.query_key_value.bias", {3 * HD}, Param::kQkvB, Transform::kNeoxQkv);
    add("attention.dense.weight", {C, HD}, Param::kOutW);
    if (c.out_bias) add("attention.dense.bias", {C}, Param::kOutB);
    add("mlp.dense_h_to_4h.weight", {F, C}, Param::kUpW);
    add("mlp.dense_h_to_4h.bias", {F}, Param::kUpB);
    add("mlp.dense_4h_to_h.weight", {C, F}, Param::kDownW);
    add("mlp.dense_4h_to_h.bias", {C}, Param::kDownB);
  }
  s.push_back({"gpt_neox.final_layer_norm.weight", {C}, Param::kFinalNormW});
  s.push_back({"gpt_neox.final_layer_norm.bias", {C}, Param::kFinalNormB});
  TensorSlot head{"embed_out.weight", {c.vocab_size, C}, Param::kLmHead};
  head.required = !c.tied_embeddings;
  head.aliases = {"lm_head.weight"};
  s.push_back(head);
  return s;
}

}  // namespace

const FamilySpec& gpt_neox_family() {
  static const FamilySpec kSpec{
      "gpt_neox",
      {"gpt_neox"},
      "GPTNeoXForCausalLM",
      "",
      parse,
      tensors,
      {R"(.*\.attention\.(masked_)?bias)", R"(.*rotary_emb\.(original_)?inv_freq)"}};
  return kSpec;
}

}  // namespace csa
