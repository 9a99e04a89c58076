#include "csa/attention/pages.h"

#include <limits>

#include "csa/attention/mask.h"
#include "csa/core/error.h"

namespace csa {

PageSummaries summarize_pages(const at::Tensor& k, int64_t page) {
  CSA_CHECK(k.dim() == 4 && page >= 1, "summarize_pages: k must be [B, Hkv, S, D]");
  const int64_t B = k.size(0), Hkv = k.size(1), S = k.size(2), D = k.size(3);
  const int64_t np = S / page;
  at::Tensor full = k.narrow(2, 0, np * page).to(at::kFloat).reshape({B, Hkv, np, page, D});
  return {std::get<0>(full.min(3)), std::get<0>(full.max(3))};
}

at::Tensor page_bounds(const at::Tensor& q, const PageSummaries& s, double scale, double spread) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = s.kmin.size(1), G = H / Hkv, np = s.pages();
  at::Tensor qg = q.to(at::kFloat).reshape({B, Hkv, G * Tq, D});
  at::Tensor b;
  if (spread == 1) {  // max(q_d min_d, q_d max_d) = max(q_d, 0) max_d + min(q_d, 0) min_d
    b = at::matmul(qg.clamp_min(0), s.kmax.transpose(2, 3));
    b.add_(at::matmul(qg.clamp_max(0), s.kmin.transpose(2, 3)));
  } else {  // q_d c_d + spread |q_d| r_d
    at::Tensor centre = (s.kmin + s.kmax).mul_(0.5), half = (s.kmax - s.kmin).mul_(0.5);
    b = at::matmul(qg, centre.transpose(2, 3));
    b.add_(at::matmul(qg.abs(), half.transpose(2, 3)), spread);
  }
  return b.mul_(scale).view({B, H, Tq, np});
}

PageCount page_count(int64_t budget, int64_t pos, int64_t page) {
  const int64_t n = pos + 1, k = std::min(budget, n);
  const int64_t candidates = std::max<int64_t>(pos / page - 1, 0);  // pages 1 .. newest - 1
  const int64_t extra = (k + page - 1) / page;
  if (k >= n || extra >= candidates) return {true, 0};
  return {false, extra};
}

at::Tensor oracle_scores(const at::Tensor& scores, int64_t page) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2);
  const int64_t np = scores.size(3) / page;
  return std::get<0>(scores.narrow(3, 0, np * page).view({B, H, Tq, np, page}).max(4));
}

at::Tensor select_pages(const at::Tensor& bounds_in, const LayerRule& rule, int64_t q_pos0,
                        int64_t S, int64_t n_head_kv) {
  CSA_CHECK(rule.kind == SparsityKind::kTopK && rule.select.paged(),
            "select_pages needs a paged top_k rule");
  const int64_t B = bounds_in.size(0), Hq = bounds_in.size(1), Tq = bounds_in.size(2),
                np = bounds_in.size(3);
  const int64_t P = rule.select.page, pages = (S + P - 1) / P;
  CSA_CHECK(q_pos0 + Tq <= S && np == S / P, "select_pages: rows and bounds disagree");
  CSA_CHECK(n_head_kv >= 1 && Hq % n_head_kv == 0, "select_pages: heads and KV heads disagree");
  // Selection units: query heads, or with `group` the KV groups (the largest of their heads'
  // scores, chosen once and shared).
  const bool group = rule.select.group;
  const int64_t G = group ? Hq / n_head_kv : 1, H = Hq / G;
  const at::Tensor bounds =
      group ? std::get<0>(bounds_in.view({B, H, G, Tq, np}).max(2)) : bounds_in;
  at::Tensor extra = at::empty({H, Tq}, at::kLong), all = at::empty({H, Tq}, at::kBool);
  auto ea = extra.accessor<int64_t, 2>();
  auto aa = all.accessor<bool, 2>();
  int64_t most = 0;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < Tq; ++r) {
      const int64_t pos = q_pos0 + r;
      int64_t budget = 0;
      for (int64_t gi = 0; gi < G; ++gi)
        budget = std::max(budget, rule.top_k.budget(h * G + gi, pos));
      const PageCount c = page_count(budget, pos, P);
      ea[h][r] = c.extra;
      aa[h][r] = c.all;
      most = std::max(most, c.extra);
    }
  const auto dev = bounds.device();
  auto lopts = bounds.options().dtype(at::kLong);
  at::Tensor newest = at::arange(q_pos0, q_pos0 + Tq, lopts).div_(P, "floor").view({1, 1, Tq, 1});
  at::Tensor m = at::arange(np, lopts).view({1, 1, 1, np});
  at::Tensor candidate = (m >= 1).logical_and(m < newest);  // pages 1 .. newest - 1
  at::Tensor v =
      bounds.masked_fill(candidate.logical_not(), -std::numeric_limits<float>::infinity());
  at::Tensor counts = extra.to(dev).view({1, H, Tq, 1}).expand({B, H, Tq, 1});
  at::Tensor keep = top_count_mask(v, counts, most);  // [B, H, Tq, np]
  if (pages > np) keep = at::cat({keep, at::zeros({B, H, Tq, pages - np}, keep.options())}, 3);
  at::Tensor mp = at::arange(pages, lopts).view({1, 1, 1, pages});
  keep.logical_or_((mp == 0).logical_or(mp == newest));  // the sink and the newest page
  keep.logical_or_(all.to(dev).view({1, H, Tq, 1}));     // rows that read every key
  if (!group) return keep;
  return keep.unsqueeze(2).expand({B, H, G, Tq, pages}).reshape({B, Hq, Tq, pages});
}

at::Tensor page_scores(const at::Tensor& scores, const at::Tensor& q, const PageSummaries& s,
                       double scale, const LayerRule& rule) {
  return rule.select.oracle ? oracle_scores(scores, rule.select.page)
                            : page_bounds(q, s, scale, rule.select.spread);
}

void mask_to_pages(at::Tensor& scores, const at::Tensor& q, const PageSummaries& s, double scale,
                   const LayerRule& rule, int64_t q_pos0) {
  at::Tensor pages = select_pages(page_scores(scores, q, s, scale, rule), rule, q_pos0,
                                  scores.size(3), s.kmin.size(1));
  mask_to_kept_pages(scores, pages, rule, q_pos0);
}

void mask_to_kept_pages(at::Tensor& scores, const at::Tensor& pages, const LayerRule& rule,
                        int64_t q_pos0) {
  const int64_t S = scores.size(3), P = rule.select.page;
  at::Tensor key_page = at::arange(S, scores.options().dtype(at::kLong)).div_(P, "floor");
  scores.masked_fill_(pages.index_select(3, key_page).logical_not_(),
                      -std::numeric_limits<float>::infinity());
  if (rule.select.exact) {
    LayerRule token = rule;
    token.select = {};
    mask_to_rule(scores, token, q_pos0);
  }
}

}  // namespace csa
