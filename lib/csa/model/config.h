// The normalized description of a decoder-only transformer: one struct of flags that the generic
// decoder reads (STYLE.md §2). Families (families/*.cpp) fill it from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>

#include "csa/core/json.h"

namespace csa {

enum class NormKind { kLayerNorm, kRmsNorm };
enum class Activation { kGeluTanh, kGeluErf, kSilu, kRelu };
// kNone: learned absolute positions (GPT-2). The others are rotary variants.
enum class RopeType { kNone, kDefault, kLinear, kLlama3 };

struct RopeConfig {
  RopeType type = RopeType::kNone;
  double theta = 10000.0;
  int64_t rotary_dim = 0;  // leading dims of each head that rotate (partial rotary: < head_dim)
  double factor = 1.0;     // linear / llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 0;                     // llama3
};

struct ModelConfig {
  std::string family;      // registry key: gpt2, gpt_neox, qwen2, llama
  std::string model_type;  // as in config.json
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t d_model = 0, d_ff = 0, vocab_size = 0, n_ctx = 0;

  NormKind norm = NormKind::kLayerNorm;
  double norm_eps = 1e-5;
  Activation activation = Activation::kGeluTanh;
  bool gated_mlp = false;          // SwiGLU: down(act(gate(x)) * up(x))
  bool parallel_residual = false;  // x + attn(ln1(x)) + mlp(ln2(x))
  RopeConfig rope;                 // type kNone = learned positions
  bool qkv_bias = false, out_bias = false, mlp_bias = false;
  bool tied_embeddings = false;
  double attn_scale = 0;  // multiplies q.k (1/sqrt(head_dim) for every supported family)

  int64_t bos_token_id = -1, eos_token_id = -1;
  std::string stored_dtype;  // config's dtype / torch_dtype, informational

  int64_t group_size() const { return n_head / n_head_kv; }
  int64_t qkv_rows() const { return (n_head + 2 * n_head_kv) * head_dim; }
  bool learned_positions() const { return rope.type == RopeType::kNone; }
};

// Parses a Hugging Face config.json (both layouts: rope_theta/rope_scaling/torch_dtype and
// rope_parameters/dtype). Unknown model_type, unsupported features (sliding-window layers, an
// unknown rope type or activation) and inconsistent sizes are errors naming the field.
ModelConfig parse_model_config(const Json& config, const std::string& origin);

Json config_summary(const ModelConfig& c);  // for JSON outputs and `csa-info`

}  // namespace csa
