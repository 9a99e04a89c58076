#include "csa/attention/attention.h"

#include <torch/version.h>

#include <limits>

#include "csa/attention/fused_cpu.h"
#include "csa/core/error.h"

namespace csa {

bool HookChain::active(int layer) const {
  for (auto* h : hooks_)
    if (h->active(layer)) return true;
  return false;
}

void HookChain::mask_scores(const ScoreBlock& where, at::Tensor& scores) {
  for (auto* h : hooks_)
    if (h->active(where.layer)) h->mask_scores(where, scores);
}

void HookChain::observe_probs(const ScoreBlock& where, const at::Tensor& probs) {
  for (auto* h : hooks_)
    if (h->active(where.layer)) h->observe_probs(where, probs);
}

RowRule HookChain::row_rule(int layer) const {
  AttentionHook* only = nullptr;
  for (auto* h : hooks_) {
    if (!h->active(layer)) continue;
    if (only != nullptr) return {};
    only = h;
  }
  return only != nullptr ? only->row_rule(layer) : RowRule{};
}

void HookChain::count_reads(int layer, const ReadsCount& reads) {
  for (auto* h : hooks_)
    if (h->active(layer)) h->count_reads(layer, reads);
}

at::Tensor causal_mask(int64_t q_pos0, int64_t rows, int64_t keys, const at::TensorOptions& opts) {
  at::Tensor q_pos = at::arange(q_pos0, q_pos0 + rows, opts.dtype(at::kLong)).unsqueeze(1);
  at::Tensor k_pos = at::arange(keys, opts.dtype(at::kLong)).unsqueeze(0);
  at::Tensor mask = at::zeros({rows, keys}, opts);
  return mask.masked_fill_(k_pos > q_pos, -std::numeric_limits<float>::infinity());
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                  int layer, AttentionHook* hook, const AttentionOptions& options) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  CSA_CHECK(H % Hkv == 0 && S >= T && k.size(3) == D && v.sizes() == k.sizes(),
            "attention shapes disagree");
  const int64_t G = H / Hkv;
  const bool hooked = hook != nullptr && hook->active(layer);

#if TORCH_VERSION_MAJOR >= 2
  if (!hooked && options.allow_fused && T == S) {
    // Fused dense path. K/V are expanded per query head (a view, no copy).
    at::Tensor ke = k.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
    at::Tensor ve = v.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
    return at::scaled_dot_product_attention(q, ke, ve, {}, 0.0, /*is_causal=*/true, scale);
  }
#endif

  // Fused CPU path: dense layers, and hooks whose masking is a per-row rule.
  if (options.allow_fused_cpu && q.is_cpu() && q.scalar_type() == at::kFloat) {
    RowRule rule = hooked ? hook->row_rule(layer) : RowRule{};
    if (!hooked || rule.kind != RowRule::Kind::kNone) {
      ReadsCount reads;
      at::Tensor out = fused_attention_cpu(q, k, v, scale, rule, hooked ? &reads : nullptr);
      if (hooked) hook->count_reads(layer, reads);
      return out;
    }
  }

  // Explicit path: scores in float32, chunked over query rows.
  // Query heads of one KV group are adjacent (head h reads kv head h / G, as repeat_kv does), so
  // q viewed as [B, Hkv, G*Tq, D] multiplies k^T without copying k.
  const int64_t bytes_per_row = B * H * S * 4;
  const int64_t budget = q.is_cuda() ? options.max_score_bytes_cuda : options.max_score_bytes;
  int64_t chunk = std::max<int64_t>(1, budget / std::max<int64_t>(1, bytes_per_row));
  chunk = std::min(chunk, T);
  at::Tensor kt = k.to(at::kFloat).transpose(2, 3);  // [B, Hkv, D, S]
  at::Tensor vf = v.to(at::kFloat);                  // [B, Hkv, S, D]
  at::Tensor out = at::empty({B, H, T, D}, q.options());
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t rows = std::min(chunk, T - t0);
    const int64_t q_pos0 = S - T + t0;
    at::Tensor qc = q.narrow(2, t0, rows).to(at::kFloat);                      // [B, H, Tq, D]
    at::Tensor qg = qc.reshape({B, Hkv, G * rows, D});                         // [B, Hkv, G*Tq, D]
    at::Tensor scores = at::matmul(qg, kt).mul_(scale).view({B, H, rows, S});  // [B, H, Tq, S]
    scores.add_(causal_mask(q_pos0, rows, S, scores.options()));
    ScoreBlock where{layer, q_pos0};
    if (hooked) hook->mask_scores(where, scores);
    at::Tensor probs = at::softmax(scores, -1);  // [B, H, Tq, S]
    if (hooked) hook->observe_probs(where, probs);
    at::Tensor o = at::matmul(probs.view({B, Hkv, G * rows, S}), vf);  // [B, Hkv, G*Tq, D]
    out.narrow(2, t0, rows).copy_(o.view({B, H, rows, D}));
  }
  return out;
}

}  // namespace csa
