#include "csa/attention/cpu_kernels.h"

#include <algorithm>
#include <cstring>
#include <limits>

#if defined(CSA_HAVE_CBLAS)
#include <cblas.h>
#endif

// Each marked function is compiled for AVX-512 (Zen 4, Sapphire Rapids), AVX2+FMA and baseline
// x86-64, and the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CSA_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define CSA_CLONES
#endif
#define CSA_INLINE inline __attribute__((always_inline))
// The 64-byte vector helpers below are always inlined: no vector crosses a call, so the ABI note
// GCC gives for them on the baseline clone does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace csa::cpu {
namespace {

// 16 floats: GCC's generic vectors, lowered to zmm, 2 ymm or 4 xmm registers per clone.
typedef float V16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
constexpr int kLanes = 16;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

CSA_INLINE void load(V16& v, const float* p) { std::memcpy(&v, p, sizeof v); }
CSA_INLINE void store(float* p, const V16& v) { std::memcpy(p, &v, sizeof v); }
CSA_INLINE V16 splat(float x) { return V16{} + x; }

// exp(x) for 16 lanes: Cephes expf (range reduction by ln 2 in two parts, a degree-5 polynomial,
// 2^n from the exponent bits). 0 below -87.34 (and for -inf): the softmax inputs are s - max <= 0,
// where that flushes only what float cannot hold as a normal number.
CSA_INLINE void exp16(V16& x) {
  const I16 under = x < splat(-87.3365447f);
  x = x < splat(-87.3365447f) ? splat(-87.3365447f) : x;
  x = x > splat(88.3762626f) ? splat(88.3762626f) : x;
  V16 fx = x * splat(1.44269504088896341f) + splat(0.5f);
  V16 t = __builtin_convertvector(__builtin_convertvector(fx, I16), V16);  // trunc
  t = t > fx ? t - splat(1.0f) : t;                                        // floor
  x = x - t * splat(0.693359375f);
  x = x - t * splat(-2.12194440e-4f);
  const V16 z = x * x;
  V16 y = splat(1.9875691500e-4f);
  y = y * x + splat(1.3981999507e-3f);
  y = y * x + splat(8.3334519073e-3f);
  y = y * x + splat(4.1665795894e-2f);
  y = y * x + splat(1.6666665459e-1f);
  y = y * x + splat(5.0000001201e-1f);
  y = y * z + x + splat(1.0f);
  const I16 e = (__builtin_convertvector(t, I16) + 127) << 23;
  V16 pow2;
  std::memcpy(&pow2, &e, sizeof pow2);
  x = under != 0 ? splat(0.0f) : y * pow2;
}

}  // namespace

void gemm_nt_portable(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const float* a = A + i * lda;
      const float* b = B + j * ldb;
      float acc = 0;
      for (int64_t d = 0; d < K; ++d) acc += a[d] * b[d];
      C[i * ldc + j] = alpha * acc;
    }
}

void gemm_nn_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                      int64_t ldb, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    std::fill(c, c + N, 0.0f);
    for (int64_t k = 0; k < K; ++k) axpy(c, B + k * ldb, A[i * lda + k], N);
  }
}

void gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#if defined(CSA_HAVE_CBLAS)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), 0.0f,
              C, static_cast<int>(ldc));
#else
  gemm_nt_portable(M, N, K, alpha, A, lda, B, ldb, C, ldc);
#endif
}

void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#if defined(CSA_HAVE_CBLAS)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), 1.0f, A, static_cast<int>(lda), B, static_cast<int>(ldb), 0.0f,
              C, static_cast<int>(ldc));
#else
  gemm_nn_portable(M, N, K, A, lda, B, ldb, C, ldc);
#endif
}

bool gemm_uses_blas() {
#if defined(CSA_HAVE_CBLAS)
  return true;
#else
  return false;
#endif
}

CSA_CLONES float max_of(const float* s, int64_t n) {
  V16 m = splat(kNegInf);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    V16 x;
    load(x, s + j);
    m = x > m ? x : m;
  }
  float r = kNegInf;
  for (int u = 0; u < kLanes; ++u) r = std::max(r, m[u]);
  for (; j < n; ++j) r = std::max(r, s[j]);
  return r;
}

CSA_CLONES float exp_shifted(const float* s, float m, float* p, int64_t n) {
  V16 acc{};
  const V16 mv = splat(m);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    V16 x;
    load(x, s + j);
    x = x - mv;
    exp16(x);
    store(p + j, x);
    acc += x;
  }
  if (j < n) {  // the tail through the same vector code, padded with -inf (exp 0)
    float tail[kLanes];
    std::fill(tail, tail + kLanes, kNegInf);
    std::copy(s + j, s + n, tail);
    V16 x;
    load(x, tail);
    x = x - mv;
    exp16(x);
    store(tail, x);
    std::copy(tail, tail + (n - j), p + j);
    acc += x;
  }
  float sum = 0;
  for (int u = 0; u < kLanes; ++u) sum += acc[u];
  return sum;
}

CSA_CLONES float sum_exp_shifted(const float* s, float m, int64_t n) {
  V16 acc{};
  const V16 mv = splat(m);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    V16 x;
    load(x, s + j);
    x = x - mv;
    exp16(x);
    acc += x;
  }
  float sum = 0;
  for (int u = 0; u < kLanes; ++u) sum += acc[u];
  if (j < n) {
    float tail[kLanes];
    sum += exp_shifted(s + j, m, tail, n - j);
  }
  return sum;
}

float exp_approx(float x) {
  float p = 0;
  exp_shifted(&x, 0.0f, &p, 1);
  return p;
}

CSA_CLONES void axpy(float* __restrict out, const float* __restrict v, float w, int64_t n) {
  for (int64_t d = 0; d < n; ++d) out[d] += w * v[d];
}

namespace {

// out[0..16·NV) = Σ_a w[a] · x[row_a · ld + 0..16·NV), accumulated in registers.
template <int NV>
CSA_INLINE void weighted_rows_w(float* out, const float* x, int64_t ld, const int32_t* rows,
                                const float* w, int64_t m) {
  V16 acc[NV];
  for (int u = 0; u < NV; ++u) acc[u] = V16{};
  for (int64_t a = 0; a < m; ++a) {
    const float* xa = x + (rows != nullptr ? rows[a] : a) * ld;
    const V16 wa = splat(w[a]);
    for (int u = 0; u < NV; ++u) {
      V16 v;
      load(v, xa + kLanes * u);
      acc[u] += wa * v;
    }
  }
  for (int u = 0; u < NV; ++u) store(out + kLanes * u, acc[u]);
}

}  // namespace

CSA_CLONES void weighted_rows(float* out, const float* x, int64_t ld, const int32_t* rows,
                              const float* w, int64_t m, int64_t D) {
  int64_t d = 0;
  for (; d + 4 * kLanes <= D; d += 4 * kLanes) weighted_rows_w<4>(out + d, x + d, ld, rows, w, m);
  for (; d + kLanes <= D; d += kLanes) weighted_rows_w<1>(out + d, x + d, ld, rows, w, m);
  for (; d < D; ++d) {
    float acc = 0;
    for (int64_t a = 0; a < m; ++a) acc += w[a] * x[(rows != nullptr ? rows[a] : a) * ld + d];
    out[d] = acc;
  }
}

CSA_CLONES void scale(float* x, float a, int64_t n) {
  for (int64_t d = 0; d < n; ++d) x[d] *= a;
}

}  // namespace csa::cpu
