#include "csa/calib/stats.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "csa/attention/select.h"
#include "csa/core/error.h"
#include "csa/core/profile.h"

namespace csa {

std::pair<double, int64_t> row_diffuseness(const float* p, int64_t n, double tau,
                                           std::vector<float>& scratch) {
  double h = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float v = p[j];
    if (v > 0) h -= static_cast<double>(v) * std::log(static_cast<double>(v));
  }
  return {h, count_for_mass(p, n, tau, scratch)};
}

AttentionStatsObserver::AttentionStatsObserver(int64_t n_layer, int64_t n_head, double tau)
    : n_layer_(n_layer), n_head_(n_head), tau_(tau) {
  if (!(tau > 0 && tau <= 1))
    throw UsageError("--tau must be in (0, 1], got " + std::to_string(tau));
  const auto cells = static_cast<size_t>(n_layer * n_head);
  eff_.assign(cells, 0);
  mass_.assign(cells, 0);
  ent_.assign(cells, 0);
  causal_.assign(cells, 0);
}

// The same sums as observe()'s row path, on the probabilities' device: per row the entropy
// -sum p log p in float64 and the fewest keys whose probabilities reach tau (sorted descending,
// prefix sums in float64: the first that reaches tau; every causal key when none does, as
// count_for_mass returns), summed per (batch, head) there; the host gets [B, H] sums per call.
void AttentionStatsObserver::observe_tensors(const AttentionView& where) {
  CSA_PROFILE_SCOPE("calibrate/statistics");
  const at::Tensor& probs = where.probs;  // [B, H, Tq, S]
  const int64_t B = probs.size(0), H = probs.size(1), Tq = probs.size(2), S = probs.size(3);
  CSA_CHECK(H == n_head_, "statistics observer: head count");
  const auto dev = probs.device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
  const at::Tensor n =  // keys each row may read: min(S, position + 1)
      (at::arange(Tq, lopt) + (where.q_pos0 + 1)).clamp_max(S);
  const at::Tensor causal = at::arange(S, lopt).view({1, S}) < n.view({Tq, 1});  // [Tq, S]
  const at::Tensor masked = causal.logical_not();
  // Batch row by batch row, so that the float64 copies stay one row's size.
  std::vector<at::Tensor> per_row;
  for (int64_t b = 0; b < B; ++b) {
    const at::Tensor pf = probs[b].to(at::kFloat).masked_fill(masked, 0.f);  // [H, Tq, S]
    const at::Tensor p = pf.to(at::kDouble);
    const at::Tensor ent = at::where(p > 0, -p * p.log(), at::zeros_like(p)).sum(-1);  // [H, Tq]
    const at::Tensor cs = std::get<0>(at::sort(pf, /*stable=*/false, -1, /*descending=*/true))
                              .to(at::kDouble)
                              .cumsum(-1);
    const at::Tensor keys =
        at::minimum((cs < tau_).sum(-1) + 1, n.view({1, Tq})).to(at::kDouble);        // [H, Tq]
    per_row.push_back(at::stack({ent.exp().sum(-1), keys.sum(-1), ent.sum(-1)}, 1));  // [H, 3]
  }
  const at::Tensor sums = at::stack(per_row).permute({2, 0, 1}).contiguous().cpu();  // [3, B, H]
  const double causal_sum = n.sum().item<double>();
  const double* a = sums.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const size_t cell = static_cast<size_t>(where.layer * n_head_ + h);
      const size_t at = static_cast<size_t>(b * H + h), step = static_cast<size_t>(B * H);
      eff_[cell] += a[at];
      mass_[cell] += a[step + at];
      ent_[cell] += a[2 * step + at];
      causal_[cell] += causal_sum;
    }
  if (where.layer == 0) rows_ += B * Tq;
}

void AttentionStatsObserver::observe(const AttentionView& where) {
  if (tensor_path_ || where.probs.is_cuda()) return observe_tensors(where);
  CSA_PROFILE_SCOPE("calibrate/statistics");
  at::Tensor probs = where.probs.to(at::kCPU, at::kFloat).contiguous();  // [B, H, Tq, S]
  const int64_t B = probs.size(0), H = probs.size(1), Tq = probs.size(2), S = probs.size(3);
  CSA_CHECK(H == n_head_, "statistics observer: head count");
  const float* base = probs.data_ptr<float>();
  // Per (b, h) partial sums, reduced after the parallel loop.
  const int64_t groups = B * H;
  std::vector<double> eff(static_cast<size_t>(groups)), mass(eff), ent(eff), causal(eff);
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t g = begin; g < end; ++g) {
      double e = 0, m = 0, hsum = 0, c = 0;
      for (int64_t r = 0; r < Tq; ++r) {
        const int64_t n = std::min(S, where.q_pos0 + r + 1);
        auto [h, k] = row_diffuseness(base + (g * Tq + r) * S, n, tau_, scratch);
        hsum += h;
        e += std::exp(h);
        m += static_cast<double>(k);
        c += static_cast<double>(n);
      }
      eff[static_cast<size_t>(g)] = e;
      mass[static_cast<size_t>(g)] = m;
      ent[static_cast<size_t>(g)] = hsum;
      causal[static_cast<size_t>(g)] = c;
    }
  });
  for (int64_t g = 0; g < groups; ++g) {
    const size_t cell = static_cast<size_t>(where.layer * n_head_ + g % H);
    eff_[cell] += eff[static_cast<size_t>(g)];
    mass_[cell] += mass[static_cast<size_t>(g)];
    ent_[cell] += ent[static_cast<size_t>(g)];
    causal_[cell] += causal[static_cast<size_t>(g)];
  }
  if (where.layer == 0) rows_ += B * Tq;
}

std::vector<std::vector<CellStats>> AttentionStatsObserver::result() const {
  std::vector<std::vector<CellStats>> out(static_cast<size_t>(n_layer_),
                                          std::vector<CellStats>(static_cast<size_t>(n_head_)));
  if (rows_ == 0) return out;
  const double n = static_cast<double>(rows_);
  for (int64_t l = 0; l < n_layer_; ++l)
    for (int64_t h = 0; h < n_head_; ++h) {
      const size_t cell = static_cast<size_t>(l * n_head_ + h);
      CellStats& s = out[static_cast<size_t>(l)][static_cast<size_t>(h)];
      s.effective_keys = eff_[cell] / n;
      s.mass_keys = mass_[cell] / n;
      s.entropy = ent_[cell] / n;
      s.causal_keys = causal_[cell] / n;
    }
  return out;
}

}  // namespace csa
