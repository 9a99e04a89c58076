#include "csa/calib/need.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "csa/core/error.h"
#include "csa/core/profile.h"

// The 32-byte vectors below never cross a call (always inlined): GCC's ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace csa {
namespace {

// out[0..8·NV) += p[j] · x[j * ld + 0..8·NV) for the keys j of ranks[i0..i1), in rank order,
// with out held in registers over the keys: per entry the same float products and sums, in the
// same order, as one axpy per key (the clones below have no FMA to contract them into), without
// a store and reload of out per key.
typedef float F8 __attribute__((vector_size(32)));
template <int NV>
inline __attribute__((always_inline)) void accumulate_ranked_w(float* __restrict out,
                                                               const float* __restrict x,
                                                               int64_t ld, const uint64_t* ranks,
                                                               const float* p, int64_t i0,
                                                               int64_t i1) {
  F8 a[NV];
  for (int u = 0; u < NV; ++u) std::memcpy(&a[u], out + 8 * u, sizeof(F8));
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t j = static_cast<int64_t>(ranks[i] & 0xffffffffu);
    const F8 w = F8{} + p[j];
    const float* xj = x + j * ld;
    for (int u = 0; u < NV; ++u) {
      F8 xv;
      std::memcpy(&xv, xj + 8 * u, sizeof(F8));
      a[u] += w * xv;
    }
  }
  for (int u = 0; u < NV; ++u) std::memcpy(out + 8 * u, &a[u], sizeof(F8));
}

// acc[0..D) += p[j] · x[j, 0..D) over the keys of ranks[i0..i1) (x: [n, D] row-major), in rank
// order, 32 or 8 entries at a time. Compiled for AVX2 and the baseline ISA, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void accumulate_ranked(float* acc, const float* x, int64_t D, const uint64_t* ranks,
                       const float* p, int64_t i0, int64_t i1) {
  int64_t d = 0;
  for (; d + 32 <= D; d += 32) accumulate_ranked_w<4>(acc + d, x + d, D, ranks, p, i0, i1);
  for (; d + 8 <= D; d += 8) accumulate_ranked_w<1>(acc + d, x + d, D, ranks, p, i0, i1);
  for (; d < D; ++d)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t j = static_cast<int64_t>(ranks[i] & 0xffffffffu);
      acc[d] += p[j] * x[j * D + d];
    }
}

// ||a / s - b||² over D entries, in double.
double dist2(const float* a, double s, const float* b, int64_t D) {
  double e = 0;
  for (int64_t d = 0; d < D; ++d) {
    const double x = static_cast<double>(a[d]) / s - static_cast<double>(b[d]);
    e += x * x;
  }
  return e;
}

uint64_t rank_key(float p, int64_t j) {
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof bits);  // p >= 0: the bit patterns order like the values
  return (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(j);
}

constexpr double kHistLo = -6.0, kHistPerDecade = 6.0;  // log10 bins of rel_err

int hist_bin(double rel, int bins) {
  if (!(rel > 0)) return 0;
  const double x = (std::log10(rel) - kHistLo) * kHistPerDecade;
  return static_cast<int>(std::clamp(x, 0.0, static_cast<double>(bins - 1)));
}

double hist_quantile(const uint32_t* h, int bins, double q) {
  double total = 0;
  for (int i = 0; i < bins; ++i) total += h[i];
  if (total <= 0) return 0;
  double need = q * total, seen = 0;
  for (int i = 0; i < bins; ++i) {
    if (seen + h[i] >= need) {
      const double frac = h[i] > 0 ? (need - seen) / h[i] : 0;
      if (i == 0) return std::pow(10.0, kHistLo + frac / kHistPerDecade);
      return std::pow(10.0, kHistLo + (i + frac) / kHistPerDecade);
    }
    seen += h[i];
  }
  return std::pow(10.0, kHistLo + bins / kHistPerDecade);
}

}  // namespace

std::vector<int64_t> budget_grid(int64_t ctx) {
  std::vector<int64_t> g;
  for (int64_t p = 1; p <= ctx; p *= 2) {
    g.push_back(p);
    if (p >= 2 && p + p / 2 <= ctx && p + p / 2 < 2 * p) g.push_back(p + p / 2);
  }
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  if (g.back() != ctx) g.push_back(ctx);
  return g;
}

std::vector<int64_t> position_bands(int64_t ctx) {
  std::vector<int64_t> b = {0};
  for (int64_t s = 16; s < ctx; s *= 2) b.push_back(s);
  return b;
}

int64_t NeedCurves::band_end(int64_t b) const {
  return b + 1 < n_bands() ? band_start[static_cast<size_t>(b + 1)] : ctx;
}

std::vector<double> top_p_grid() {
  return {0.01, 0.02, 0.05, 0.1,  0.2,  0.3,  0.4,  0.5,  0.6,   0.7,
          0.8,  0.85, 0.9,  0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999};
}

void row_need(const float* p, int64_t n, const float* v, const float* vr, int64_t D,
              const std::vector<int64_t>& grid, const std::vector<double>& masses, RowNeed& out,
              std::vector<uint64_t>& keys) {
  const auto G = static_cast<int64_t>(grid.size());
  const auto P = static_cast<int64_t>(masses.size());
  out.mass_out.assign(static_cast<size_t>(G), 0.0);
  out.rel_err.assign(static_cast<size_t>(G), 0.0);
  out.res_err.assign(static_cast<size_t>(G), 0.0);
  out.seg.assign(static_cast<size_t>(n), static_cast<int32_t>(G));
  out.p_keys.assign(static_cast<size_t>(P), n);
  out.p_rel_err.assign(static_cast<size_t>(P), 0.0);
  int64_t m = 0;  // grid points that drop keys (k < n)
  while (m < G && grid[static_cast<size_t>(m)] < n) ++m;
  if (m == 0) return;

  keys.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) keys[static_cast<size_t>(j)] = rank_key(p[j], j);
  // Partition from the widest budget down: afterwards positions [k_{g-1}, k_g) hold exactly the
  // keys ranked there (descending key = higher probability, then the larger index).
  for (int64_t g = m - 1; g >= 0; --g) {
    const int64_t k = grid[static_cast<size_t>(g)];
    const int64_t end = g + 1 < m ? grid[static_cast<size_t>(g + 1)] : n;
    std::nth_element(keys.begin(), keys.begin() + k, keys.begin() + end, std::greater<uint64_t>());
  }
  auto key_of = [&](int64_t i) {
    return static_cast<int64_t>(keys[static_cast<size_t>(i)] & 0xffffffffu);
  };
  // Segment g = positions [seg_lo(g), seg_hi(g)), g = 0..m (the last one: the keys no grid
  // budget keeps).
  auto seg_hi = [&](int64_t g) { return g < m ? grid[static_cast<size_t>(g)] : n; };

  // Top-p counts, masses ascending: the mass in rank order until it reaches p. A segment the
  // crossing skips is summed as it lies; the one it falls in is sorted (the rank order inside
  // it), once.
  thread_local std::vector<uint8_t> sorted;
  sorted.assign(static_cast<size_t>(m + 1), 0);
  std::vector<int64_t>& count = out.p_keys;  // [P], n until a mass is reached
  {
    double run = 0;
    int64_t pos = 0, g = 0;
    for (int64_t q = 0; q < P; ++q) {
      const double target = masses[static_cast<size_t>(q)];
      while (run < target && pos < n) {
        while (pos >= seg_hi(g)) ++g;
        const int64_t hi = seg_hi(g);
        if (!sorted[static_cast<size_t>(g)]) {  // pos is the segment's start
          double rest = 0;
          for (int64_t i = pos; i < hi; ++i) rest += p[key_of(i)];
          if (run + rest < target) {
            run += rest;
            pos = hi;
            continue;
          }
          std::sort(keys.begin() + pos, keys.begin() + hi, std::greater<uint64_t>());
          sorted[static_cast<size_t>(g)] = 1;
        }
        for (; pos < hi && run < target; ++pos) run += p[key_of(pos)];
      }
      count[static_cast<size_t>(q)] = run >= target ? std::max<int64_t>(pos, 1) : n;
    }
  }

  // One pass in rank order: the top-k sums (plain and residual-space) are snapshots of the running
  // sums at every grid budget, the top-p sums at every count below n, and the full outputs the
  // sums at the end (the same order, so the same floats as summing them separately).
  thread_local std::vector<float> acc, accr, snap, snapr, psnap;
  thread_local std::vector<double> snap_mass, psnap_mass;
  acc.assign(static_cast<size_t>(D), 0.f);
  accr.assign(static_cast<size_t>(D), 0.f);
  snap.resize(static_cast<size_t>(m * D));
  snapr.resize(static_cast<size_t>(m * D));
  snap_mass.resize(static_cast<size_t>(m));
  psnap.resize(static_cast<size_t>(P * D));
  psnap_mass.assign(static_cast<size_t>(P), 0.0);
  double mass = 0;
  int64_t i = 0, q = 0;
  for (int64_t g = 0; g <= m; ++g) {
    const int64_t k = seg_hi(g);
    auto advance = [&](int64_t to) {
      accumulate_ranked(acc.data(), v, D, keys.data(), p, i, to);
      accumulate_ranked(accr.data(), vr, D, keys.data(), p, i, to);
      for (; i < to; ++i) {
        const int64_t j = key_of(i);
        mass += p[j];
        if (g < m) out.seg[static_cast<size_t>(j)] = static_cast<int32_t>(g);
      }
    };
    for (; q < P && count[static_cast<size_t>(q)] <= k && count[static_cast<size_t>(q)] < n; ++q) {
      advance(count[static_cast<size_t>(q)]);
      std::copy(acc.begin(), acc.end(), psnap.begin() + q * D);
      psnap_mass[static_cast<size_t>(q)] = mass;
    }
    advance(k);
    if (g < m) {
      std::copy(acc.begin(), acc.end(), snap.begin() + g * D);
      std::copy(accr.begin(), accr.end(), snapr.begin() + g * D);
      snap_mass[static_cast<size_t>(g)] = mass;
    }
  }
  const double total = mass;
  if (!(total > 0)) return;
  std::vector<float>& full = acc;
  std::vector<float>& fullr = accr;
  for (int64_t d = 0; d < D; ++d) {
    full[static_cast<size_t>(d)] = static_cast<float>(full[static_cast<size_t>(d)] / total);
    fullr[static_cast<size_t>(d)] = static_cast<float>(fullr[static_cast<size_t>(d)] / total);
  }
  double norm2 = 0;
  for (int64_t d = 0; d < D; ++d) norm2 += static_cast<double>(full[d]) * full[d];
  const double norm = std::sqrt(std::max(norm2, 1e-30));

  for (int64_t g = 0; g < m; ++g) {
    const auto G_ = static_cast<size_t>(g);
    const double mg = snap_mass[G_];
    out.mass_out[G_] = std::max(0.0, (total - mg) / total);
    if (mg > 0) {
      out.rel_err[G_] = std::sqrt(dist2(snap.data() + g * D, mg, full.data(), D)) / norm;
      out.res_err[G_] = dist2(snapr.data() + g * D, mg, fullr.data(), D);
    } else {
      out.rel_err[G_] = 1.0;
      out.res_err[G_] = 0.0;
      for (int64_t d = 0; d < D; ++d) out.res_err[G_] += static_cast<double>(fullr[d]) * fullr[d];
    }
  }
  // A top-p set is never empty; without mass (all-zero kept probabilities) its output is taken
  // as zero, as the top-k sums above.
  for (int64_t r = 0; r < q; ++r) {
    const double mp = psnap_mass[static_cast<size_t>(r)];
    out.p_rel_err[static_cast<size_t>(r)] =
        mp > 0 ? std::sqrt(dist2(psnap.data() + r * D, mp, full.data(), D)) / norm : 1.0;
  }
}

NeedObserver::NeedObserver(int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                           int64_t ctx, const std::vector<at::Tensor>& out_proj)
    : n_layer_(n_layer),
      n_head_(n_head),
      n_head_kv_(n_head_kv),
      head_dim_(head_dim),
      ctx_(ctx),
      grid_(budget_grid(ctx)),
      bands_(position_bands(ctx)),
      masses_(top_p_grid()) {
  CSA_CHECK(static_cast<int64_t>(out_proj.size()) == n_layer, "one output projection per layer");
  const int64_t D = head_dim;
  for (const at::Tensor& w : out_proj) {
    // W_o,h = w[:, h*D:(h+1)*D] ([C, D]); M_h = W_o,hᵀ W_o,h = Q Λ Qᵀ; R_h = Λ^½ Qᵀ.
    at::Tensor wf = w.to(at::kCPU, at::kDouble);                          // [C, H*D]
    at::Tensor wh = wf.view({wf.size(0), n_head, D}).permute({1, 0, 2});  // [H, C, D]
    at::Tensor m = at::matmul(wh.transpose(1, 2), wh);                    // [H, D, D]
    auto [evals, evecs] = at::linalg_eigh(m);                             // [H, D], [H, D, D]
    at::Tensor r = evals.clamp_min(0).sqrt().unsqueeze(2) * evecs.transpose(1, 2);  // [H, D, D]
    res_map_.push_back(r.to(at::kFloat).contiguous());
  }
  const auto cells = static_cast<size_t>(n_layer * n_head);
  const auto NB = bands_.size(), G = grid_.size();
  rows_.assign(cells * NB, 0.0);
  mass_.assign(cells * NB * G, 0.0);
  rel_.assign(cells * NB * G, 0.0);
  res_.assign(cells * NB * G, 0.0);
  union_.assign(static_cast<size_t>(n_layer * n_head_kv) * NB * G, 0.0);
  hist_.assign(cells * NB * G * kHistBins, 0);
  p_keys_.assign(cells * NB * masses_.size(), 0.0);
  p_rel_.assign(cells * NB * masses_.size(), 0.0);
  resid_sum_.assign(static_cast<size_t>(n_layer), 0.0);
  resid_rows_.assign(static_cast<size_t>(n_layer), 0.0);
}

void NeedObserver::observe_residual(int layer, const at::Tensor& x) {
  const at::Tensor sq = x.to(at::kFloat).pow(2).sum(-1).to(at::kDouble);  // [B, T]
  resid_sum_[static_cast<size_t>(layer)] += sq.sum().item<double>();
  resid_rows_[static_cast<size_t>(layer)] += static_cast<double>(sq.numel());
}

int64_t NeedObserver::band_of(int64_t pos) const {
  const auto NB = static_cast<int64_t>(bands_.size());
  int64_t b = 0;
  while (b + 1 < NB && bands_[static_cast<size_t>(b + 1)] <= pos) ++b;
  return b;
}

bool NeedObserver::sampled(int64_t pos) const {
  const int64_t b = band_of(pos), lo = bands_[static_cast<size_t>(b)];
  const int64_t hi =
      b + 1 < static_cast<int64_t>(bands_.size()) ? bands_[static_cast<size_t>(b + 1)] : ctx_;
  const int64_t stride = std::max<int64_t>(1, (hi - lo) / kRowsPerBand);
  return (pos - lo) % stride == 0;
}

// The same measurements as row_need and observe(), as tensor operations on the probabilities'
// device. Per sampled row and query head: the keys ranked by a stable descending sort of the
// row reversed (so ties go to the larger index, masked keys last), each key's segment (the
// first grid budget whose top set holds it), the probabilities scattered into one row per
// segment and multiplied by the values (and their residual-space images): prefix sums over the
// segments are the top-k sums at every grid budget. Band sums are taken there, in a fixed order;
// the host receives them once per call.
void NeedObserver::observe_tensors(const AttentionView& view) {
  CSA_PROFILE_SCOPE("calibrate/need_curves");
  const at::Tensor& probs = view.probs;  // [B, H, Tq, S]
  const int64_t B = probs.size(0), H = probs.size(1), Tq = probs.size(2), S = probs.size(3);
  const int64_t D = head_dim_, Hkv = n_head_kv_, Gq = H / Hkv;
  CSA_CHECK(H == n_head_ && view.v.size(1) == Hkv && view.v.size(3) == D, "need observer shapes");
  const auto NB = static_cast<int64_t>(bands_.size()), G = static_cast<int64_t>(grid_.size());
  std::vector<int64_t> rows, keys_seen;
  // Sampled rows in position order: each band's rows are a contiguous range [lo_b, hi_b).
  std::vector<int64_t> lo(static_cast<size_t>(NB), 0), hi(static_cast<size_t>(NB), 0);
  for (int64_t r = 0; r < Tq; ++r) {
    const int64_t pos = view.q_pos0 + r;
    if (!sampled(pos)) continue;
    const auto b = static_cast<size_t>(band_of(pos));
    const auto i = static_cast<int64_t>(rows.size());
    if (hi[b] == lo[b]) lo[b] = i;
    hi[b] = i + 1;
    rows.push_back(r);
    keys_seen.push_back(std::min(S, pos + 1));
  }
  if (rows.empty()) return;
  const auto R = static_cast<int64_t>(rows.size());
  const at::Device dev = probs.device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
  const auto dopt = at::TensorOptions().dtype(at::kDouble).device(dev);
  const at::Tensor n = at::tensor(keys_seen, at::kLong).to(dev);                // [R]
  const at::Tensor causal = at::arange(S, lopt).view({1, S}) < n.view({R, 1});  // [R, S]
  const at::Tensor grid = at::tensor(grid_, at::kLong).to(dev);                 // [G]
  const auto P = static_cast<int64_t>(masses_.size());
  const at::Tensor masses = at::tensor(masses_, at::kDouble).to(dev).view({1, P});  // [1, P]
  const at::Tensor active = grid.view({1, G}) < n.view({R, 1});  // [R, G]: budgets that drop keys
  const at::Tensor all_keys = active.logical_not();
  const at::Tensor row_index = at::tensor(rows, at::kLong).to(dev);
  const at::Tensor masked = causal.logical_not();
  // One head's sampled rows [R, S] (zero past each row's context) and each key's segment: the
  // first grid budget whose top set holds it (0..G - 1; G for keys past the context). Ranks:
  // descending probability, ties to the larger index (a stable sort of the reversed row), keys
  // past the context last. Head by head, so that the rank tensors stay one head's size.
  // Also the top-p counts [R, P]: the keys before the first whose exclusive prefix mass (in rank
  // order, float64) reaches p, at most the causal keys, at least 1.
  auto segments = [&](int64_t b, int64_t h) {
    const at::Tensor p =
        probs[b][h].index_select(0, row_index).to(at::kFloat).masked_fill(masked, 0.f);
    auto [sorted, order] =
        at::sort(p.masked_fill(masked, -1.f).flip(-1), /*stable=*/true, -1, /*descending=*/true);
    const at::Tensor rank =
        at::empty_like(order).scatter_(-1, (S - 1) - order, at::arange(S, lopt).expand_as(order));
    at::Tensor seg = at::searchsorted(grid, rank, /*out_int32=*/false, /*right=*/true);
    const at::Tensor cum = sorted.clamp_min(0).to(at::kDouble).cumsum(-1);  // [R, S]
    const at::Tensor before =
        at::cat({at::zeros({R, 1}, dopt), cum.narrow(1, 0, S - 1)}, 1).contiguous();
    const at::Tensor count =
        at::minimum(at::searchsorted(before, masses.expand({R, P}).contiguous()), n.view({R, 1}))
            .clamp_min(1);  // [R, P]
    return std::make_tuple(p, seg.masked_fill(masked, G), rank, count);
  };
  const at::Tensor rmap = res_map_[static_cast<size_t>(view.layer)].to(dev);  // [H, D, D]
  const at::Tensor vf = view.v.to(at::kFloat);                                // [B, Hkv, S, D]
  // Every (sequence, head)'s per-row measurements, band-summed once a call below (per-head band
  // sums were most of this observer's kernel launches: ~6 (NB + 2) a head and sequence).
  at::Tensor a_mass = at::empty({B, H, R, G}, dopt), a_rel = at::empty({B, H, R, G}, dopt),
             a_res = at::empty({B, H, R, G}, dopt), a_uni = at::empty({B, Hkv, R, G}, dopt);
  at::Tensor a_pkeys = at::empty({B, H, R, P}, dopt), a_prel = at::empty({B, H, R, P}, dopt);
  // Blocks of rows, so that the per-segment (and per-mass) weights [rows, G + 1 (P), S] stay near
  // block_bytes_.
  const int64_t block = std::max<int64_t>(1, block_bytes_ / (std::max(G + 1, P) * S * 4));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t g = 0; g < Hkv; ++g) {
      at::Tensor min_seg = at::full({R, S}, G, lopt);  // the group's: keys some head keeps
      for (int64_t h = g * Gq; h < (g + 1) * Gq; ++h) {
        const auto [prob, seg, rank, count] = segments(b, h);
        min_seg = at::minimum(min_seg, seg);
        const at::Tensor v = vf[b][g];                                 // [S, D]
        const at::Tensor vr = at::matmul(v, rmap[h].transpose(0, 1));  // [S, D]
        at::Tensor mout = a_mass[b][h], rel = a_rel[b][h], res = a_res[b][h], prel = a_prel[b][h];
        for (int64_t r0 = 0; r0 < R; r0 += block) {
          const int64_t nr = std::min(block, R - r0);
          const at::Tensor p = prob.narrow(0, r0, nr), sg = seg.narrow(0, r0, nr);
          const at::Tensor w =
              at::zeros({nr, G + 1, S}, p.options()).scatter_(1, sg.unsqueeze(1), p.unsqueeze(1));
          const at::Tensor sv = at::matmul(w, v).cumsum(1);  // [nr, G + 1, D]: top-k sums, all keys
          const at::Tensor svr = at::matmul(w, vr).cumsum(1);
          const at::Tensor mass = w.sum(-1, false, at::kDouble).cumsum(1);  // [nr, G + 1]
          const at::Tensor total = mass.select(1, G);                       // [nr]
          const at::Tensor full = (sv.select(1, G).to(at::kDouble) / total.unsqueeze(1))
                                      .to(at::kFloat)
                                      .to(at::kDouble);  // [nr, D], rounded as the CPU path does
          const at::Tensor fullr = (svr.select(1, G).to(at::kDouble) / total.unsqueeze(1))
                                       .to(at::kFloat)
                                       .to(at::kDouble);
          const at::Tensor norm = full.pow(2).sum(-1).clamp_min(1e-30).sqrt();  // [nr]
          const at::Tensor mg = mass.narrow(1, 0, G);                           // [nr, G]
          const at::Tensor snap = sv.narrow(1, 0, G).to(at::kDouble) / mg.unsqueeze(2);
          const at::Tensor snapr = svr.narrow(1, 0, G).to(at::kDouble) / mg.unsqueeze(2);
          const at::Tensor some = mg > 0;
          const at::Tensor dead =  // budgets that read every key, rows without mass: no error
              active.narrow(0, r0, nr).logical_and((total > 0).unsqueeze(1)).logical_not();
          rel.narrow(0, r0, nr).copy_(
              at::where(some, (snap - full.unsqueeze(1)).pow(2).sum(-1).sqrt() / norm.unsqueeze(1),
                        at::ones_like(mg))
                  .masked_fill(dead, 0.0));
          res.narrow(0, r0, nr).copy_(at::where(some, (snapr - fullr.unsqueeze(1)).pow(2).sum(-1),
                                                fullr.pow(2).sum(-1, true).expand_as(mg))
                                          .masked_fill(dead, 0.0));
          mout.narrow(0, r0, nr).copy_(
              ((total.unsqueeze(1) - mg) / total.unsqueeze(1)).clamp_min(0).masked_fill(dead, 0.0));
          // Top-p: the keys ranked below each mass's count; no error where that is every key.
          const at::Tensor cnt = count.narrow(0, r0, nr);  // [nr, P]
          const at::Tensor wp = p.unsqueeze(1) * (rank.narrow(0, r0, nr).unsqueeze(1) <
                                                  cnt.unsqueeze(2));                  // [nr, P, S]
          const at::Tensor mp = wp.sum(-1, false, at::kDouble);                       // [nr, P]
          const at::Tensor op = at::matmul(wp, v).to(at::kDouble) / mp.unsqueeze(2);  // [nr, P, D]
          const at::Tensor pdead =
              (cnt >= n.narrow(0, r0, nr).view({nr, 1})).logical_or((total <= 0).unsqueeze(1));
          prel.narrow(0, r0, nr).copy_(
              at::where(mp > 0, (op - full.unsqueeze(1)).pow(2).sum(-1).sqrt() / norm.unsqueeze(1),
                        at::ones_like(mp))
                  .masked_fill(pdead, 0.0));
        }
        a_pkeys[b][h].copy_(count);
      }
      // KV side: keys some head of the group keeps, at every grid budget (all keys where it
      // reads them all).
      const at::Tensor kept = at::zeros({R, G + 1}, lopt)
                                  .scatter_add_(1, min_seg, at::ones_like(min_seg))
                                  .cumsum(1)
                                  .narrow(1, 0, G)
                                  .to(at::kDouble);
      a_uni[b][g].copy_(at::where(all_keys, n.to(at::kDouble).view({R, 1}).expand({R, G}), kept));
    }
  }
  // Band sums over the sequences and each band's rows (rows are in band order), in a fixed order:
  // [H, NB, ...].
  auto band_sum = [&](const at::Tensor& x) {  // [B, H, R, ...] -> [H, NB, ...]
    std::vector<at::Tensor> parts;
    for (int64_t b = 0; b < NB; ++b) {
      const int64_t l0 = lo[static_cast<size_t>(b)], l1 = hi[static_cast<size_t>(b)];
      parts.push_back(l1 > l0 ? x.narrow(2, l0, l1 - l0).sum(at::IntArrayRef{0, 2})
                              : at::zeros_like(x.select(0, 0).select(1, 0)));
    }
    return at::stack(parts, 1);
  };
  const at::Tensor s_mass = band_sum(a_mass), s_rel = band_sum(a_rel), s_res = band_sum(a_res),
                   s_uni = band_sum(a_uni), s_pkeys = band_sum(a_pkeys), s_prel = band_sum(a_prel);
  // The rel_err histogram (hist_bin: log10 bins from kHistLo, 0 for no error) as integer counts
  // [H, NB, G, bins], by a scatter-add of ones (integer sums: the same in any order).
  const at::Tensor bin = ((a_rel.clamp_min(1e-300).log10() - kHistLo) * kHistPerDecade)
                             .clamp(0.0, static_cast<double>(kHistBins - 1))
                             .to(at::kLong)
                             .masked_fill(a_rel <= 0, 0);  // [B, H, R, G]
  std::vector<int64_t> band_of_row(static_cast<size_t>(R));
  for (int64_t b = 0; b < NB; ++b)
    for (int64_t i = lo[static_cast<size_t>(b)]; i < hi[static_cast<size_t>(b)]; ++i)
      band_of_row[static_cast<size_t>(i)] = b;
  const at::Tensor cell =  // [R, G]: (band, budget) of each row's entry
      (at::tensor(band_of_row, at::kLong).to(dev).view({R, 1}) * G + at::arange(G, lopt))
          .view({1, 1, R, G});
  const at::Tensor slot = (cell * kHistBins + bin).transpose(0, 1).reshape({H, B * R * G});
  const at::Tensor s_hist = at::zeros({H, NB * G * kHistBins}, lopt)
                                .scatter_add_(1, slot, at::ones_like(slot))
                                .view({H, NB, G, kHistBins});
  // To the host, into the sums in the observer's layout ([L][H][NB][G], [L][Hkv][NB][G]).
  const at::Tensor hm = s_mass.cpu(), hr = s_rel.cpu(), hs = s_res.cpu(), hu = s_uni.cpu(),
                   hh = s_hist.cpu(), hpk = s_pkeys.cpu(), hpr = s_prel.cpu();
  const auto L = static_cast<size_t>(view.layer);
  const auto cells = static_cast<size_t>(H * NB);
  const size_t base = L * cells, Gs = static_cast<size_t>(G);
  const double* pm = hm.data_ptr<double>();
  const double* pr = hr.data_ptr<double>();
  const double* ps = hs.data_ptr<double>();
  const double* pu = hu.data_ptr<double>();
  const int64_t* ph = hh.data_ptr<int64_t>();
  const double* ppk = hpk.data_ptr<double>();
  const double* ppr = hpr.data_ptr<double>();
  const auto Ps = static_cast<size_t>(P);
  for (size_t c = 0; c < cells; ++c) {
    for (size_t q = 0; q < Ps; ++q) {
      p_keys_[(base + c) * Ps + q] += ppk[c * Ps + q];
      p_rel_[(base + c) * Ps + q] += ppr[c * Ps + q];
    }
    const int64_t b = static_cast<int64_t>(c) % NB;
    rows_[base + c] +=
        static_cast<double>(B * (hi[static_cast<size_t>(b)] - lo[static_cast<size_t>(b)]));
    for (size_t k = 0; k < Gs; ++k) {
      mass_[(base + c) * Gs + k] += pm[c * Gs + k];
      rel_[(base + c) * Gs + k] += pr[c * Gs + k];
      res_[(base + c) * Gs + k] += ps[c * Gs + k];
      for (size_t i = 0; i < static_cast<size_t>(kHistBins); ++i)
        hist_[((base + c) * Gs + k) * kHistBins + i] +=
            static_cast<uint32_t>(ph[(c * Gs + k) * kHistBins + i]);
    }
  }
  const size_t kv_base = L * static_cast<size_t>(Hkv * NB) * Gs;
  for (size_t i = 0; i < static_cast<size_t>(Hkv * NB) * Gs; ++i) union_[kv_base + i] += pu[i];
}

void NeedObserver::observe(const AttentionView& view) {
  if (tensor_path_ || view.probs.is_cuda()) return observe_tensors(view);
  CSA_PROFILE_SCOPE("calibrate/need_curves");
  at::Tensor probs = view.probs.to(at::kCPU, at::kFloat).contiguous();  // [B, H, Tq, S]
  const int64_t B = probs.size(0), H = probs.size(1), Tq = probs.size(2), S = probs.size(3);
  const int64_t D = head_dim_, Hkv = n_head_kv_, Gq = H / Hkv;
  CSA_CHECK(H == n_head_ && view.v.size(1) == Hkv && view.v.size(3) == D, "need observer shapes");
  // The values per query head and their residual-space images, once per attention call: the
  // explicit path shows every block of query rows the same v tensor (held here, so no other
  // tensor can take its place; an in-place change would bump its version).
  if (!values_of_.defined() || !values_of_.is_same(view.v) ||
      values_version_ != view.v._version() || values_layer_ != view.layer) {
    CSA_PROFILE_SCOPE("calibrate/need_curves/values");
    at::Tensor v = view.v.to(at::kCPU, at::kFloat);  // [B, Hkv, S, D]
    at::Tensor vh = v.unsqueeze(2).expand({B, Hkv, Gq, S, D}).reshape({B, H, S, D});
    vr_ = at::matmul(vh, res_map_[static_cast<size_t>(view.layer)].transpose(1, 2))
              .contiguous();  // [B, H, S, D]: R_h v_j for every key
    vh_ = vh.contiguous();
    values_of_ = view.v;
    values_version_ = view.v._version();
    values_layer_ = view.layer;
  }
  const at::Tensor& vh = vh_;
  const at::Tensor& vr = vr_;
  const float* pp = probs.data_ptr<float>();
  const float* vp = vh.data_ptr<float>();
  const float* vrp = vr.data_ptr<float>();

  const auto NB = static_cast<int64_t>(bands_.size()), G = static_cast<int64_t>(grid_.size());

  const size_t L = static_cast<size_t>(view.layer);
  // One task per (sequence, KV group), each with its own sums, merged in task order afterwards:
  // the result does not depend on the thread count or scheduling (byte-identical reruns).
  struct Sums {
    std::vector<double> rows, mass, rel, res, uni, p_keys, p_rel;
    std::vector<uint32_t> hist;
  };
  const auto P = static_cast<int64_t>(masses_.size());
  const auto cells = static_cast<size_t>(H * NB);
  std::vector<Sums> sums(static_cast<size_t>(B * Hkv));
  at::parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
    RowNeed need;
    std::vector<uint64_t> keys;
    std::vector<int32_t> min_seg;
    std::vector<int64_t> seg_count;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t g = task % Hkv, b = task / Hkv;
      Sums& t = sums[static_cast<size_t>(task)];
      t.rows.assign(cells, 0);
      t.mass.assign(cells * G, 0);
      t.rel.assign(cells * G, 0);
      t.res.assign(cells * G, 0);
      t.uni.assign(static_cast<size_t>(NB * G), 0);
      t.hist.assign(cells * G * kHistBins, 0);
      t.p_keys.assign(cells * P, 0);
      t.p_rel.assign(cells * P, 0);
      for (int64_t r = 0; r < Tq; ++r) {
        const int64_t pos = view.q_pos0 + r, n = std::min(S, pos + 1);
        if (!sampled(pos)) continue;
        const int64_t band = band_of(pos);
        min_seg.assign(static_cast<size_t>(n), static_cast<int32_t>(G));
        for (int64_t gi = 0; gi < Gq; ++gi) {
          const int64_t h = g * Gq + gi;
          const int64_t bh = b * H + h;
          row_need(pp + (bh * Tq + r) * S, n, vp + bh * S * D, vrp + bh * S * D, D, grid_, masses_,
                   need, keys);
          const size_t cell = static_cast<size_t>(h * NB + band);
          t.rows[cell] += 1;
          for (int64_t k = 0; k < G; ++k) {
            const size_t at = cell * static_cast<size_t>(G) + static_cast<size_t>(k);
            const double rel = need.rel_err[static_cast<size_t>(k)];
            t.mass[at] += need.mass_out[static_cast<size_t>(k)];
            t.rel[at] += rel;
            t.res[at] += need.res_err[static_cast<size_t>(k)];
            ++t.hist[at * kHistBins + static_cast<size_t>(hist_bin(rel, kHistBins))];
          }
          for (int64_t q = 0; q < P; ++q) {
            const size_t at = cell * static_cast<size_t>(P) + static_cast<size_t>(q);
            t.p_keys[at] += static_cast<double>(need.p_keys[static_cast<size_t>(q)]);
            t.p_rel[at] += need.p_rel_err[static_cast<size_t>(q)];
          }
          for (int64_t j = 0; j < n; ++j)
            min_seg[static_cast<size_t>(j)] =
                std::min(min_seg[static_cast<size_t>(j)], need.seg[static_cast<size_t>(j)]);
        }
        // KV-side union at every grid point: keys some head of the group keeps.
        seg_count.assign(static_cast<size_t>(G + 1), 0);
        for (int32_t sg : min_seg) ++seg_count[static_cast<size_t>(sg)];
        double cum = 0;
        for (int64_t k = 0; k < G; ++k) {
          cum += static_cast<double>(seg_count[static_cast<size_t>(k)]);
          const bool all = grid_[static_cast<size_t>(k)] >= n;
          t.uni[static_cast<size_t>(band * G + k)] += all ? static_cast<double>(n) : cum;
        }
      }
    }
  });
  const size_t base = L * cells;
  for (int64_t task = 0; task < B * Hkv; ++task) {
    const Sums& t = sums[static_cast<size_t>(task)];
    const int64_t g = task % Hkv;
    for (size_t i = 0; i < cells; ++i) rows_[base + i] += t.rows[i];
    for (size_t i = 0; i < cells * static_cast<size_t>(G); ++i) {
      mass_[base * static_cast<size_t>(G) + i] += t.mass[i];
      rel_[base * static_cast<size_t>(G) + i] += t.rel[i];
      res_[base * static_cast<size_t>(G) + i] += t.res[i];
    }
    for (size_t i = 0; i < t.hist.size(); ++i)
      hist_[base * static_cast<size_t>(G) * kHistBins + i] += t.hist[i];
    for (size_t i = 0; i < cells * static_cast<size_t>(P); ++i) {
      p_keys_[base * static_cast<size_t>(P) + i] += t.p_keys[i];
      p_rel_[base * static_cast<size_t>(P) + i] += t.p_rel[i];
    }
    const size_t kv_base =
        (L * static_cast<size_t>(Hkv) + static_cast<size_t>(g)) * static_cast<size_t>(NB * G);
    for (size_t i = 0; i < t.uni.size(); ++i) union_[kv_base + i] += t.uni[i];
  }
}

NeedCurves NeedObserver::result() const {
  NeedCurves c;
  c.n_layer = n_layer_;
  c.n_head = n_head_;
  c.n_head_kv = n_head_kv_;
  c.ctx = ctx_;
  c.grid = grid_;
  c.band_start = bands_;
  const auto NB = static_cast<int64_t>(bands_.size()), G = static_cast<int64_t>(grid_.size());
  c.rows = rows_;
  c.mass_out = mass_;
  c.rel_err = rel_;
  c.res_err = res_;
  c.rel_err_p95.assign(rel_.size(), 0.0);
  c.kv_union = union_;
  c.p_grid = masses_;
  c.p_keys = p_keys_;
  c.p_rel_err = p_rel_;
  for (int64_t l = 0; l < n_layer_; ++l) {
    const auto L = static_cast<size_t>(l);
    c.residual_ms.push_back(resid_rows_[L] > 0 ? resid_sum_[L] / resid_rows_[L] : 0.0);
  }
  const int64_t Gq = n_head_ / n_head_kv_;
  for (int64_t l = 0; l < n_layer_; ++l)
    for (int64_t h = 0; h < n_head_; ++h)
      for (int64_t b = 0; b < NB; ++b) {
        const double n = rows_[static_cast<size_t>((l * n_head_ + h) * NB + b)];
        for (int64_t g = 0; g < G; ++g) {
          const size_t at = c.at(l, h, b, g);
          if (n > 0) {
            c.mass_out[at] /= n;
            c.rel_err[at] /= n;
            c.res_err[at] /= n;
            c.rel_err_p95[at] = hist_quantile(hist_.data() + at * kHistBins, kHistBins, 0.95);
          }
        }
        for (int64_t q = 0; q < c.n_p(); ++q)
          if (n > 0) {
            c.p_keys[c.at_p(l, h, b, q)] /= n;
            c.p_rel_err[c.at_p(l, h, b, q)] /= n;
          }
      }
  for (int64_t l = 0; l < n_layer_; ++l)
    for (int64_t kv = 0; kv < n_head_kv_; ++kv)
      for (int64_t b = 0; b < NB; ++b) {
        // Rows of the group: those of its first query head.
        const double n = rows_[static_cast<size_t>((l * n_head_ + kv * Gq) * NB + b)];
        for (int64_t g = 0; g < G; ++g)
          if (n > 0) c.kv_union[c.at_kv(l, kv, b, g)] /= n;
      }
  return c;
}

namespace {

// Rounds to 5 significant digits: the curves are means of noisy samples, and the policy file
// stays small.
double tidy(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  const double scale = std::pow(10.0, 4 - std::floor(std::log10(std::abs(x))));
  return std::round(x * scale) / scale;
}

// A flat row-major array as nested JSON arrays of the given dims.
Json nested(const std::vector<double>& flat, const std::vector<int64_t>& dims, size_t level = 0,
            size_t offset = 0) {
  Json out = Json::array();
  size_t stride = 1;
  for (size_t i = level + 1; i < dims.size(); ++i) stride *= static_cast<size_t>(dims[i]);
  for (int64_t i = 0; i < dims[level]; ++i) {
    const size_t at = offset + static_cast<size_t>(i) * stride;
    if (level + 1 == dims.size())
      out.push_back(tidy(flat[at]));
    else
      out.push_back(nested(flat, dims, level + 1, at));
  }
  return out;
}

// Nested JSON arrays of exactly `dims` holding finite non-negative numbers, flattened.
std::vector<double> flatten(const JsonReader& r, const std::string& key,
                            const std::vector<int64_t>& dims) {
  if (!r.has(key)) r.fail(key, "is missing");
  std::string shape;
  for (int64_t d : dims) shape += "[" + std::to_string(d) + "]";
  std::vector<double> out;
  std::function<void(const Json&, size_t)> walk = [&](const Json& j, size_t level) {
    if (level == dims.size()) {
      if (!j.is_number() || !std::isfinite(j.get<double>()) || j.get<double>() < 0)
        r.fail(key, "must be a " + shape + " array of finite non-negative numbers");
      out.push_back(j.get<double>());
      return;
    }
    if (!j.is_array() || static_cast<int64_t>(j.size()) != dims[level])
      r.fail(key, "must be a " + shape + " array of finite non-negative numbers");
    for (const auto& x : j) walk(x, level + 1);
  };
  walk(r.raw().at(key), 0);
  return out;
}

}  // namespace

Json NeedCurves::to_json() const {
  const int64_t NB = n_bands(), G = n_grid();
  const std::vector<int64_t> q_dims = {n_layer, n_head, NB, G};
  Json j = {{"ctx", ctx},
            {"grid", grid},
            {"band_start", band_start},
            {"rows", nested(rows, {n_layer, n_head, NB})},
            {"description",
             "[layer][head][band][budget]: mass_out = attention mass outside the top-k; rel_err = "
             "||o_k - o|| / ||o|| (mean, p95); res_err = mean ||W_o,h (o_k - o)||^2; kv_union "
             "[layer][kv_head][band][budget] = mean keys in the union of the group's top-k sets"},
            {"mass_out", nested(mass_out, q_dims)},
            {"rel_err", nested(rel_err, q_dims)},
            {"rel_err_p95", nested(rel_err_p95, q_dims)},
            {"res_err", nested(res_err, q_dims)},
            {"kv_union", nested(kv_union, {n_layer, n_head_kv, NB, G})},
            {"residual_ms", nested(residual_ms, {n_layer})}};
  if (has_top_p()) {
    const std::vector<int64_t> p_dims = {n_layer, n_head, NB, n_p()};
    j["p_grid"] = p_grid;
    j["p_keys"] = nested(p_keys, p_dims);
    j["p_rel_err"] = nested(p_rel_err, p_dims);
    j["p_description"] =
        "[layer][head][band][mass]: under top-p at mass p_grid[i] (the fewest keys reaching it), "
        "p_keys = mean keys a query keeps, p_rel_err = mean ||o_p - o|| / ||o||";
  }
  return j;
}

NeedCurves NeedCurves::from_json(const Json& j, const std::string& origin, int64_t L, int64_t H,
                                 int64_t Hkv) {
  if (!j.is_object()) throw FormatError(origin + ": need_curves must be an object");
  JsonReader r(j, origin, "need_curves.");
  NeedCurves c;
  c.n_layer = L;
  c.n_head = H;
  c.n_head_kv = Hkv;
  c.ctx = r.get_int("ctx");
  if (c.ctx < 2) r.fail("ctx", "must be >= 2");
  auto ints = [&](const std::string& key) {
    if (!r.has(key) || !j.at(key).is_array() || j.at(key).empty())
      r.fail(key, "must be a non-empty array of increasing integers");
    std::vector<int64_t> v;
    for (const auto& x : j.at(key)) {
      if (!x.is_number_integer() || (!v.empty() && x.get<int64_t>() <= v.back()))
        r.fail(key, "must be a non-empty array of increasing integers");
      v.push_back(x.get<int64_t>());
    }
    return v;
  };
  c.grid = ints("grid");
  c.band_start = ints("band_start");
  if (c.grid.front() < 1) r.fail("grid", "budgets must be >= 1");
  if (c.band_start.front() != 0) r.fail("band_start", "must start at 0");
  const int64_t NB = c.n_bands(), G = c.n_grid();
  c.rows = flatten(r, "rows", {L, H, NB});
  c.mass_out = flatten(r, "mass_out", {L, H, NB, G});
  c.rel_err = flatten(r, "rel_err", {L, H, NB, G});
  c.rel_err_p95 = flatten(r, "rel_err_p95", {L, H, NB, G});
  c.res_err = flatten(r, "res_err", {L, H, NB, G});
  c.kv_union = flatten(r, "kv_union", {L, Hkv, NB, G});
  c.residual_ms = flatten(r, "residual_ms", {L});
  // Top-p curves: all three fields or none (policies calibrated before them).
  if (r.has("p_grid")) {
    const Json& pg = j.at("p_grid");
    if (!pg.is_array() || pg.empty())
      r.fail("p_grid", "must be a non-empty array of increasing masses in (0, 1)");
    for (const auto& x : pg) {
      if (!x.is_number() || !(x.get<double>() > 0 && x.get<double>() < 1) ||
          (!c.p_grid.empty() && !(x.get<double>() > c.p_grid.back())))
        r.fail("p_grid", "must be a non-empty array of increasing masses in (0, 1)");
      c.p_grid.push_back(x.get<double>());
    }
    c.p_keys = flatten(r, "p_keys", {L, H, NB, c.n_p()});
    c.p_rel_err = flatten(r, "p_rel_err", {L, H, NB, c.n_p()});
  } else if (r.has("p_keys") || r.has("p_rel_err")) {
    r.fail("p_grid", "is missing (p_keys and p_rel_err need it)");
  }
  return c;
}

}  // namespace csa
