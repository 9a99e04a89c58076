// Page-granular selection (rule.h, "Selection granularity") in tensor operations: one
// implementation for every device, used by the explicit score path (evaluation, sweeps) and as
// the reference of the paged decoder's kernels (decode.h), which implement the same rule again
// and are tested equal to this one.
#pragma once

#include <ATen/ATen.h>

#include "csa/attention/rule.h"

namespace csa {

// Per-channel minimum and maximum of the keys of every full page of `page` positions:
// k [B, Hkv, S, D] -> kmin, kmax [B, Hkv, S / page, D] float32. A partial last page needs no
// summary: it can only be a query's newest page, which is always kept.
struct PageSummaries {
  at::Tensor kmin, kmax;
  int64_t pages() const { return kmin.size(2); }
};
PageSummaries summarize_pages(const at::Tensor& k, int64_t page);

// The bound of scale · q·key over the keys of each summarised page: q [B, H, Tq, D] (query head
// h reads KV head h / G) -> [B, H, Tq, NP] float32; scale > 0. With spread < 1 the score rule.h
// defines between the bound (1) and the page centre's score (0).
at::Tensor page_bounds(const at::Tensor& q, const PageSummaries& s, double scale,
                       double spread = 1);

// The pages that query rows at positions q_pos0 + r keep under a paged top_k rule, for S keys:
// page scores [B, H, Tq, NP] (page_bounds, or oracle_scores) -> [B, H, Tq, ceil(S / page)] bool.

// The oracle's page scores: the largest of each full page's scores, [B, H, Tq, S / page].
at::Tensor oracle_scores(const at::Tensor& scores, int64_t page);

// With rule.select.group the G = H / n_head_kv heads of a KV group keep the same pages (rule.h).
at::Tensor select_pages(const at::Tensor& bounds, const LayerRule& rule, int64_t q_pos0, int64_t S,
                        int64_t n_head_kv);

// The same rule per query row as counts: for head h at position pos (budget k), whether the row
// reads every causal key, else how many pages besides the sink and the newest it keeps. The one
// arithmetic of "ceil(k / P) pages" (the CUDA kernel's copy is tested equal).
struct PageCount {
  bool all = false;
  int64_t extra = 0;
};
PageCount page_count(int64_t budget, int64_t pos, int64_t page);

// The scores select_pages ranks pages by: the bound (page_bounds of q over `s`), or with
// rule.select.oracle each page's best key score (oracle_scores of `scores`).
at::Tensor page_scores(const at::Tensor& scores, const at::Tensor& q, const PageSummaries& s,
                       double scale, const LayerRule& rule);

// scores [B, H, Tq, S] float32 (scaled, causal entries already -inf), pages from select_pages:
// sets every key outside the row's kept pages to -inf; with rule.select.exact, then applies the
// token top_k rule inside them (mask.h).
void mask_to_kept_pages(at::Tensor& scores, const at::Tensor& pages, const LayerRule& rule,
                        int64_t q_pos0);

// Both steps for the explicit path: q [B, H, Tq, D] the rows' queries.
void mask_to_pages(at::Tensor& scores, const at::Tensor& q, const PageSummaries& s, double scale,
                   const LayerRule& rule, int64_t q_pos0);

}  // namespace csa
