// CUDA gives the CPU's results (the [gpu] tier: hidden, run by naming it with `--requires cuda`,
// which skips the tier where libtorch has no usable GPU; tests/main.cpp). Runs on the GPU machine
// through scripts/gpu/run_all.sh: dense logits, every sparsity kind's logits and reads, and a
// whole sliding-window evaluation, CPU vs CUDA, float32.
#include <c10/core/GradMode.h>

#include "csa/attention/sparse_hook.h"
#include "csa/eval/perplexity.h"
#include "csa/io/safetensors.h"
#include "csa/model/decoder.h"
#include "support.h"

using namespace csa;

TEST_CASE("CUDA matches CPU: logits and reads for dense, top-k, top-p and patterns", "[.][gpu]") {
  REQUIRE(at::hasCUDA());  // without a device the tier is skipped before it gets here
  for (const char* name : {"gpt2-tiny", "neox-tiny", "qwen2-tiny", "llama-tiny"}) {
    INFO(name);
    const std::string dir = test::fixtures_dir() + "/models/" + name;
    SafetensorsFile expected = read_safetensors(dir + "/expected.safetensors");
    const at::Tensor ids = expected.tensors.at("input_ids").tensor;
    ModelArgs cpu_args{dir, "", "cpu", "float32"};
    ModelArgs gpu_args{dir, "", "cuda", "float32"};
    Model cpu_model = cpu_args.load();
    Model gpu_model = gpu_args.load();
    Decoder cpu(cpu_model), gpu(gpu_model);
    const auto& c = cpu_model.config;
    const int64_t T = ids.size(1);
    std::vector<SparsitySpec> specs = {
        SparsitySpec::dense(), SparsitySpec::uniform_top_k(c.n_layer, c.n_head, 3),
        SparsitySpec::top_p(c.n_layer, c.n_head, 0.8), SparsitySpec::local_window(4, 1),
        SparsitySpec::strided(3, 2, 1)};
    for (const auto& spec : specs) {
      INFO(spec.label);
      SparseAttentionHook hc(spec, c.n_layer, c.n_head, c.n_head_kv, T);
      SparseAttentionHook hg(spec, c.n_layer, c.n_head, c.n_head_kv, T);
      c10::NoGradGuard ng;
      at::Tensor lc = cpu.forward(ids, spec.kind == SparsityKind::kDense ? nullptr : &hc);
      at::Tensor lg =
          gpu.forward(ids.to(at::kCUDA), spec.kind == SparsityKind::kDense ? nullptr : &hg).cpu();
      CHECK_TENSOR_CLOSE(lg, lc, 1e-4);
      if (spec.kind != SparsityKind::kDense) {
        hc.count_pass(ids.size(0), T);
        hg.count_pass(ids.size(0), T);
        const double rc = hc.tally().q_fraction(), rg = hg.tally().q_fraction();
        // top-p sets can differ at a float-rounding boundary; the others are exact
        CHECK(std::abs(rc - rg) <= (spec.kind == SparsityKind::kTopP ? 0.01 : 0.0));
      }
    }
  }
}

TEST_CASE("CUDA matches CPU: sliding-window perplexity with a policy", "[.][gpu]") {
  REQUIRE(at::hasCUDA());  // without a device the tier is skipped before it gets here
  const std::string dir = test::fixtures_dir() + "/models/llama-tiny";
  Model cpu_model = ModelArgs{dir, "", "cpu", "float32"}.load();
  Model gpu_model = ModelArgs{dir, "", "cuda", "float32"}.load();
  const auto& c = cpu_model.config;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 200; ++i) ids.push_back((i * 7919 + 13) % c.vocab_size);
  EvalProtocol p;
  p.ctx = std::min<int64_t>(32, c.n_ctx);
  p.stride = p.ctx / 2;
  p.buckets = 4;
  p.batch = 3;
  SparsitySpec spec = SparsitySpec::uniform_top_k(c.n_layer, c.n_head, 5);
  SparseAttentionHook hc(spec, c.n_layer, c.n_head, c.n_head_kv, p.ctx);
  SparseAttentionHook hg(spec, c.n_layer, c.n_head, c.n_head_kv, p.ctx);
  PassResult rc = evaluate_pass(Decoder(cpu_model), ids, p, &hc, "cpu");
  PassResult rg = evaluate_pass(Decoder(gpu_model), ids, p, &hg, "cuda");
  CHECK(rc.scored == rg.scored);
  CHECK(std::abs(rc.ppl() - rg.ppl()) <= 1e-4 * rc.ppl());
  CHECK(hc.tally().q_fraction() == hg.tally().q_fraction());
  CHECK(hc.tally().kv_fraction() == hg.tally().kv_fraction());
}
