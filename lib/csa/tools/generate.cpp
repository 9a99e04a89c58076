#include <spdlog/spdlog.h>

#include <optional>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/model/decoder.h"
#include "csa/tokenizer/tokenizer.h"
#include "csa/tools/tools.h"

namespace csa {

Json run_generate(const GenerateToolOptions& o, const std::string& command) {
  RunClock clock;
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  auto tokenizer = Tokenizer::from_files(model.files, model.identity.path);
  std::vector<int64_t> prompt;
  if (!o.prompt.empty()) {
    EncodeOptions eo;
    eo.add_special_tokens = true;
    std::vector<int32_t> ids = tokenizer->encode(o.prompt, eo);
    prompt.assign(ids.begin(), ids.end());
  }
  Decoder decoder(model);
  auto decode = [&](const std::vector<int64_t>& ids) {
    return tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
  };
  Json out = {{"schema_version", kResultsSchemaVersion},
              {"kind", "csa-generate"},
              {"model", model.identity.to_json(c)},
              {"prompt", o.prompt},
              {"prompt_ids", prompt},
              {"sampling",
               {{"max_new_tokens", o.generate.max_new_tokens},
                {"temperature", o.generate.temperature},
                {"top_k", o.generate.top_k},
                {"top_p", o.generate.top_p},
                {"seed", o.generate.seed}}}};
  // A page-granular policy decodes over a paged KV cache; dense then does too, for comparison.
  std::optional<Policy> policy;
  GenerateOptions go = o.generate;
  if (!o.policy.empty()) {
    policy = Policy::read(o.policy);
    policy->check_model(model, o.policy, o.allow_other_weights);
    if (!o.select.empty()) policy->select = parse_selection(o.select, "--select");
    go.page = policy->select.page;
  }
  std::vector<int64_t> dense = generate(decoder, prompt, go, nullptr);
  out["dense"] = {{"ids", dense}, {"text", decode(dense)}};
  if (policy) {
    SparseAttentionHook hook(policy->sparsity(), c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
    std::vector<int64_t> sparse = generate(decoder, prompt, go, &hook);
    size_t same = 0;
    while (same < dense.size() && same < sparse.size() && dense[same] == sparse[same]) ++same;
    out["policy"] = {{"path", o.policy},
                     {"k_max", policy->rule.k_max},
                     {"select", selection_name(policy->select)},
                     {"kv_cache", go.page > 0 ? "paged:" + std::to_string(go.page) : "contiguous"},
                     {"ids", sparse},
                     {"text", decode(sparse)},
                     {"tokens_identical_to_dense", same}};
  }
  out["run"] = run_metadata("csa-generate", command, model.device, clock);
  return out;
}

}  // namespace csa
