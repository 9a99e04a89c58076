// Synthetic Hugging Face checkpoints for tests: a config.json and random weights whose names and
// shapes come from the family's tensor list.
#pragma once

#include <map>
#include <string>

#include "csa/core/json.h"
#include "csa/io/safetensors.h"
#include "csa/model/family.h"
#include "support.h"

namespace csa::test {

inline Json tiny_config(const std::string& model_type) {
  if (model_type == "gpt2")
    return {{"model_type", "gpt2"},
            {"n_layer", 2},
            {"n_head", 2},
            {"n_embd", 16},
            {"n_positions", 32},
            {"vocab_size", 40},
            {"activation_function", "gelu_new"}};
  if (model_type == "gpt_neox")
    return {{"model_type", "gpt_neox"}, {"num_hidden_layers", 2},
            {"num_attention_heads", 2}, {"hidden_size", 16},
            {"intermediate_size", 24},  {"max_position_embeddings", 32},
            {"vocab_size", 40},         {"hidden_act", "gelu"},
            {"rotary_pct", 0.5},        {"use_parallel_residual", true}};
  Json c = {
      {"model_type", model_type},      {"num_hidden_layers", 2},     {"num_attention_heads", 4},
      {"num_key_value_heads", 2},      {"hidden_size", 16},          {"intermediate_size", 24},
      {"max_position_embeddings", 32}, {"vocab_size", 40},           {"hidden_act", "silu"},
      {"rope_theta", 10000.0},         {"tie_word_embeddings", true}};
  return c;
}

// Random tensors for every slot of `config` (HF names, float32).
inline std::map<std::string, at::Tensor> tiny_weights(const Json& config) {
  ModelConfig c = parse_model_config(config, "test config");
  std::map<std::string, at::Tensor> w;
  at::manual_seed(0);
  for (const auto& slot : family_by_name(c.family).tensors(c)) {
    if (!slot.required) continue;
    w[slot.name] = at::randn(slot.shape) * 0.3;
  }
  return w;
}

inline void write_hf_dir(const std::string& dir, const Json& config,
                         const std::map<std::string, at::Tensor>& weights) {
  write_text(dir + "/config.json", config.dump(2));
  write_safetensors(dir + "/model.safetensors", weights);
}

}  // namespace csa::test
