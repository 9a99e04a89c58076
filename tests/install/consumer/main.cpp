// csa_consumer CONFIG_JSON [MODEL] [--spm]: parses a config.json, optionally loads a model and
// runs one forward pass, and with --spm checks that the sentencepiece module csa loads is the
// installed one. Prints one line per check; exit code 0 when all pass.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "csa/core/error.h"
#include "csa/core/json.h"
#include "csa/io/sentencepiece.h"
#include "csa/model/config.h"
#include "csa/model/decoder.h"
#include "csa/model/model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: csa_consumer CONFIG_JSON [MODEL] [--spm]\n");
    return 2;
  }
  try {
    const csa::ModelConfig c = csa::parse_model_config(csa::read_json_file(argv[1]), argv[1]);
    std::printf("config: %s, %lld layers, %lld heads\n", c.family.c_str(),
                static_cast<long long>(c.n_layer), static_cast<long long>(c.n_head));
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--spm") == 0) {
        const std::string path = csa::SentencePieceModel::module_path();
        std::printf("sentencepiece module: %s\n", path.c_str());
        // Compare by file identity: the exe's path may differ from the configured prefix only by
        // symlinks or "..".
        char a[4096], b[4096];
        if (realpath(path.c_str(), a) == nullptr ||
            realpath(CSA_EXPECTED_SPM_MODULE, b) == nullptr || std::strcmp(a, b) != 0) {
          std::fprintf(stderr, "expected the installed module %s\n", CSA_EXPECTED_SPM_MODULE);
          return 1;
        }
        continue;
      }
      const csa::Model model = csa::load_model(argv[i]);
      const csa::Decoder decoder(model);
      at::Tensor ids = at::zeros({1, 4}, at::kLong);  // [B, T]
      at::Tensor logits = decoder.forward(ids);       // [B, T, V]
      std::printf("model: %s, logits [%lld, %lld, %lld]\n", model.identity.name.c_str(),
                  static_cast<long long>(logits.size(0)), static_cast<long long>(logits.size(1)),
                  static_cast<long long>(logits.size(2)));
    }
  } catch (const csa::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
