// Fused causal attention for CPU, float32. One task is one (batch row, KV head, block of 64 query
// rows) with all G query heads of the group; a thread takes the next task until none are left
// (one OpenMP region, one worker per thread; blocks differ in cost along the causal triangle).
// Per task, in named phases (fused_cpu.cpp):
//   scores   q·kᵀ of the G·64 queries against the block's causal keys as one product (cblas_sgemm
//            where the build has a CBLAS, cpu_kernels.h); pattern rules score only the window
//            band and the sinks, plus their strided keys one by one
//   select   each row's keys through select_row_in_place (select.h: the explicit path's rule,
//            ties to the most recent key): rows keeping >= 1/4 of their keys masked in place
//            (dropped scores -inf), the others listed
//   reads    query-side, and KV-side as the union over the group (before the softmax)
//   softmax  a vectorised exp over the kept keys
//   values   A·V: one product over the block's keys (dropped keys weighted 0) when it keeps many
//            of them, else a sum of the kept rows of V
// Peak memory is one [G·64, S] score block per thread, linear in the context. Gives the explicit
// path's result (attention.cpp) within float rounding and the same key sets.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "csa/attention/rule.h"

namespace csa {

// Keys read by one call: per query head [H] and per KV head [Hkv] (the union over the group).
struct ReadsCount {
  std::vector<double> q, kv;
};

// q: [B, H, T, D], k, v: [B, Hkv, S, D], float32 CPU, any strides with the last dimension unit
// (else copied); query t sits at S - T + t. `rule` null: dense. Fills `reads` (sized [H] and
// [Hkv]) when non-null. Returns [B, H, T, D] as a view of a [B, T, H, D] tensor (the layout the
// output projection reads).
at::Tensor fused_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const LayerRule* rule, ReadsCount* reads);

}  // namespace csa
