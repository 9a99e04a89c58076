#include "csa/attention/attention.h"

#include <torch/version.h>

#include <limits>

#include "csa/attention/fused_cpu.h"
#include "csa/attention/fused_cuda.h"
#include "csa/attention/mask.h"
#include "csa/attention/pages.h"
#include "csa/core/error.h"

namespace csa {

bool HookChain::active(int layer) const {
  for (auto* h : hooks_)
    if (h->active(layer)) return true;
  return false;
}

const LayerRule* HookChain::rule(int layer) const {
  const LayerRule* only = nullptr;
  for (auto* h : hooks_) {
    if (!h->active(layer)) continue;
    if (const LayerRule* r = h->rule(layer)) {
      CSA_CHECK(only == nullptr, "two hooks restrict layer " + std::to_string(layer));
      only = r;
    }
  }
  return only;
}

bool HookChain::observes(int layer) const {
  for (auto* h : hooks_)
    if (h->active(layer) && h->observes(layer)) return true;
  return false;
}

void HookChain::observe(const AttentionView& view) {
  for (auto* h : hooks_)
    if (h->active(view.layer) && h->observes(view.layer)) h->observe(view);
}

void HookChain::observe_residual(int layer, const at::Tensor& x) {
  for (auto* h : hooks_)
    if (h->active(layer) && h->observes(layer)) h->observe_residual(layer, x);
}

void HookChain::count_reads(int layer, const at::Tensor& q, const at::Tensor& kv) {
  for (auto* h : hooks_)
    if (h->active(layer)) h->count_reads(layer, q, kv);
}

bool HookChain::counts_reads() const {
  for (auto* h : hooks_)
    if (h->counts_reads()) return true;
  return false;
}

at::Tensor causal_mask(int64_t q_pos0, int64_t rows, int64_t keys, const at::TensorOptions& opts) {
  at::Tensor q_pos = at::arange(q_pos0, q_pos0 + rows, opts.dtype(at::kLong)).unsqueeze(1);
  at::Tensor k_pos = at::arange(keys, opts.dtype(at::kLong)).unsqueeze(0);
  at::Tensor mask = at::zeros({rows, keys}, opts);
  return mask.masked_fill_(k_pos > q_pos, -std::numeric_limits<float>::infinity());
}

namespace {

// Explicit path: scores in float32, chunked over query rows. Query heads of one KV group are
// adjacent (head h reads kv head h / G, as repeat_kv does), so q viewed as [B, Hkv, G*Tq, D]
// multiplies k^T without copying k.
at::Tensor attend_explicit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale, int layer, AttentionHook* hook, const LayerRule* rule,
                           bool observe, const AttentionOptions& options) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  const int64_t bytes_per_row = B * H * S * 4;
  const int64_t budget = q.is_cuda() ? options.max_score_bytes_cuda : options.max_score_bytes;
  int64_t chunk = std::max<int64_t>(1, budget / std::max<int64_t>(1, bytes_per_row));
  chunk = std::min(chunk, T);
  at::Tensor kt = k.to(at::kFloat).transpose(2, 3);  // [B, Hkv, D, S]
  at::Tensor vf = v.to(at::kFloat).contiguous();     // [B, Hkv, S, D]
  at::Tensor out = at::empty({B, H, T, D}, q.options());
  at::Tensor q_reads, kv_reads;
  const bool paged = rule != nullptr && rule->select.paged();
  const PageSummaries pages = paged ? summarize_pages(k, rule->select.page) : PageSummaries{};
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t rows = std::min(chunk, T - t0);
    const int64_t q_pos0 = S - T + t0;
    at::Tensor qc = q.narrow(2, t0, rows).to(at::kFloat);                      // [B, H, Tq, D]
    at::Tensor qg = qc.reshape({B, Hkv, G * rows, D});                         // [B, Hkv, G*Tq, D]
    at::Tensor scores = at::matmul(qg, kt).mul_(scale).view({B, H, rows, S});  // [B, H, Tq, S]
    scores.add_(causal_mask(q_pos0, rows, S, scores.options()));
    if (rule != nullptr) {
      if (paged)
        mask_to_pages(scores, qc, pages, scale, *rule, q_pos0);
      else
        mask_to_rule(scores, *rule, q_pos0);
      auto [qr, kvr] = count_kept(scores, Hkv);
      q_reads = q_reads.defined() ? q_reads.add_(qr) : qr;
      kv_reads = kv_reads.defined() ? kv_reads.add_(kvr) : kvr;
    }
    at::Tensor probs = at::softmax(scores, -1);  // [B, H, Tq, S]
    if (observe) hook->observe(AttentionView{layer, q_pos0, probs, vf});
    at::Tensor o = at::matmul(probs.view({B, Hkv, G * rows, S}), vf);  // [B, Hkv, G*Tq, D]
    out.narrow(2, t0, rows).copy_(o.view({B, H, rows, D}));
  }
  if (rule != nullptr) hook->count_reads(layer, q_reads, kv_reads);
  return out;
}

}  // namespace

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                  int layer, AttentionHook* hook, const AttentionOptions& options) {
  const int64_t H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  CSA_CHECK(H % Hkv == 0 && S >= T && k.size(3) == D && v.sizes() == k.sizes(),
            "attention shapes disagree");
  const bool hooked = hook != nullptr && hook->active(layer);
  const LayerRule* rule = hooked ? hook->rule(layer) : nullptr;
  const bool observe = hooked && hook->observes(layer);
  // The fused kernels select token by token; page-granular rules take the explicit path.
  const bool fusable = !observe && (rule == nullptr || !rule->select.paged());

#if TORCH_VERSION_MAJOR >= 2
  if (rule == nullptr && !observe && options.allow_fused && T == S) {
    // Fused dense path. K/V are expanded per query head (a view, no copy).
    const int64_t B = q.size(0), G = H / Hkv;
    at::Tensor ke = k.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
    at::Tensor ve = v.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
    return at::scaled_dot_product_attention(q, ke, ve, {}, 0.0, /*is_causal=*/true, scale);
  }
#endif

  if (fusable && rule != nullptr && options.allow_fused_cuda && q.is_cuda()) {
    at::Tensor q_reads, kv_reads;
    at::Tensor out = fused_attention_cuda(q, k, v, scale, *rule, &q_reads, &kv_reads);
    if (out.defined()) {
      hook->count_reads(layer, q_reads, kv_reads);
      return out;
    }
  }

  if (fusable && options.allow_fused_cpu && q.is_cpu() && q.scalar_type() == at::kFloat) {
    if (rule == nullptr) return fused_attention_cpu(q, k, v, scale, nullptr, nullptr);
    ReadsCount reads;
    at::Tensor out = fused_attention_cpu(q, k, v, scale, rule, &reads);
    hook->count_reads(layer, at::tensor(reads.q, at::kDouble), at::tensor(reads.kv, at::kDouble));
    return out;
  }
  return attend_explicit(q, k, v, scale, layer, hook, rule, observe, options);
}

}  // namespace csa
