// Decoding over a paged KV cache (decoder.h, attention/decode.h) on the committed tiny models:
// dense steps give the logits of a full forward pass; steps under a page-granular policy give the
// logits of a full forward pass under the same rule (the explicit path's page mask, last row),
// and greedy generation with the paged cache equals the contiguous cache's.
#include <c10/core/GradMode.h>

#include "csa/attention/sparse_hook.h"
#include "csa/model/decoder.h"
#include "csa/model/generate.h"
#include "csa/model/model.h"
#include "support.h"

using namespace csa;

TEST_CASE("paged decode steps give the full forward pass's logits, dense and paged top-k",
          "[golden]") {
  c10::NoGradGuard no_grad;
  for (const char* name : {"gpt2-tiny", "neox-tiny", "qwen2-tiny", "llama-tiny"}) {
    INFO(name);
    Model model = load_model(test::fixtures_dir() + "/models/" + name, {});
    const ModelConfig& c = model.config;
    Decoder decoder(model);
    at::manual_seed(41);
    const int64_t T = std::min<int64_t>(40, c.n_ctx);
    at::Tensor ids = at::randint(0, c.vocab_size, {2, T}, at::kLong);
    SparsitySpec spec =
        SparsitySpec::uniform_top_k(c.n_layer, c.n_head, 6).with_selection(PageSelection{4, false});
    for (bool sparse : {false, true}) {
      INFO("sparse " << sparse);
      SparseAttentionHook full_hook(spec, c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
      SparseAttentionHook step_hook(spec, c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
      at::Tensor want = decoder.forward(ids, sparse ? &full_hook : nullptr);  // [2, T, V]
      KvCache cache;
      cache.page = 4;
      const int64_t prompt = 9;
      at::Tensor got0 =
          decoder.forward(ids.narrow(1, 0, prompt), sparse ? &step_hook : nullptr, &cache);
      CHECK_TENSOR_CLOSE(got0, want.narrow(1, 0, prompt), 1e-4);
      for (int64_t t = prompt; t < T; ++t) {
        at::Tensor got =
            decoder.forward(ids.narrow(1, t, 1), sparse ? &step_hook : nullptr, &cache);
        INFO("step " << t);
        CHECK_TENSOR_CLOSE(got, want.narrow(1, t, 1), 1e-4);
      }
      CHECK(cache.length == T);
      if (sparse) {  // the steps reported reads of their pages
        const ReadsTally& r = step_hook.tally();
        CHECK(r.q_sparse_total() > 0);
        CHECK(r.kv_sparse_total() <= r.q_sparse_total());
      }
    }
    // Greedy generation: the paged cache gives the contiguous cache's tokens.
    GenerateOptions g;
    g.max_new_tokens = 12;
    g.stop_at_eos = false;
    std::vector<int64_t> p = {1, 2, 3, 4, 5};
    const auto plain = generate(decoder, p, g);
    g.page = 8;
    CHECK(generate(decoder, p, g) == plain);
  }
}
