// The cap sweep: the smallest k_max whose perplexity matches dense on held-out text.
// Perplexity is near-monotone in the cap, so caps are searched on a doubling grid from below
// until one matches, then bisected between the last miss and the first match. The dense pass is
// run once and reused for every probe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "csa/eval/perplexity.h"

namespace csa {

struct SweepOptions {
  double tolerance = 0.005;          // |sparse ppl - dense ppl| / dense ppl
  double position_tolerance = 0.01;  // max over position buckets of |relative delta|
  int64_t min_cap = 8;               // first cap of the grid
  int64_t max_cap = 0;               // 0: the context length (where top-k is dense)
  double resolution = 0.05;          // bisection stops when hi - lo <= max(1, resolution * hi)
};

struct SweepProbe {
  int64_t cap = 0;
  Comparison comparison;
  double reads_fraction = 1, kv_reads_fraction = 1, mean_budget = 0;
  double seconds = 0;
  int64_t forward_passes = 0;
  bool matches = false;
};

struct SweepResult {
  std::string label;
  std::vector<SweepProbe> probes;   // in the order tried
  std::optional<int64_t> best_cap;  // none if even max_cap misses
  int64_t forward_passes = 0;       // sparse probes only (the dense pass is shared)
  double seconds = 0;
  const SweepProbe* best() const;
  Json to_json() const;
};

// `make_spec(cap)` builds the sparsity pattern at a cap (a re-capped policy, or uniform top-k).
SweepResult sweep_caps(const Decoder& decoder, const std::vector<int64_t>& ids,
                       const EvalProtocol& protocol, const PassResult& dense,
                       const std::function<SparsitySpec(int64_t)>& make_spec,
                       const SweepOptions& options, const std::string& label);

}  // namespace csa
