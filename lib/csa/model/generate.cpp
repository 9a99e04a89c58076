#include "csa/model/generate.h"

#include <c10/core/GradMode.h>

#include "csa/core/error.h"

namespace csa {

std::vector<int64_t> generate(const Decoder& decoder, std::vector<int64_t> prompt,
                              const GenerateOptions& options, AttentionHook* hook) {
  const ModelConfig& c = decoder.config();
  if (prompt.empty()) {
    if (c.bos_token_id < 0)
      throw InputError("empty prompt and the model has no bos_token_id to start from");
    prompt.push_back(c.bos_token_id);
  }
  if (static_cast<int64_t>(prompt.size()) >= c.n_ctx)
    throw InputError("prompt of " + std::to_string(prompt.size()) +
                     " tokens leaves no room in the model's context of " + std::to_string(c.n_ctx));
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  gen.set_current_seed(options.seed);
  KvCache cache;
  cache.page = options.page;
  cache.reserve =
      std::min<int64_t>(c.n_ctx, static_cast<int64_t>(prompt.size()) + options.max_new_tokens);
  at::Tensor input = at::tensor(prompt, at::kLong).unsqueeze(0);  // [1, T]
  std::vector<int64_t> out;
  c10::NoGradGuard no_grad;
  for (int64_t step = 0; step < options.max_new_tokens && cache.length + input.size(1) <= c.n_ctx;
       ++step) {
    at::Tensor h = decoder.hidden(input, hook, &cache);                               // [1, T, C]
    at::Tensor logits = decoder.logits(h.select(1, h.size(1) - 1)).squeeze(0).cpu();  // [V]
    int64_t next;
    if (options.temperature <= 0) {
      next = logits.argmax().item<int64_t>();
    } else {
      at::Tensor l = logits / options.temperature;
      if (options.top_k > 0 && options.top_k < l.size(0)) {
        auto kth = std::get<0>(l.topk(options.top_k)).min();
        l = l.masked_fill(l < kth, -INFINITY);
      }
      at::Tensor probs = at::softmax(l, -1);
      if (options.top_p < 1.0) {
        auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
        at::Tensor cum = sorted.cumsum(-1);
        at::Tensor drop = (cum - sorted) > options.top_p;  // keep the smallest prefix reaching p
        sorted.masked_fill_(drop, 0);
        probs = at::zeros_like(probs).scatter_(-1, idx, sorted);
      }
      next = at::multinomial(probs, 1, false, gen).item<int64_t>();
    }
    out.push_back(next);
    if (options.stop_at_eos && next == c.eos_token_id) break;
    input = at::full({1, 1}, next, at::kLong);
  }
  return out;
}

}  // namespace csa
