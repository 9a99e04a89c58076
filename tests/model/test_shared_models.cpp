// The real checkpoints in ../shared/models: every one loads as an HF directory and as a converted
// model.pt and reproduces transformers' float32 logits (tests/fixtures/reference, made by
// scripts/make_reference_logits.py on the GPU machine).
#include <c10/core/GradMode.h>

#include "csa/core/file.h"
#include "csa/io/safetensors.h"
#include "csa/model/convert.h"
#include "csa/model/decoder.h"
#include "csa/model/generate.h"
#include "support.h"

using namespace csa;

TEST_CASE("shared models match transformers as directories and as converted archives", "[model]") {
  for (const char* name : {"gpt2-mini", "pythia-mini", "qwen2-mini", "llama-mini", "stories260K"}) {
    INFO(name);
    const std::string dir = test::shared_dir() + "/models/" + name;
    REQUIRE(file_exists(dir + "/config.json"));
    SafetensorsFile ref =
        read_safetensors(test::fixtures_dir() + "/reference/" + name + ".safetensors");
    const at::Tensor ids = ref.tensors.at("input_ids").tensor.unsqueeze(0);  // [1, T]
    const at::Tensor positions = ref.tensors.at("positions").tensor;
    c10::NoGradGuard no_grad;

    Model model = load_model(dir);
    Decoder decoder(model);
    at::Tensor logits = decoder.forward(ids)[0];  // [T, V]
    CHECK_TENSOR_CLOSE(logits.index_select(0, positions), ref.tensors.at("logits_at").tensor, 1e-4);
    at::Tensor logp = at::log_softmax(logits, -1);
    at::Tensor nll = -logp.narrow(0, 0, ids.size(1) - 1)
                          .gather(1, ids[0].narrow(0, 1, ids.size(1) - 1).unsqueeze(1))
                          .squeeze(1);
    CHECK_TENSOR_CLOSE(nll, ref.tensors.at("nll").tensor, 1e-4);
    CHECK(logits.argmax(-1).equal(ref.tensors.at("argmax").tensor));

    test::TempDir tmp;
    ConvertOptions conv;
    conv.input = dir;
    conv.output = tmp.file("model.pt");
    convert_to_torchscript(conv);
    Model archived = load_model(conv.output);
    CHECK(archived.identity.weights_sha256 == model.identity.weights_sha256);
    Decoder d2(archived);
    CHECK_TENSOR_CLOSE(d2.forward(ids)[0], logits, 0.0);
  }
}

TEST_CASE("stories260K greedy decoding from BOS reproduces transformers' tokens", "[model]") {
  Json meta = read_json_file(test::fixtures_dir() + "/reference/stories260K.json");
  std::vector<int64_t> want = meta["greedy_from_bos"].get<std::vector<int64_t>>();
  want.erase(want.begin());  // the BOS prompt
  GenerateOptions opts;
  opts.max_new_tokens = static_cast<int64_t>(want.size());
  opts.stop_at_eos = false;
  // The HF-layout directory and karpathy's original llama2.c checkpoint.
  for (const std::string path : {test::shared_dir() + "/models/stories260K",
                                 test::shared_dir() + "/models/stories260K/stories260K.bin"}) {
    INFO(path);
    Model model = load_model(path);
    Decoder decoder(model);
    CHECK(generate(decoder, {}, opts) == want);
  }
}
