// Parity with the reference implementation (transformers eager attention, float32) on tiny
// random-weight models of every family, loaded every way csa loads models. Fixtures were made by
// scripts/make_fixtures.py on the GPU machine (tests/fixtures/models/manifest.json).
#include <c10/core/GradMode.h>

#include "csa/core/file.h"
#include "csa/io/safetensors.h"
#include "csa/model/decoder.h"
#include "support.h"

using namespace csa;

namespace {

struct ProbsRecorder : AttentionHook {
  std::map<int, std::vector<at::Tensor>> probs;  // layer -> chunks [B, H, Tq, S]
  bool active(int) const override { return true; }
  bool observes(int) const override { return true; }
  void observe(const AttentionView& w) override { probs[w.layer].push_back(w.probs.clone()); }
};

const char* kFixtures[] = {"gpt2-tiny",  "neox-tiny",  "neox-seq-tiny",
                           "qwen2-tiny", "llama-tiny", "llama-linear-tiny"};

}  // namespace

TEST_CASE("logits and attention probabilities match transformers for every family and format",
          "[golden]") {
  for (const char* name : kFixtures) {
    const std::string dir = test::fixtures_dir() + "/models/" + name;
    SafetensorsFile expected = read_safetensors(dir + "/expected.safetensors");
    const at::Tensor ids = expected.tensors.at("input_ids").tensor;  // [2, T]
    const at::Tensor want = expected.tensors.at("logits").tensor;    // [2, T, V]

    struct Variant {
      std::string label, path, config;
    };
    std::vector<Variant> variants = {
        {"HF directory", dir, ""},
        {"exported model.pt", dir + "/model.pt", ""},
        {"traced model.pt + --config", dir + "/traced.pt", dir + "/config.json"}};
    if (file_exists(dir + "/legacy_config.json"))
      variants.push_back({"HF directory + older config layout", dir, dir + "/legacy_config.json"});

    for (const auto& v : variants) {
      INFO(name << " via " << v.label);
      LoadOptions opts;
      opts.config_path = v.config;
      Model model = load_model(v.path, opts);
      Decoder decoder(model);
      c10::NoGradGuard no_grad;
      ProbsRecorder rec;
      at::Tensor got = decoder.forward(ids, &rec);
      CHECK_TENSOR_CLOSE(got, want, 1e-4);
      for (int l = 0; l < model.config.n_layer; ++l) {
        INFO("layer " << l);
        at::Tensor probs = at::cat(rec.probs.at(l), 2);
        CHECK_TENSOR_CLOSE(probs, expected.tensors.at("attn." + std::to_string(l)).tensor, 1e-5);
      }
      // The fused dense path (no hook) gives the same logits.
      CHECK_TENSOR_CLOSE(decoder.forward(ids), want, 1e-4);
    }
  }
}

TEST_CASE("an archive written by csa (libtorch 1.13) loaded in torch 2.x's torch.jit.load",
          "[golden]") {
  // Recorded on the GPU machine by scripts/gpu/make_all_fixtures.sh.
  Json r = read_json_file(test::fixtures_dir() + "/interop/jit_load.json");
  CHECK(r["torch"].get<std::string>().rfind("2.", 0) == 0);
  CHECK(r["names_equal"].get<bool>());
  CHECK(r["max_abs_diff_vs_hf_safetensors"].get<double>() == 0.0);
}
