#include <c10/core/GradMode.h>

#include "csa/model/decoder.h"
#include "csa/model/random.h"
#include "model_factory.h"

using namespace csa;

TEST_CASE("a random model of every family binds its tensor list and runs forward", "[unit]") {
  c10::NoGradGuard no_grad;
  for (const FamilySpec* f : registered_families()) {
    INFO(f->name);
    const Json cfg = test::tiny_config(f->model_types.front());
    RandomWeightsOptions w;
    w.seed = 7;
    const Model m = random_model(cfg, "configs/tiny.json", w);
    CHECK(m.config.family == f->name);
    CHECK(m.identity.name == "tiny (random, seed 7)");
    CHECK(m.identity.format == "random");
    // _init_weights: norm weights 1, biases 0, matrices N(0, initializer_range = 0.02).
    CHECK(m.weights.final_norm_w.equal(at::ones_like(m.weights.final_norm_w)));
    if (m.weights.layers[0].qkv_b.defined())
      CHECK(m.weights.layers[0].qkv_b.equal(at::zeros_like(m.weights.layers[0].qkv_b)));
    const double sd = m.weights.layers[0].qkv_w.std().item<double>();
    CHECK(sd > 0.015);
    CHECK(sd < 0.025);

    Decoder decoder(m);
    const at::Tensor tokens = at::arange(6, at::kLong).remainder(m.config.vocab_size).view({1, 6});
    const at::Tensor logits = decoder.forward(tokens);  // [1, 6, V]
    CHECK(logits.sizes() == at::IntArrayRef({1, 6, m.config.vocab_size}));
    CHECK(at::isfinite(logits).all().item<bool>());
  }
}

TEST_CASE("random weights are a function of the seed", "[unit]") {
  const Json cfg = test::tiny_config("llama");
  RandomWeightsOptions a, b;
  a.seed = b.seed = 3;
  const std::string h1 = random_model(cfg, "c", a).identity.weights_sha256;
  CHECK(random_model(cfg, "c", b).identity.weights_sha256 == h1);
  b.seed = 4;
  CHECK(random_model(cfg, "c", b).identity.weights_sha256 != h1);
  b.seed = 3;
  b.stddev = 0.5;  // an explicit scale replaces the config's initializer_range
  const Model wide = random_model(cfg, "c", b);
  CHECK(wide.identity.weights_sha256 != h1);
  CHECK(wide.weights.tok_emb.std().item<double>() > 0.3);
  b.stddev = -1;
  CHECK_THROWS_AS(random_checkpoint(cfg, "c", b), InputError);
}

TEST_CASE("a written random checkpoint loads as the same weights", "[unit]") {
  test::TempDir dir;
  for (const char* type : {"gpt2", "gpt_neox", "qwen2"}) {
    INFO(type);
    const Json cfg = test::tiny_config(type);
    RandomWeightsOptions w;
    w.seed = 1;
    w.stored_dtype = at::kBFloat16;
    const std::string out = dir.file(type);
    const Json written = write_random_checkpoint(cfg, "cfg.json", out, w);
    CHECK(written["parameters"].get<int64_t>() * 2 == written["bytes"].get<int64_t>());
    const Model loaded = load_model(out);
    const Model direct = random_model(cfg, "cfg.json", w);
    CHECK(loaded.identity.weights_sha256 == direct.identity.weights_sha256);
    CHECK(loaded.weights.layers[0].qkv_w.equal(direct.weights.layers[0].qkv_w));
    CHECK(loaded.raw_config == cfg);
  }
}
