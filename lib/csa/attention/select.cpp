#include "csa/attention/select.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace csa {

float kth_largest(const float* x, int64_t n, int64_t k, std::vector<float>& scratch) {
  scratch.assign(x, x + n);
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(),
                   std::greater<float>());
  return scratch[static_cast<size_t>(k - 1)];
}

void top_k_indices(const float* s, int64_t n, int64_t k, std::vector<float>& scratch,
                   std::vector<int32_t>& idx) {
  const float thr = kth_largest(s, n, k, scratch);
  int64_t greater = 0;
  for (int64_t j = 0; j < n; ++j) greater += s[j] > thr;
  int64_t equal_left = k - greater;  // keys equal to the threshold that stay: the most recent ones
  idx.clear();
  for (int64_t j = n - 1; j >= 0; --j)
    if (s[j] > thr || (s[j] == thr && equal_left-- > 0)) idx.push_back(static_cast<int32_t>(j));
}

void mask_except(float* s, int64_t n, const std::vector<int32_t>& idx,
                 std::vector<float>& scratch) {
  scratch.resize(idx.size());
  for (size_t i = 0; i < idx.size(); ++i) scratch[i] = s[idx[i]];
  std::fill(s, s + n, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < idx.size(); ++i) s[idx[i]] = scratch[i];
}

void keep_top_k(float* s, int64_t n, int64_t k, std::vector<float>& scratch) {
  thread_local std::vector<int32_t> idx;  // per-row hot path: no allocation per call
  top_k_indices(s, n, k, scratch, idx);
  mask_except(s, n, idx, scratch);
}

int64_t count_for_mass(const float* p, int64_t n, double mass, std::vector<float>& scratch) {
  scratch.assign(p, p + n);
  double need = mass;
  int64_t taken = 0;
  size_t lo = 0, hi = scratch.size();  // the undecided range
  // Invariant: every value outside [lo, hi) that is above the range is taken (counted in
  // `taken`, its mass removed from `need`); values below it are not needed.
  while (lo < hi) {
    if (need <= 0) return taken;
    // Median-of-three pivot from the range.
    float a = scratch[lo], b = scratch[lo + (hi - lo) / 2], c = scratch[hi - 1];
    float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    // Three-way partition: [greater | equal | less].
    size_t gt_end = lo, i = lo, lt_begin = hi;
    while (i < lt_begin) {
      if (scratch[i] > pivot) {
        std::swap(scratch[i++], scratch[gt_end++]);
      } else if (scratch[i] < pivot) {
        std::swap(scratch[i], scratch[--lt_begin]);
      } else {
        ++i;
      }
    }
    double gt_mass = 0;
    for (size_t j = lo; j < gt_end; ++j) gt_mass += scratch[j];
    if (gt_mass >= need) {
      hi = gt_end;  // the answer lies among the greater values
      continue;
    }
    need -= gt_mass;
    taken += static_cast<int64_t>(gt_end - lo);
    const size_t n_eq = lt_begin - gt_end;
    const double eq_mass = static_cast<double>(pivot) * static_cast<double>(n_eq);
    if (eq_mass >= need) {
      if (pivot <= 0) return taken;  // cannot reach: zeros add nothing
      int64_t m = static_cast<int64_t>(std::ceil(need / static_cast<double>(pivot) - 1e-12));
      return taken + std::max<int64_t>(1, std::min<int64_t>(m, static_cast<int64_t>(n_eq)));
    }
    need -= eq_mass;
    taken += static_cast<int64_t>(n_eq);
    lo = lt_begin;
  }
  return need <= 0 ? taken : n;
}

void softmax_row(const float* s, float* p, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, s[j]);
  double z = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float e = s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(s[j] - m);
    p[j] = e;
    z += e;
  }
  const auto inv = static_cast<float>(1.0 / z);
  for (int64_t j = 0; j < n; ++j) p[j] *= inv;
}

bool select_row(const LayerRule& rule, int64_t h, int64_t pos, const float* s, int64_t n,
                SelectScratch& scratch, std::vector<int32_t>& idx) {
  idx.clear();
  switch (rule.kind) {
    case SparsityKind::kDense:
      return true;
    case SparsityKind::kTopK: {
      const int64_t k = rule.top_k.budget(h, pos);
      if (k >= n) return true;
      top_k_indices(s, n, k, scratch.values, idx);
      return false;
    }
    case SparsityKind::kTopP: {
      const double p = rule.p[static_cast<size_t>(h)];
      if (p >= 1.0) return true;
      scratch.probs.resize(static_cast<size_t>(n));
      softmax_row(s, scratch.probs.data(), n);
      const int64_t k =
          std::max<int64_t>(1, count_for_mass(scratch.probs.data(), n, p, scratch.values));
      if (k >= n) return true;
      top_k_indices(s, n, k, scratch.values, idx);
      return false;
    }
    case SparsityKind::kWindow:
    case SparsityKind::kStrided: {
      for (int64_t j = n - 1; j >= 0; --j)
        if (rule.pattern_keeps(pos, j)) idx.push_back(static_cast<int32_t>(j));
      if (static_cast<int64_t>(idx.size()) == n) {
        idx.clear();
        return true;
      }
      return false;
    }
  }
  return true;
}

}  // namespace csa
