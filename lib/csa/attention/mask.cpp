#include "csa/attention/mask.h"

#include <ATen/Parallel.h>

#include <limits>

#include "csa/attention/select.h"
#include "csa/core/error.h"

namespace csa {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// CPU: every row through select_row, the code the fused CPU kernel runs too.
void mask_rows_cpu(at::Tensor& scores, const LayerRule& rule, int64_t q_pos0) {
  CSA_CHECK(scores.is_contiguous() && scores.scalar_type() == at::kFloat, "scores layout");
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  float* base = scores.data_ptr<float>();
  at::parallel_for(0, B * H * Tq, 16, [&](int64_t begin, int64_t end) {
    SelectScratch scratch;
    std::vector<int32_t> idx;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t h = (row / Tq) % H, pos = q_pos0 + row % Tq;
      const int64_t n = std::min(S, pos + 1);  // causal keys of this query
      float* s = base + row * S;
      if (!select_row(rule, h, pos, s, n, scratch, idx)) mask_except(s, n, idx, scratch.values);
    }
  });
}

// Device: keep the kb[h, r] largest causal scores of each row, ties to the larger key index.
// kb: [H, Tq] int64 on the device, 1 <= kb <= causal keys, kb <= kmax.
void keep_top_k_tensor(at::Tensor& scores, const at::Tensor& kb, int64_t kmax) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2);
  at::Tensor k4 = kb.view({1, H, Tq, 1}).expand({B, H, Tq, 1});  // [B, H, Tq, 1]
  scores.masked_fill_(top_count_mask(scores, k4, kmax).logical_not_(), kNegInf);
}

void mask_rows_device(at::Tensor& scores, const LayerRule& rule, int64_t q_pos0) {
  const int64_t H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  auto long_opts = scores.options().dtype(at::kLong);
  at::Tensor causal = at::arange(q_pos0 + 1, q_pos0 + Tq + 1, long_opts).clamp_max(S);  // [Tq]
  switch (rule.kind) {
    case SparsityKind::kDense:
      return;
    case SparsityKind::kTopK: {
      at::Tensor kb = at::empty({H, Tq}, at::kLong);  // the schedule's budget per (head, row)
      auto a = kb.accessor<int64_t, 2>();
      for (int64_t h = 0; h < H; ++h)
        for (int64_t r = 0; r < Tq; ++r) a[h][r] = rule.top_k.budget(h, q_pos0 + r);
      const int64_t kmax = kb.max().item<int64_t>();  // host tensor: no device sync
      keep_top_k_tensor(scores, at::minimum(kb.to(scores.device()), causal.view({1, Tq})), kmax);
      return;
    }
    case SparsityKind::kTopP: {
      // The count reaching the mass from the sorted probabilities, then the top-k rule.
      at::Tensor probs = at::softmax(scores, -1);  // [B, H, Tq, S]
      at::Tensor sorted = std::get<0>(probs.sort(-1, /*descending=*/true));
      at::Tensor before = sorted.cumsum(-1) - sorted;  // mass strictly before each entry
      at::Tensor p = at::tensor(rule.p, at::kDouble).to(scores.device()).to(at::kFloat);
      at::Tensor count = (before < p.view({1, H, 1, 1})).sum(-1);  // [B, H, Tq]
      count = at::minimum(count, causal.view({1, 1, Tq})).clamp_min(1);
      // Heads with p >= 1 keep every causal key.
      at::Tensor all = (p >= 1.0f).view({1, H, 1});
      count = at::where(all, causal.view({1, 1, Tq}).expand_as(count), count);
      // keep_top_k_tensor takes one budget per (head, row): fold the batch into the heads.
      const int64_t B = scores.size(0);
      at::Tensor flat = scores.view({1, B * H, Tq, S});
      keep_top_k_tensor(flat, count.reshape({B * H, Tq}), count.max().item<int64_t>());
      return;
    }
    case SparsityKind::kWindow:
    case SparsityKind::kStrided: {
      at::Tensor i = at::arange(q_pos0, q_pos0 + Tq, long_opts).unsqueeze(1);  // [Tq, 1]
      at::Tensor j = at::arange(S, long_opts).unsqueeze(0);                    // [1, S]
      at::Tensor keep = (i - j < rule.window).logical_or(j < rule.sinks);
      if (rule.kind == SparsityKind::kStrided)
        keep = keep.logical_or(at::remainder(i - j, rule.stride) == 0);
      scores.masked_fill_(keep.logical_not(), kNegInf);  // broadcasts over [B, H]
      return;
    }
  }
}

}  // namespace

at::Tensor top_count_mask(const at::Tensor& values, const at::Tensor& counts, int64_t kmax) {
  kmax = std::min(kmax, values.size(-1));
  if (kmax < 1) return at::zeros(values.sizes(), values.options().dtype(at::kBool));
  at::Tensor top = std::get<0>(values.topk(kmax, -1));         // [..., kmax]
  at::Tensor thr = top.gather(-1, (counts - 1).clamp_min(0));  // [..., 1]
  at::Tensor greater = values > thr;
  at::Tensor equal = values == thr;
  at::Tensor need = counts - greater.sum(-1, /*keepdim=*/true);  // ties still kept
  at::Tensor equal_from_right = equal.flip(-1).cumsum(-1, at::kLong).flip(-1);
  return greater.logical_or_(equal.logical_and_(equal_from_right <= need));
}

void mask_to_rule(at::Tensor& scores, const LayerRule& rule, int64_t q_pos0) {
  if (rule.kind == SparsityKind::kDense) return;
  if (scores.is_cpu())
    mask_rows_cpu(scores, rule, q_pos0);
  else
    mask_rows_device(scores, rule, q_pos0);
}

std::pair<at::Tensor, at::Tensor> count_kept(const at::Tensor& scores, int64_t n_head_kv) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  const int64_t G = H / n_head_kv;
  at::Tensor kept = at::isfinite(scores);                  // [B, H, Tq, S]
  at::Tensor q = kept.sum({0, 2, 3}, false, at::kDouble);  // [H]
  at::Tensor kv =
      kept.view({B, n_head_kv, G, Tq, S}).any(2).sum({0, 2, 3}, false, at::kDouble);  // [Hkv]
  return {q, kv};
}

}  // namespace csa
