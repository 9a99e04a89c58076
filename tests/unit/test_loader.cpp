#include "csa/core/error.h"
#include "csa/model/convert.h"
#include "csa/model/decoder.h"
#include "csa/model/model.h"
#include "model_factory.h"

using namespace csa;

TEST_CASE("a synthetic checkpoint of every family loads from a directory and an archive",
          "[unit]") {
  for (const FamilySpec* f : registered_families()) {
    INFO(f->name);
    test::TempDir dir;
    Json cfg = test::tiny_config(f->model_types.front());
    test::write_hf_dir(dir.path(), cfg, test::tiny_weights(cfg));
    Model a = load_model(dir.path());
    ConvertOptions conv;
    conv.input = dir.path();
    conv.output = dir.file("m.pt");
    convert_to_torchscript(conv);
    Model b = load_model(dir.file("m.pt"));
    CHECK(a.identity.weights_sha256 == b.identity.weights_sha256);
    at::Tensor ids = at::randint(0, 40, {2, 9}, at::kLong);
    Decoder da(a), db(b);
    at::Tensor la = da.forward(ids), lb = db.forward(ids);
    CHECK(la.sizes() == at::IntArrayRef({2, 9, 40}));
    CHECK_TENSOR_CLOSE(la, lb, 0.0);
  }
}

TEST_CASE("missing, unused, misshapen and non-finite tensors are errors naming the tensor",
          "[unit]") {
  Json cfg = test::tiny_config("llama");
  auto weights = test::tiny_weights(cfg);
  auto fails = [&](const std::map<std::string, at::Tensor>& w, const std::string& needle) {
    test::TempDir dir;
    test::write_hf_dir(dir.path(), cfg, w);
    CHECK_THROWS_WITH(load_model(dir.path()), Catch::Contains(needle));
  };
  auto w = weights;
  w.erase("model.layers.1.self_attn.k_proj.weight");
  fails(w, "tensor 'model.layers.1.self_attn.k_proj.weight' is missing");
  w = weights;
  w["model.layers.0.self_attn.extra.weight"] = at::zeros({2});
  fails(w, "'model.layers.0.self_attn.extra.weight': is not used");
  w = weights;
  w["model.layers.0.mlp.up_proj.weight"] = at::zeros({24, 15});
  fails(w, "has shape [24, 15] but the config");
  w = weights;
  w["model.norm.weight"] = at::full({16}, std::nan(""));
  fails(w, "'model.norm.weight': contains NaN or Inf");
  w = weights;
  w["model.embed_tokens.weight"] = at::zeros({40, 16}, at::kLong);
  fails(w, "expected a floating-point weight");
  // Ignorable buffers (rotary inv_freq) are accepted.
  w = weights;
  w["model.rotary_emb.inv_freq"] = at::ones({2});
  test::TempDir ok;
  test::write_hf_dir(ok.path(), cfg, w);
  CHECK_NOTHROW(load_model(ok.path()));
}

TEST_CASE("a tied checkpoint that stores a different lm_head is refused", "[unit]") {
  Json cfg = test::tiny_config("llama");
  auto w = test::tiny_weights(cfg);
  w["lm_head.weight"] = at::randn({40, 16});
  test::TempDir dir;
  test::write_hf_dir(dir.path(), cfg, w);
  CHECK_THROWS_WITH(load_model(dir.path()), Catch::Contains("tie_word_embeddings=true"));
  w["lm_head.weight"] = w["model.embed_tokens.weight"].clone();
  test::write_hf_dir(dir.path(), cfg, w);
  CHECK_NOTHROW(load_model(dir.path()));
}

TEST_CASE("model paths that are not models are refused clearly", "[unit]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(load_model(dir.file("nothing")), Catch::Contains("no such file"));
  CHECK_THROWS_WITH(load_model(dir.path()), Catch::Contains("no weights found"));
  test::write_text(dir.file("random.bin"), std::string(100, '\x7f'));
  CHECK_THROWS_WITH(load_model(dir.file("random.bin")), Catch::Contains("unrecognised model file"));
  // An archive without config: the hint says --config.
  Json cfg = test::tiny_config("gpt2");
  std::map<std::string, at::Tensor> w = test::tiny_weights(cfg);
  csa::write_safetensors(dir.file("w.safetensors"), w);
  CHECK_THROWS_WITH(load_model(dir.file("w.safetensors")), Catch::Contains("--config"));
  test::write_text(dir.file("config.json"), cfg.dump());
  LoadOptions opts;
  opts.config_path = dir.file("config.json");
  CHECK_NOTHROW(load_model(dir.file("w.safetensors"), opts));
}
