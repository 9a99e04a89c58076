// Autoregressive decoding with a KV cache, optionally with an attention hook (a sparse policy),
// greedy or sampled.
#pragma once

#include <cstdint>
#include <vector>

#include "csa/model/decoder.h"

namespace csa {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;         // sampling: keep the k most likely tokens (0 = all)
  double top_p = 1.0;        // sampling: nucleus mass
  uint64_t seed = 0;
  bool stop_at_eos = true;
  // > 0: a paged KV cache of this page size (attention/decode.h); a hook's rule must then be
  // page-granular with the same page size.
  int64_t page = 0;
};

// Returns the new tokens (the prompt excluded). An empty prompt starts from BOS when the model
// has one. Stops at EOS (if stop_at_eos), at max_new_tokens, or at the model's context length.
std::vector<int64_t> generate(const Decoder& decoder, std::vector<int64_t> prompt,
                              const GenerateOptions& options, AttentionHook* hook = nullptr);

}  // namespace csa
