// Llama (LlamaForCausalLM) and Qwen2 (Qwen2ForCausalLM): the same decoder with different flags.
// transformers/models/llama/modeling_llama.py, models/qwen2/modeling_qwen2.py:
// RMSNorm, SwiGLU MLP, rotary (default / linear / llama3), GQA, Qwen2 has q/k/v bias only.
#include "csa/core/error.h"
#include "csa/model/families/common.h"
#include "csa/model/family.h"

namespace csa {
namespace {

void parse_common(const JsonReader& r, ModelConfig& c, double default_eps) {
  c.n_layer = r.get_int("num_hidden_layers");
  c.n_head = r.get_int("num_attention_heads");
  c.n_head_kv = r.get_int("num_key_value_heads", c.n_head);
  c.d_model = r.get_int("hidden_size");
  if (r.has("head_dim")) {
    c.head_dim = r.get_int("head_dim");
  } else {
    if (c.n_head <= 0 || c.d_model % c.n_head != 0)
      r.fail("hidden_size", std::to_string(c.d_model) +
                                " is not divisible by num_attention_heads (and no head_dim)");
    c.head_dim = c.d_model / c.n_head;
  }
  c.d_ff = r.get_int("intermediate_size");
  c.vocab_size = r.get_int("vocab_size");
  c.n_ctx = r.get_int("max_position_embeddings");
  c.norm = NormKind::kRmsNorm;
  c.norm_eps = r.get_double("rms_norm_eps", default_eps);
  c.activation = families::parse_activation(r, "hidden_act");
  c.gated_mlp = true;
  c.rope = families::parse_rope(r, c.head_dim, 1.0);
  c.tied_embeddings = r.get_bool("tie_word_embeddings", false);
}

void parse_llama(const JsonReader& r, ModelConfig& c) {
  parse_common(r, c, 1e-6);
  c.qkv_bias = c.out_bias = r.get_bool("attention_bias", false);
  c.mlp_bias = r.get_bool("mlp_bias", false);
}

void parse_qwen2(const JsonReader& r, ModelConfig& c) {
  families::refuse_sliding_window(r);
  parse_common(r, c, 1e-6);
  c.qkv_bias = true;  // Qwen2Attention: q/k/v with bias, o_proj without
  c.out_bias = false;
  c.mlp_bias = false;
}

std::vector<TensorSlot> tensors(const ModelConfig& c) {
  const int64_t C = c.d_model, F = c.d_ff, D = c.head_dim;
  const int64_t HQ = c.n_head * D, HKV = c.n_head_kv * D;
  std::vector<TensorSlot> s = {{"model.embed_tokens.weight", {c.vocab_size, C}, Param::kTokEmb}};
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& n, std::vector<int64_t> shape, Param param, int64_t row = 0) {
      s.push_back({p + n, std::move(shape), param, i, row});
    };
    add("input_layernorm.weight", {C}, Param::kNorm1W);
    add("post_attention_layernorm.weight", {C}, Param::kNorm2W);
    add("self_attn.q_proj.weight", {HQ, C}, Param::kQkvW, 0);
    add("self_attn.k_proj.weight", {HKV, C}, Param::kQkvW, HQ);
    add("self_attn.v_proj.weight", {HKV, C}, Param::kQkvW, HQ + HKV);
    if (c.qkv_bias) {
      add("self_attn.q_proj.bias", {HQ}, Param::kQkvB, 0);
      add("self_attn.k_proj.bias", {HKV}, Param::kQkvB, HQ);
      add("self_attn.v_proj.bias", {HKV}, Param::kQkvB, HQ + HKV);
    }
    add("self_attn.o_proj.weight", {C, HQ}, Param::kOutW);
    if (c.out_bias) add("self_attn.o_proj.bias", {C}, Param::kOutB);
    add("mlp.gate_proj.weight", {F, C}, Param::kUpW, 0);
    add("mlp.up_proj.weight", {F, C}, Param::kUpW, F);
    add("mlp.down_proj.weight", {C, F}, Param::kDownW);
    if (c.mlp_bias) {
      add("mlp.gate_proj.bias", {F}, Param::kUpB, 0);
      add("mlp.up_proj.bias", {F}, Param::kUpB, F);
      add("mlp.down_proj.bias", {C}, Param::kDownB);
    }
  }
  s.push_back({"model.norm.weight", {C}, Param::kFinalNormW});
  TensorSlot head{"lm_head.weight", {c.vocab_size, C}, Param::kLmHead};
  head.required = !c.tied_embeddings;
  s.push_back(head);
  return s;
}

const std::vector<std::string> kIgnorable = {R"(.*rotary_emb\.(original_)?inv_freq)"};

}  // namespace

const FamilySpec& llama_family() {
  static const FamilySpec kSpec{"llama",     {"llama"}, "LlamaForCausalLM", "model.",
                                parse_llama, tensors,   kIgnorable};
  return kSpec;
}

const FamilySpec& qwen2_family() {
  static const FamilySpec kSpec{"qwen2",     {"qwen2"}, "Qwen2ForCausalLM", "model.",
                                parse_qwen2, tensors,   kIgnorable};
  return kSpec;
}

}  // namespace csa
