#include "csa/model/config.h"

#include <cmath>

#include "csa/core/error.h"
#include "csa/model/family.h"

namespace csa {
namespace {

void check_positive(const JsonReader& r, const char* field, int64_t v) {
  if (v <= 0) r.fail(field, "must be positive, got " + std::to_string(v));
}

// Sizes past +-2^31 are refused before the families compute with them (4 * n_embd, head_dim x
// partial_rotary_factor, ...); no model is near that. Products of two sizes are checked below.
constexpr int64_t kMaxSize = int64_t(1) << 31;
constexpr const char* kSizeFields[] = {"n_layer",
                                       "n_head",
                                       "n_embd",
                                       "n_inner",
                                       "n_positions",
                                       "vocab_size",
                                       "num_hidden_layers",
                                       "num_attention_heads",
                                       "num_key_value_heads",
                                       "hidden_size",
                                       "intermediate_size",
                                       "max_position_embeddings",
                                       "head_dim"};

// a x b elements must stay far from int64 overflow (tensor shapes and offsets multiply them).
void check_product(const std::string& origin, const char* what, int64_t a, int64_t b) {
  int64_t n = 0;
  if (__builtin_mul_overflow(a, b, &n) || n > (int64_t(1) << 56))
    throw FormatError(origin + ": " + what + " = " + std::to_string(a) + " x " + std::to_string(b) +
                      " is implausibly large");
}

}  // namespace

ModelConfig parse_model_config(const Json& config, const std::string& origin) {
  if (!config.is_object()) throw FormatError(origin + ": config is not a JSON object");
  JsonReader r(config, origin);
  if (!r.has("model_type"))
    throw FormatError(origin +
                      ": field 'model_type' is missing (is this a Hugging Face "
                      "config.json?)");
  ModelConfig c;
  c.model_type = r.get_string("model_type");
  const FamilySpec& family = family_for_model_type(c.model_type, origin);
  c.family = family.name;
  c.bos_token_id = r.has("bos_token_id") && config["bos_token_id"].is_number_integer()
                       ? r.get_int("bos_token_id")
                       : -1;
  c.eos_token_id = r.has("eos_token_id") && config["eos_token_id"].is_number_integer()
                       ? r.get_int("eos_token_id")
                       : -1;
  c.stored_dtype = r.get_string("dtype", r.get_string("torch_dtype", ""));
  for (const char* field : kSizeFields)
    if (r.has(field) && r.raw().at(field).is_number()) {
      const int64_t v = r.get_int(field);
      if (v > kMaxSize || v < -kMaxSize)
        r.fail(field, "is implausibly large: " + std::to_string(v));
    }
  family.parse(r, c);

  check_positive(r, "num_hidden_layers", c.n_layer);
  check_positive(r, "num_attention_heads", c.n_head);
  check_positive(r, "num_key_value_heads", c.n_head_kv);
  check_positive(r, "head_dim", c.head_dim);
  check_positive(r, "hidden_size", c.d_model);
  check_positive(r, "intermediate_size", c.d_ff);
  check_positive(r, "vocab_size", c.vocab_size);
  check_positive(r, "max_position_embeddings", c.n_ctx);
  if (c.n_head % c.n_head_kv != 0)
    r.fail("num_key_value_heads", std::to_string(c.n_head_kv) + " does not divide " +
                                      "num_attention_heads " + std::to_string(c.n_head));
  check_product(origin, "vocab_size x hidden_size", c.vocab_size, c.d_model);
  check_product(origin, "max_position_embeddings x hidden_size", c.n_ctx, c.d_model);
  check_product(origin, "2 x intermediate_size x hidden_size", 2 * c.d_ff, c.d_model);
  check_product(origin, "(heads + 2 x kv heads) x head_dim", c.n_head + 2 * c.n_head_kv,
                c.head_dim);
  check_product(origin, "q/k/v rows x hidden_size", c.qkv_rows(), c.d_model);
  if (!c.learned_positions()) {
    if (c.rope.rotary_dim <= 0 || c.rope.rotary_dim > c.head_dim || c.rope.rotary_dim % 2 != 0)
      throw FormatError(origin + ": rotary dimension " + std::to_string(c.rope.rotary_dim) +
                        " (head_dim x partial_rotary_factor) must be even and in (0, head_dim]");
    if (!(c.rope.theta > 0) || !std::isfinite(c.rope.theta))
      r.fail("rope_theta", "must be positive");
  }
  if (c.attn_scale == 0) c.attn_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  return c;
}

Json config_summary(const ModelConfig& c) {
  static const char* kRope[] = {"learned-absolute", "default", "linear", "llama3"};
  Json j;
  j["family"] = c.family;
  j["model_type"] = c.model_type;
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["n_head_kv"] = c.n_head_kv;
  j["head_dim"] = c.head_dim;
  j["d_model"] = c.d_model;
  j["d_ff"] = c.d_ff;
  j["vocab_size"] = c.vocab_size;
  j["n_ctx"] = c.n_ctx;
  j["norm"] = c.norm == NormKind::kLayerNorm ? "layernorm" : "rmsnorm";
  j["positions"] = kRope[static_cast<int>(c.rope.type)];
  if (!c.learned_positions()) {
    j["rope_theta"] = c.rope.theta;
    j["rotary_dim"] = c.rope.rotary_dim;
  }
  j["parallel_residual"] = c.parallel_residual;
  j["gated_mlp"] = c.gated_mlp;
  j["tied_embeddings"] = c.tied_embeddings;
  return j;
}

}  // namespace csa
