#include "csa/attention/select.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace csa {

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CSA_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define CSA_CLONES
#endif

// Order keys: unsigned integers in the order of the floats (no NaN), -0 and +0 one key since they
// compare equal, so a selection over keys is a selection under float comparison.
uint32_t order_key(float f) {
  f += 0.0f;  // -0 -> +0
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

float from_order_key(uint32_t key) {
  const uint32_t u = (key & 0x80000000u) != 0 ? (key & 0x7fffffffu) : ~key;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The largest key K that at least k of keys[0..n) reach (1 <= k <= n), i.e. the k-th largest key,
// bit by bit from the top: up to 32 counting passes (vectorised), no branch on the data. Once
// exactly k keys reach K, the answer is the smallest of them (one more pass). Keys known to lie
// in [lo, hi] share the bits above the highest bit where lo and hi differ, and so does the
// answer: the passes start below them.
CSA_CLONES uint32_t kth_largest_key(const uint32_t* keys, int64_t n, int64_t k, uint32_t lo = 0,
                                    uint32_t hi = 0xffffffffu) {
  if (lo == hi) return lo;
  const int top = 31 - __builtin_clz(lo ^ hi);
  uint32_t K = top == 31 ? 0 : lo & ~((2u << top) - 1);  // the shared bits
  for (int bit = top; bit >= 0; --bit) {
    const uint32_t c = K | (1u << bit);
    uint32_t count = 0;
    for (int64_t a = 0; a < n; ++a) count += keys[a] >= c;
    if (count < k) continue;
    K = c;
    if (count == k) {
      // The least key >= K as K + min(key - K): keys below K wrap past every key above it, and
      // the plain unsigned minimum vectorises.
      uint32_t least = 0xffffffffu;
      for (int64_t a = 0; a < n; ++a) least = std::min(least, keys[a] - K);
      return K + least;
    }
  }
  return K;
}

// The k-th largest of x[0..n) (1 <= k <= n), all of them in [lo, hi] (as floats compare): several
// times faster than nth_element on rows of hundreds to thousands of scores.
float kth_largest_radix(const float* x, int64_t n, int64_t k, std::vector<uint32_t>& keys,
                        float lo = -std::numeric_limits<float>::infinity(),
                        float hi = std::numeric_limits<float>::infinity()) {
  keys.resize(static_cast<size_t>(n));
  for (int64_t a = 0; a < n; ++a) keys[static_cast<size_t>(a)] = order_key(x[a]);
  return from_order_key(kth_largest_key(keys.data(), n, k, order_key(lo), order_key(hi)));
}

std::vector<uint32_t>& key_scratch() {
  thread_local std::vector<uint32_t> keys;
  return keys;
}

// ix[a] for the a < c with val[a] >= t, in order, into out (16 entries of slack); returns how
// many. Branch-free; AVX-512 compresses 16 at a time.
int64_t indices_at_least_scalar(const float* val, const int32_t* ix, int64_t c, float t,
                                int32_t* out) {
  int64_t o = 0;
  for (int64_t a = 0; a < c; ++a) {
    out[o] = ix[a];
    o += val[a] >= t;
  }
  return o;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) int64_t indices_at_least_avx512(const float* val,
                                                                   const int32_t* ix, int64_t c,
                                                                   float t, int32_t* out) {
  const __m512 tv = _mm512_set1_ps(t);
  int64_t o = 0, a = 0;
  for (; a + 16 <= c; a += 16) {
    const __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(val + a), tv, _CMP_GE_OQ);
    _mm512_storeu_si512(out + o, _mm512_maskz_compress_epi32(m, _mm512_loadu_si512(ix + a)));
    o += __builtin_popcount(m);
  }
  return o + indices_at_least_scalar(val + a, ix + a, c - a, t, out + o);
}
#endif

int64_t indices_at_least(const float* val, const int32_t* ix, int64_t c, float t, int32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512) return indices_at_least_avx512(val, ix, c, t, out);
#endif
  return indices_at_least_scalar(val, ix, c, t, out);
}

// The selection given the threshold thr = the k-th largest of the candidates val[0..c) (keys
// ix[0..c), ascending): every value above thr, then the most recent values equal to it, as key
// indices in descending order. When every value equal to thr stays (the usual case: one such
// value), the candidates >= thr are compressed out and reversed; otherwise one branch-free walk
// from the most recent candidate breaks the ties.
void take_top(const float* val, const int32_t* ix, int64_t c, int64_t k, float thr,
              std::vector<int32_t>& idx) {
  int64_t greater = 0, equal = 0;
  for (int64_t a = 0; a < c; ++a) {
    greater += val[a] > thr;
    equal += val[a] == thr;
  }
  if (greater + equal == k) {
    thread_local std::vector<int32_t> kept;
    kept.resize(static_cast<size_t>(c + 16));
    const int64_t m = indices_at_least(val, ix, c, thr, kept.data());
    idx.resize(static_cast<size_t>(m));
    std::reverse_copy(kept.begin(), kept.begin() + m, idx.begin());
    return;
  }
  int64_t equal_left = k - greater, o = 0;  // equal values that stay: the most recent ones
  idx.resize(static_cast<size_t>(k + 1));
  for (int64_t a = c - 1; a >= 0; --a) {
    const bool eq = val[a] == thr;
    idx[static_cast<size_t>(o)] = ix[a];
    o += (val[a] > thr) | (eq & (equal_left > 0));
    equal_left -= eq;
  }
  idx.resize(static_cast<size_t>(k));
}

// Rows at least this long with budgets up to 1/kMaxSampledFraction of them select through a
// sampled threshold (top_k_indices); shorter rows or larger budgets select over the whole row.
constexpr int64_t kMinSampledRow = 256;
constexpr int64_t kSample = 128;
constexpr int64_t kMaxSampledFraction = 4;

// Appends the values s[j] >= t of s[0..n) and their indices j + j0, in key order, to val and ix;
// returns how many. Branch-free: writes always, advances when kept.
int64_t gather_at_least_scalar(const float* s, int64_t n, int64_t j0, float t, float* val,
                               int32_t* ix) {
  int64_t c = 0;
  for (int64_t j = 0; j < n; ++j) {
    val[c] = s[j];
    ix[c] = static_cast<int32_t>(j0 + j);
    c += s[j] >= t;
  }
  return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
// 16 compares into a mask, the kept lanes compressed to the front of a register and stored whole
// (val and ix need 16 entries of slack): no branch per value.
__attribute__((target("avx512f"))) int64_t gather_at_least_avx512(const float* s, int64_t n,
                                                                  float t, float* val,
                                                                  int32_t* ix) {
  const __m512 tv = _mm512_set1_ps(t);
  __m512i j16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t c = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 x = _mm512_loadu_ps(s + j);
    const __mmask16 m = _mm512_cmp_ps_mask(x, tv, _CMP_GE_OQ);
    _mm512_storeu_ps(val + c, _mm512_maskz_compress_ps(m, x));
    _mm512_storeu_si512(ix + c, _mm512_maskz_compress_epi32(m, j16));
    c += __builtin_popcount(m);
    j16 = _mm512_add_epi32(j16, _mm512_set1_epi32(16));
  }
  return c + gather_at_least_scalar(s + j, n - j, j, t, val + c, ix + c);
}
#endif

int64_t gather_at_least(const float* s, int64_t n, float t, float* val, int32_t* ix) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512) return gather_at_least_avx512(s, n, t, val, ix);
#endif
  return gather_at_least_scalar(s, n, 0, t, val, ix);
}

// Appends the values lo <= s[j] <= hi of s[0..n) to val and returns how many; *greater = how
// many are above hi. Branch-free.
int64_t gather_between_scalar(const float* s, int64_t n, float lo, float hi, float* val,
                              int64_t* greater) {
  int64_t c = 0, g = 0;
  for (int64_t j = 0; j < n; ++j) {
    val[c] = s[j];
    c += (s[j] >= lo) & (s[j] <= hi);
    g += s[j] > hi;
  }
  *greater += g;
  return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) int64_t gather_between_avx512(const float* s, int64_t n,
                                                                 float lo, float hi, float* val,
                                                                 int64_t* greater) {
  const __m512 lov = _mm512_set1_ps(lo), hiv = _mm512_set1_ps(hi);
  int64_t c = 0, g = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 x = _mm512_loadu_ps(s + j);
    const __mmask16 in =
        _mm512_cmp_ps_mask(x, lov, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, hiv, _CMP_LE_OQ);
    _mm512_storeu_ps(val + c, _mm512_maskz_compress_ps(in, x));
    c += __builtin_popcount(in);
    g += __builtin_popcount(_mm512_cmp_ps_mask(x, hiv, _CMP_GT_OQ));
  }
  *greater = g;
  return c + gather_between_scalar(s + j, n - j, lo, hi, val + c, greater);
}
#endif

int64_t gather_between(const float* s, int64_t n, float lo, float hi, float* val,
                       int64_t* greater) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512) return gather_between_avx512(s, n, lo, hi, val, greater);
#endif
  *greater = 0;
  return gather_between_scalar(s, n, lo, hi, val, greater);
}

// The k-th largest of s[0..n) (1 <= k <= n). Rows of >= kMinSampledRow values first bracket it
// between two values lo <= hi of a systematic sample, at sample ranks about 2.5 standard
// deviations either side of where it is expected, and gather the values in [lo, hi] in one pass,
// counting those above hi. When fewer than k are above hi and at least k reach lo, the k-th
// largest of the row is the (k - above)-th largest of the gathered values (every value between
// the two brackets is one of them), so it is exact over far fewer values; otherwise (an unlucky
// sample) the whole row.
float kth_largest_row(const float* s, int64_t n, int64_t k, std::vector<float>& scratch) {
  std::vector<uint32_t>& keys = key_scratch();
  if (n >= kMinSampledRow) {
    constexpr int64_t kSlack = 16;  // gather_between stores whole vectors
    const int64_t stride = n / kSample;
    scratch.resize(static_cast<size_t>(kSample + n + kSlack));
    float* sample = scratch.data();
    float* cand = sample + kSample;
    for (int64_t i = 0; i < kSample; ++i) sample[i] = s[i * stride];
    const double expect = std::min<double>(kSample, static_cast<double>(k) / stride);
    const double margin = 2.5 * std::sqrt(expect * (1.0 - expect / kSample)) + 2;
    const auto r_hi = static_cast<int64_t>(std::floor(expect - margin));
    const auto r_lo = static_cast<int64_t>(std::ceil(expect + margin));
    constexpr float kInf = std::numeric_limits<float>::infinity();
    const float hi = r_hi >= 1 ? kth_largest_radix(sample, kSample, r_hi, keys) : kInf;
    const float lo = r_lo <= kSample ? kth_largest_radix(sample, kSample, r_lo, keys) : -kInf;
    int64_t above = 0;
    const int64_t c = gather_between(s, n, lo, hi, cand, &above);
    if (above < k && above + c >= k) return kth_largest_radix(cand, c, k - above, keys, lo, hi);
  }
  return kth_largest_radix(s, n, k, keys);
}

}  // namespace

float kth_largest(const float* x, int64_t n, int64_t k, std::vector<float>& scratch) {
  return kth_largest_row(x, n, k, scratch);
}

// The k-th largest value thr of the row, then every score above it and the most recent ones
// equal to it. For long rows and small budgets thr comes from candidates: t = the value of a
// systematic sample of kSample scores that about 2k scores are expected to reach, and one pass
// gathers every score >= t. When at least k did, the k-th largest of the row is the k-th largest
// of the candidates (every score at or above it is one), so thr, the count of greater scores and
// the tie rule are exactly those of the whole row, over far fewer values. Too few candidates (an
// unlucky sample) retry from a lower sample rank, then take the whole row.
void top_k_indices(const float* s, int64_t n, int64_t k, std::vector<float>& scratch,
                   std::vector<int32_t>& idx) {
  thread_local std::vector<int32_t> cand_idx;
  std::vector<uint32_t>& keys = key_scratch();
  if (n >= kMinSampledRow && k * kMaxSampledFraction <= n) {
    constexpr int64_t kSlack = 16;  // gather_at_least stores whole vectors
    const int64_t stride = n / kSample;
    scratch.resize(static_cast<size_t>(kSample + n + kSlack));
    cand_idx.resize(static_cast<size_t>(n + kSlack));
    float* sample = scratch.data();
    float* cand = sample + kSample;  // [n] candidate values in key order
    for (int64_t i = 0; i < kSample; ++i) sample[i] = s[i * stride];
    // The sample rank whose value ~2k scores reach: k / stride sample values are expected in
    // the top k, and their count has a standard deviation near its square root.
    const auto expect = static_cast<double>(k) / static_cast<double>(stride);
    for (auto r = static_cast<int64_t>(expect + 1.5 * std::sqrt(expect) + 2); r <= kSample;
         r *= 2) {
      const float t = kth_largest_radix(sample, kSample, r, keys);
      const int64_t c = gather_at_least(s, n, t, cand, cand_idx.data());
      if (c >= k) {
        take_top(cand, cand_idx.data(), c, k, kth_largest_radix(cand, c, k, keys), idx);
        return;
      }
    }
  }
  cand_idx.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) cand_idx[static_cast<size_t>(j)] = static_cast<int32_t>(j);
  take_top(s, cand_idx.data(), n, k, kth_largest_radix(s, n, k, keys), idx);
}

void mask_except(float* s, int64_t n, const std::vector<int32_t>& idx,
                 std::vector<float>& scratch) {
  scratch.resize(idx.size());
  for (size_t i = 0; i < idx.size(); ++i) scratch[i] = s[idx[i]];
  std::fill(s, s + n, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < idx.size(); ++i) s[idx[i]] = scratch[i];
}

namespace {

// s[j] < t -> -inf for j < n; returns how many of s[0..n) are greater than t and equal to it.
CSA_CLONES std::pair<int64_t, int64_t> mask_below(float* s, int64_t n, float t) {
  int64_t greater = 0, equal = 0;
  for (int64_t j = 0; j < n; ++j) {
    greater += s[j] > t;
    equal += s[j] == t;
    s[j] = s[j] < t ? -std::numeric_limits<float>::infinity() : s[j];
  }
  return {greater, equal};
}

}  // namespace

// The rule of take_top without the list: thr = the k-th largest, everything below it dropped,
// and of the values equal to it the earliest dropped until k remain (rarely more than one value
// equals thr, so the walk is usually empty).
void keep_top_k(float* s, int64_t n, int64_t k, std::vector<float>& scratch) {
  const float thr = kth_largest_row(s, n, k, scratch);
  const auto [greater, equal] = mask_below(s, n, thr);
  int64_t drop = greater + equal - k;  // equal values that go: the earliest ones
  for (int64_t j = 0; drop > 0; ++j)
    if (s[j] == thr) {
      s[j] = -std::numeric_limits<float>::infinity();
      --drop;
    }
}

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors below never cross a call
typedef uint32_t U8 __attribute__((vector_size(32)));
typedef float F8 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
typedef int64_t L8 __attribute__((vector_size(64)));

// The sum (in double, 8 lanes) and count of the values whose key lies in [lo, hi].
CSA_CLONES double mass_between(const uint32_t* keys, const float* val, int64_t n, uint32_t lo,
                               uint32_t hi, int64_t* count) {
  D8 acc[2] = {};
  L8 cnt{};
  int64_t a = 0;
  for (; a + 16 <= n; a += 16)
    for (int h = 0; h < 2; ++h) {  // two accumulators: the adds' latency, not their rate, binds
      U8 k;
      F8 v;
      std::memcpy(&k, keys + a + 8 * h, sizeof k);
      std::memcpy(&v, val + a + 8 * h, sizeof v);
      const L8 in = __builtin_convertvector((k >= lo) & (k <= hi), L8);  // -1 or 0
      acc[h] += in != 0 ? __builtin_convertvector(v, D8) : D8{};
      cnt -= in;
    }
  double sum = 0;
  int64_t c = 0;
  for (int u = 0; u < 8; ++u) {
    sum += acc[0][u] + acc[1][u];
    c += cnt[u];
  }
  for (; a < n; ++a)
    if (keys[a] >= lo && keys[a] <= hi) {
      sum += val[a];
      ++c;
    }
  *count = c;
  return sum;
}
#pragma GCC diagnostic pop

}  // namespace

// The value t where the mass of the largest values crosses `mass` (total(> t) < mass <=
// total(>= t)), bit by bit over the order keys: per bit, the mass of the current key range's
// upper half decides which half holds t (the upper half's mass joins `above` when it is not
// enough). The candidates are narrowed to the current range at four bits (the first in the
// exponent), so later passes read only the values near t. Then the count is those above t and, of
// the values equal to t, as many as the remaining mass needs. Every sum is of floats >= 2^-29 of
// the largest (or decides nothing near `mass`), which double holds exactly, so the order of
// summation does not change the count.
int64_t count_for_mass(const float* p, int64_t n, double mass, std::vector<float>& scratch) {
  if (mass <= 0 || n == 0) return 0;
  std::vector<uint32_t>& keys = key_scratch();
  keys.resize(static_cast<size_t>(n));
  scratch.assign(p, p + n);
  for (int64_t a = 0; a < n; ++a) keys[static_cast<size_t>(a)] = order_key(p[a]);
  int64_t m = n;     // candidates: keys[0..m), scratch[0..m)
  uint32_t K = 0;    // the bits of t's key decided so far
  double above = 0;  // mass of the values above the current range
  int64_t above_count = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t c = K | (1u << bit), hi = K | ((2u << bit) - 1);  // bit 31: hi wraps to ~0
    int64_t cu = 0;
    const double su = mass_between(keys.data(), scratch.data(), m, c, hi, &cu);
    if (above + su >= mass) {
      K = c;
    } else {
      above += su;
      above_count += cu;
    }
    if (bit == 27 || bit == 23 || bit == 15 || bit == 7) {  // keep the range [K, K + 2^bit)
      int64_t o = 0;
      for (int64_t a = 0; a < m; ++a) {
        const uint32_t key = keys[static_cast<size_t>(a)];
        keys[static_cast<size_t>(o)] = key;
        scratch[static_cast<size_t>(o)] = scratch[static_cast<size_t>(a)];
        o += (key >> bit) == (K >> bit);
      }
      m = o;
    }
  }
  int64_t n_eq = 0;
  mass_between(keys.data(), scratch.data(), m, K, K, &n_eq);
  const float t = from_order_key(K);
  const double need = mass - above;
  if (n_eq == 0 || static_cast<double>(t) * static_cast<double>(n_eq) < need) return n;
  if (t <= 0) return above_count;  // cannot reach: zeros add nothing
  const auto k = static_cast<int64_t>(std::ceil(need / static_cast<double>(t) - 1e-12));
  return above_count + std::max<int64_t>(1, std::min(k, n_eq));
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

namespace {

// How many keys a score rule keeps of the row s[0..n): the top-k budget, top-p's count for its
// mass; n or more for the whole row (dense), -1 for the pattern rules (no count by score).
int64_t score_rule_keys(const LayerRule& rule, int64_t h, int64_t pos, const float* s, int64_t n,
                        SelectScratch& scratch) {
  switch (rule.kind) {
    case SparsityKind::kDense:
      return n;
    case SparsityKind::kTopK:
      return rule.top_k.budget(h, pos);
    case SparsityKind::kTopP: {
      const double p = rule.p[static_cast<size_t>(h)];
      if (p >= 1.0) return n;
      scratch.probs.resize(static_cast<size_t>(n));
      softmax_row(s, scratch.probs.data(), n);
      return std::max<int64_t>(1, count_for_mass(scratch.probs.data(), n, p, scratch.values));
    }
    case SparsityKind::kWindow:
    case SparsityKind::kStrided:
      return -1;
  }
  return n;
}

// The kept keys of a row that keeps fewer than n: the k best by score (k >= 1), or the pattern's
// keys (k = -1; returns true when those are all n).
bool list_kept(const LayerRule& rule, int64_t pos, const float* s, int64_t n, int64_t k,
               SelectScratch& scratch, std::vector<int32_t>& idx) {
  if (k >= 1) {
    top_k_indices(s, n, k, scratch.values, idx);
    return false;
  }
  for (int64_t j = n - 1; j >= 0; --j)
    if (rule.pattern_keeps(pos, j)) idx.push_back(static_cast<int32_t>(j));
  if (static_cast<int64_t>(idx.size()) == n) {
    idx.clear();
    return true;
  }
  return false;
}

}  // namespace

bool select_row(const LayerRule& rule, int64_t h, int64_t pos, const float* s, int64_t n,
                SelectScratch& scratch, std::vector<int32_t>& idx) {
  idx.clear();
  const int64_t k = score_rule_keys(rule, h, pos, s, n, scratch);
  if (k >= n) return true;
  return list_kept(rule, pos, s, n, k, scratch, idx);
}

RowSelection select_row_in_place(const LayerRule& rule, int64_t h, int64_t pos, float* s, int64_t n,
                                 int64_t mask_ratio, SelectScratch& scratch,
                                 std::vector<int32_t>& idx) {
  idx.clear();
  const int64_t k = score_rule_keys(rule, h, pos, s, n, scratch);
  if (k >= n) return {RowKeep::kAll, n};
  if (k >= 1 && k * mask_ratio >= n) {
    keep_top_k(s, n, k, scratch.values);
    return {RowKeep::kMasked, k};
  }
  if (list_kept(rule, pos, s, n, k, scratch, idx)) return {RowKeep::kAll, n};
  return {RowKeep::kListed, static_cast<int64_t>(idx.size())};
}

}  // namespace csa
