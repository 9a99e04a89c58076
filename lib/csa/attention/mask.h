// The explicit score path's selection: masks a block of scores to the keys a LayerRule keeps
// and counts what was kept. CPU blocks go row by row through select_row (select.h), the same
// code the fused CPU kernel uses; CUDA blocks through tensor operations that implement the same
// rule (top-k ties to the most recent key, top-p count from the sorted mass), proven equal by the
// [gpu] tier.
#pragma once

#include <ATen/ATen.h>

#include "csa/attention/rule.h"

namespace csa {

// scores: [B, H, Tq, S] float32 contiguous, already scaled, causal entries -inf; row r sits at
// position q_pos0 + r. Sets every key the rule drops to -inf.
void mask_to_rule(at::Tensor& scores, const LayerRule& rule, int64_t q_pos0);

// The rule's top-k in tensor operations, on any device: a bool mask of the counts[...] largest
// entries along the last dimension of `values`, ties to the larger index (select.h's rule).
// counts: int64 of values' shape with the last dimension 1, 0 <= counts <= kmax, and no larger
// than the row's entries above -inf.
at::Tensor top_count_mask(const at::Tensor& values, const at::Tensor& counts, int64_t kmax);

// Keys kept (finite) per query head [H] and per KV head [Hkv] (the union over each group of
// H / Hkv adjacent query heads), summed over batch and rows: float64 tensors on scores' device.
std::pair<at::Tensor, at::Tensor> count_kept(const at::Tensor& scores, int64_t n_head_kv);

}  // namespace csa
