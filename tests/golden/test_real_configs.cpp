// The published config.json of every real model csa is for (configs/, sources in
// configs/README.md) parses into the architecture the model card and the transformers modeling
// file describe, and the family's tensor list adds up to the published parameter count. Every
// file in configs/ must have an entry here, so a new config comes with its expected numbers.
#include <cmath>
#include <filesystem>
#include <set>

#include "csa/model/config.h"
#include "csa/model/family.h"
#include "support.h"

using namespace csa;

namespace {

struct Expected {
  const char* file;
  const char* family;
  int64_t n_layer, n_head, n_head_kv, head_dim, d_model, d_ff, vocab_size, n_ctx;
  NormKind norm;
  double norm_eps;
  Activation activation;
  RopeType rope;
  double rope_theta;
  int64_t rotary_dim;
  bool tied_embeddings, parallel_residual, gated_mlp, qkv_bias;
  int64_t n_params;  // stored parameters (a tied lm_head counted once)
};

// Parameter counts: GPT-2 124,439,808 and Pythia-410M 405,334,016 (the Pythia paper's table);
// Qwen2.5-1.5B "1.54B", Llama-3.2-1B "1.23B", Llama-3.2-3B "3.21B" (their model cards).
// clang-format off
const Expected kExpected[] = {
    // file, family, layers, heads, kv heads, head_dim, d_model, d_ff, vocab, n_ctx,
    // norm, eps, activation, positions, rope theta, rotary dim,
    // tied, parallel residual, gated MLP, q/k/v bias, parameters
    {"gpt2.json", "gpt2", 12, 12, 12, 64, 768, 3072, 50257, 1024,
     NormKind::kLayerNorm, 1e-5, Activation::kGeluTanh, RopeType::kNone, 0, 0,
     true, false, false, true, 124439808},
    {"pythia-410m.json", "gpt_neox", 24, 16, 16, 64, 1024, 4096, 50304, 2048,
     NormKind::kLayerNorm, 1e-5, Activation::kGeluErf, RopeType::kDefault, 10000, 16,
     false, true, false, true, 405334016},
    {"qwen2.5-1.5b.json", "qwen2", 28, 12, 2, 128, 1536, 8960, 151936, 131072,
     NormKind::kRmsNorm, 1e-6, Activation::kSilu, RopeType::kDefault, 1e6, 128,
     true, false, true, true, 1543714304},
    {"llama-3.2-1b.json", "llama", 16, 32, 8, 64, 2048, 8192, 128256, 131072,
     NormKind::kRmsNorm, 1e-5, Activation::kSilu, RopeType::kLlama3, 5e5, 64,
     true, false, true, false, 1235814400},
    {"llama-3.2-3b.json", "llama", 28, 24, 8, 128, 3072, 8192, 128256, 131072,
     NormKind::kRmsNorm, 1e-5, Activation::kSilu, RopeType::kLlama3, 5e5, 128,
     true, false, true, false, 3212749824},
};
// clang-format on

std::string configs_dir() { return test::source_dir() + "/configs"; }

int64_t stored_params(const ModelConfig& c) {
  int64_t n = 0;
  for (const TensorSlot& s : family_by_name(c.family).tensors(c)) {
    if (s.param == Param::kLmHead && c.tied_embeddings) continue;  // the embedding again
    int64_t e = 1;
    for (int64_t d : s.shape) e *= d;
    n += e;
  }
  return n;
}

}  // namespace

TEST_CASE("every published config in configs/ parses into its model's architecture", "[golden]") {
  std::set<std::string> listed;
  for (const Expected& e : kExpected) listed.insert(e.file);
  std::set<std::string> present;
  for (const auto& entry : std::filesystem::directory_iterator(configs_dir()))
    if (entry.path().extension() == ".json") present.insert(entry.path().filename().string());
  CHECK(present == listed);  // a config without expected numbers, or an entry without its file

  for (const Expected& e : kExpected) {
    const std::string path = configs_dir() + "/" + e.file;
    INFO(path);
    const ModelConfig c = parse_model_config(read_json_file(path), path);
    CHECK(c.family == e.family);
    CHECK(c.n_layer == e.n_layer);
    CHECK(c.n_head == e.n_head);
    CHECK(c.n_head_kv == e.n_head_kv);
    CHECK(c.head_dim == e.head_dim);
    CHECK(c.d_model == e.d_model);
    CHECK(c.d_ff == e.d_ff);
    CHECK(c.vocab_size == e.vocab_size);
    CHECK(c.n_ctx == e.n_ctx);
    CHECK(c.norm == e.norm);
    CHECK(c.norm_eps == e.norm_eps);
    CHECK(c.activation == e.activation);
    CHECK(c.rope.type == e.rope);
    if (e.rope != RopeType::kNone) {
      CHECK(c.rope.theta == e.rope_theta);
      CHECK(c.rope.rotary_dim == e.rotary_dim);
    }
    CHECK(c.tied_embeddings == e.tied_embeddings);
    CHECK(c.parallel_residual == e.parallel_residual);
    CHECK(c.gated_mlp == e.gated_mlp);
    CHECK(c.qkv_bias == e.qkv_bias);
    CHECK(c.attn_scale == Approx(1.0 / std::sqrt(static_cast<double>(e.head_dim))));
    CHECK(stored_params(c) == e.n_params);
    if (c.rope.type == RopeType::kLlama3) {  // Llama 3.2: rope_scaling as Meta published it
      CHECK(c.rope.factor == 32.0);
      CHECK(c.rope.low_freq_factor == 1.0);
      CHECK(c.rope.high_freq_factor == 4.0);
      CHECK(c.rope.original_max_position == 8192);
    }
    CHECK(c.stored_dtype == (c.family == "gpt2"       ? ""
                             : c.family == "gpt_neox" ? "float16"
                                                      : "bfloat16"));
  }
}
