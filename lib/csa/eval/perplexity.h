// Sliding-window perplexity (METHOD.md; the Hugging Face "perplexity of fixed-length models"
// protocol): windows of ctx tokens advanced by stride; the first window scores all its targets,
// each later window only the targets no earlier window scored; ppl = exp(mean NLL).
// Per-position buckets score *every* target of every window, bucketed by its position in the
// window, so dense and sparse can be compared position by position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "csa/attention/sparse_hook.h"
#include "csa/core/json.h"
#include "csa/corpus/windows.h"
#include "csa/model/decoder.h"

namespace csa {

struct PassResult {
  std::string label;
  double nll_sum = 0;
  int64_t scored = 0;              // targets in the perplexity
  std::vector<double> bucket_nll;  // per-position sums over every target of every window
  std::vector<int64_t> bucket_count;
  ReadsTally reads;  // empty for a dense pass without a hook
  int64_t windows = 0, forward_passes = 0, tokens_processed = 0;
  double seconds = 0;

  double ppl() const;
  double bucket_ppl(size_t b) const;
  double tokens_per_second() const;  // processed (window) tokens per second
};

// Runs every window through the decoder (with `hook` applied if not null) and accumulates NLL.
PassResult evaluate_pass(const Decoder& decoder, const std::vector<int64_t>& ids,
                         const EvalProtocol& protocol, SparseAttentionHook* hook,
                         const std::string& label);

// On CUDA: one untimed dense forward of the first batch of windows, so that the process's
// one-time set-up (cuBLAS handles, kernel modules, the fused paths' first calls) is not timed
// as part of the first pass; nothing elsewhere (the CPU's first pass is timed as it runs).
void warm_up(const Decoder& decoder, const std::vector<int64_t>& ids, const EvalProtocol& protocol);

// Dense vs sparse on the same windows.
struct Comparison {
  double dense_ppl = 0, sparse_ppl = 0, delta = 0, delta_rel = 0;
  std::vector<double> bucket_delta_rel;  // (sparse - dense) / dense per bucket
  double max_abs_bucket_delta_rel = 0;
  double max_bucket_worsening_rel = 0;  // max(0, worst bucket's delta_rel)
  // Dense-matching quality (METHOD.md, docs/metrics.md): sparse ppl not worse than dense by more
  // than `tolerance` (relative) and no position bucket worse by more than `position_tolerance`.
  // One-sided: a sparse run that is better than dense matches; the signed deltas are reported.
  bool meets(double tolerance, double position_tolerance) const;
};
Comparison compare(const PassResult& dense, const PassResult& sparse);

// Attention cost of a pass from its reads: FLOPs (q.k and p.v: 4 * head_dim per read) and bytes
// of K and V read (KV-side reads * 2 * head_dim * element size).
Json attention_cost(const ReadsTally& reads, const ModelConfig& c, size_t kv_element_bytes);

Json pass_to_json(const PassResult& r, const EvalProtocol& p);

}  // namespace csa
