// The calibration pass: the dense model over calibration text in non-overlapping windows, every
// attention layer observed (statistics, need curves). Allocation of budgets from what it measured
// lives in policy.h; loading the model and corpus and writing the policy in tools/.
#pragma once

#include <cstdint>
#include <vector>

#include "csa/attention/hooks.h"
#include "csa/model/decoder.h"

namespace csa {

struct CalibrationPass {
  int64_t tokens = 0;   // tokens observed
  int64_t windows = 0;  // non-overlapping windows of ctx (the last may be shorter)
  int64_t forward_passes = 0;
  double seconds = 0;
};

// Runs `ids` through the dense decoder in non-overlapping windows of `ctx` tokens, `batch`
// windows per forward pass, with `observer` on every layer: every token is a query exactly once.
CalibrationPass observe_dense(const Decoder& decoder, const std::vector<int64_t>& ids, int64_t ctx,
                              int64_t batch, AttentionHook* observer);

}  // namespace csa
