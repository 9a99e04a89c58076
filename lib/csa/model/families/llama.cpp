// Llama (LlamaForCausalLM) and Qwen2 (Qwen2ForCausalLM): the same decoder with different flags.
// transformers/models/llama/modeling_llama.py, models/qwen2/modeling_qwen2.py:
// RMSNorm, SwiGLU MLP, rotary (default / linear / llama3), GQA, Qwen2 has q/k/v bias only.
#include "csa/model/families/llama.h"

#include "csa/core/error.h"
#include "csa/model/families/common.h"
#include "csa/model/family.h"

namespace csa {
namespace {

// LlamaForCausalLM's state-dict names (modeling_llama.py's module tree; Qwen2's is the same),
// the one place csa spells them: the tensor list below and llama2c_tensors use these.
constexpr const char* kEmbedTokens = "model.embed_tokens.weight";
constexpr const char* kFinalNorm = "model.norm.weight";
constexpr const char* kLmHead = "lm_head.weight";
// Per layer, under "model.layers.<i>.", with ".weight" or ".bias" appended.
constexpr const char* kInputNorm = "input_layernorm";
constexpr const char* kPostAttentionNorm = "post_attention_layernorm";
constexpr const char* kQProj = "self_attn.q_proj";
constexpr const char* kKProj = "self_attn.k_proj";
constexpr const char* kVProj = "self_attn.v_proj";
constexpr const char* kOProj = "self_attn.o_proj";
constexpr const char* kGateProj = "mlp.gate_proj";
constexpr const char* kUpProj = "mlp.up_proj";
constexpr const char* kDownProj = "mlp.down_proj";

std::string layer_tensor(int64_t layer, const char* module, const char* kind = "weight") {
  return "model.layers." + std::to_string(layer) + "." + module + "." + kind;
}

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
  std::vector<TensorSlot> s = {{kEmbedTokens, {c.vocab_size, C}, Param::kTokEmb}};
  for (int i = 0; i < c.n_layer; ++i) {
    auto add = [&](const char* module, const char* kind, std::vector<int64_t> shape, Param param,
                   int64_t row = 0) {
      s.push_back({layer_tensor(i, module, kind), std::move(shape), param, i, row});
    };
    add(kInputNorm, "weight", {C}, Param::kNorm1W);
    add(kPostAttentionNorm, "weight", {C}, Param::kNorm2W);
    add(kQProj, "weight", {HQ, C}, Param::kQkvW, 0);
    add(kKProj, "weight", {HKV, C}, Param::kQkvW, HQ);
    add(kVProj, "weight", {HKV, C}, Param::kQkvW, HQ + HKV);
    if (c.qkv_bias) {
      add(kQProj, "bias", {HQ}, Param::kQkvB, 0);
      add(kKProj, "bias", {HKV}, Param::kQkvB, HQ);
      add(kVProj, "bias", {HKV}, Param::kQkvB, HQ + HKV);
    }
    add(kOProj, "weight", {C, HQ}, Param::kOutW);
    if (c.out_bias) add(kOProj, "bias", {C}, Param::kOutB);
    add(kGateProj, "weight", {F, C}, Param::kUpW, 0);
    add(kUpProj, "weight", {F, C}, Param::kUpW, F);
    add(kDownProj, "weight", {C, F}, Param::kDownW);
    if (c.mlp_bias) {
      add(kGateProj, "bias", {F}, Param::kUpB, 0);
      add(kUpProj, "bias", {F}, Param::kUpB, F);
      add(kDownProj, "bias", {C}, Param::kDownB);
    }
  }
  s.push_back({kFinalNorm, {C}, Param::kFinalNormW});
  TensorSlot head{kLmHead, {c.vocab_size, C}, Param::kLmHead};
  head.required = !c.tied_embeddings;
  s.push_back(head);
  return s;
}

const std::vector<std::string> kIgnorable = {R"(.*rotary_emb\.(original_)?inv_freq)"};

}  // namespace

TensorMap llama2c_tensors(const Llama2cCheckpoint& l, const std::string& path) {
  TensorMap out;
  auto put = [&](const std::string& name, const at::Tensor& t) {
    out[name] = StoredTensor{t, path + ": " + name};
  };
  put(kEmbedTokens, l.token_embedding_table);
  for (size_t i = 0; i < l.layers.size(); ++i) {
    const Llama2cLayer& w = l.layers[i];
    const auto layer = static_cast<int64_t>(i);
    put(layer_tensor(layer, kInputNorm), w.rms_att_weight);
    put(layer_tensor(layer, kQProj), w.wq);
    put(layer_tensor(layer, kKProj), w.wk);
    put(layer_tensor(layer, kVProj), w.wv);
    put(layer_tensor(layer, kOProj), w.wo);
    put(layer_tensor(layer, kPostAttentionNorm), w.rms_ffn_weight);
    put(layer_tensor(layer, kGateProj), w.w1);
    put(layer_tensor(layer, kDownProj), w.w2);
    put(layer_tensor(layer, kUpProj), w.w3);
  }
  put(kFinalNorm, l.rms_final_weight);
  if (l.wcls.defined()) put(kLmHead, l.wcls);
  return out;
}

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
