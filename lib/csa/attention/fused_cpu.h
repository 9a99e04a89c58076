// Fused causal attention for CPU, float32: per (batch, KV head, block of query rows) it computes
// the scores of the causal keys only (q·kᵀ on the triangle, not the square), selects each row's
// keys by the hook's RowRule (top-k: linear-time selection, ties to the most recent key; top-p:
// the smallest top set reaching the mass) and does the softmax and A·V over the kept keys only
// (gathered rows of V when the kept set is small, one BLAS product otherwise). Rows whose budget
// covers all their causal keys skip selection. Peak memory is one [rows, S] buffer per thread.
// Gives the explicit path's result (attention.cpp) within float rounding and the same key sets.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/rule.h"

namespace csa {

// Keys read by one call: per query head [H] and per KV head [Hkv] (the union over the group).
struct ReadsCount {
  std::vector<double> q, kv;
};

// q: [B, H, T, D], k, v: [B, Hkv, S, D], float32 CPU contiguous; query t sits at S - T + t.
// `rule` null: dense. Fills `reads` (sized [H] and [Hkv]) when non-null. Returns [B, H, T, D].
at::Tensor fused_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const LayerRule* rule, ReadsCount* reads);

}  // namespace csa
