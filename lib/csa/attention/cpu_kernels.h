// The dense pieces of the fused CPU attention kernel (fused_cpu.cpp), row-major float32:
//   gemm_nt / gemm_nn   block products: OpenBLAS's cblas_sgemm where the build found a CBLAS
//                       (CSA_HAVE_CBLAS), else the portable loops below. Called from inside the
//                       kernel's OpenMP region, where OpenBLAS (OpenMP build) runs single-threaded
//                       (it checks omp_in_parallel()), so there is one level of parallelism.
//   exp_shifted         p = exp(s - m) with a vectorised polynomial exp, and the row sum (also
//                       used by the evaluation's log-sum-exp over the vocabulary)
//   axpy                out += w · v
//   weighted_rows       Σ w_a · v_a over gathered rows of V: the gathered half of A·V
// The loops are compiled for AVX-512, AVX2 and baseline x86-64 and the best is picked at load
// time (target_clones): Debian builds for baseline x86-64.
#pragma once

#include <cstdint>

namespace csa::cpu {

// C[M, N] = alpha · A[M, K] · B[N, K]ᵀ (lda, ldb, ldc: row strides in elements).
void gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float* C, int64_t ldc);
// C[M, N] = A[M, K] · B[K, N].
void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc);
// True when gemm_* call a BLAS (for benchmark records).
bool gemm_uses_blas();

// The portable products gemm_* fall back to without a CBLAS (always built, for the tests).
void gemm_nt_portable(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float* C, int64_t ldc);
void gemm_nn_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                      int64_t ldb, float* C, int64_t ldc);

// max of s[0..n) (-inf for n = 0).
float max_of(const float* s, int64_t n);
// p[j] = exp(s[j] - m) for j < n (0 where s[j] = -inf); returns the sum of p. p may be s.
// Relative error of each exp below 2e-7 (a Cephes-style polynomial; tests check it).
float exp_shifted(const float* s, float m, float* p, int64_t n);
// The sum of exp(s[j] - m) for j < n, nothing written (log-sum-exp of a row of logits).
float sum_exp_shifted(const float* s, float m, int64_t n);
// The same exp for one value (tests).
float exp_approx(float x);
// out[0..n) += w · v[0..n).
void axpy(float* out, const float* v, float w, int64_t n);
// out[0..D) = Σ_a w[a] · x[row_a · ld + 0..D) over a < m, row_a = rows[a] (or a when rows is
// null), in that order: the gathered A·V of one query row, with out held in registers over the
// rows (D ≤ 64 at a time) instead of one axpy with a store and reload per row.
void weighted_rows(float* out, const float* x, int64_t ld, const int32_t* rows, const float* w,
                   int64_t m, int64_t D);
// x[0..n) *= a.
void scale(float* x, float a, int64_t n);

}  // namespace csa::cpu
