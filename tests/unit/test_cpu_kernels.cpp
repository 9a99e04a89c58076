// The fused CPU attention kernel's dense pieces (lib/csa/attention/cpu_kernels.h) against plain
// references: the block products (BLAS or portable) against double-precision loops, the
// vectorised exp against std::exp, and the fused kernel against the explicit path on contexts
// long enough for the sampled top-k, several row blocks and both A·V forms.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "csa/attention/attention.h"
#include "csa/attention/cpu_kernels.h"
#include "csa/attention/sparse_hook.h"
#include "csa/attention/spec.h"
#include "support.h"

using namespace csa;

namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

}  // namespace

TEST_CASE("cpu block products match a double-precision reference, any leading dimension",
          "[unit]") {
  std::mt19937 rng(3);
  struct Shape {
    int64_t M, N, K, pad;
  };
  for (Shape s :
       {Shape{1, 1, 1, 0}, Shape{7, 13, 5, 3}, Shape{192, 300, 64, 0}, Shape{65, 64, 257, 9}}) {
    INFO("M " << s.M << " N " << s.N << " K " << s.K << " pad " << s.pad);
    const int64_t lda = s.K + s.pad, ldb_t = s.K + s.pad, ldb = s.N + s.pad, ldc = s.N + s.pad;
    auto A = random_floats(static_cast<size_t>(s.M * lda), rng);
    auto Bt = random_floats(static_cast<size_t>(s.N * ldb_t), rng);  // [N, K] for A·Bᵀ
    auto B = random_floats(static_cast<size_t>(s.K * ldb), rng);     // [K, N] for A·B
    for (bool portable : {false, true}) {
      std::vector<float> C(static_cast<size_t>(s.M * ldc), 7.0f);
      if (portable)
        cpu::gemm_nt_portable(s.M, s.N, s.K, 0.5f, A.data(), lda, Bt.data(), ldb_t, C.data(), ldc);
      else
        cpu::gemm_nt(s.M, s.N, s.K, 0.5f, A.data(), lda, Bt.data(), ldb_t, C.data(), ldc);
      double worst = 0;
      for (int64_t i = 0; i < s.M; ++i)
        for (int64_t j = 0; j < s.N; ++j) {
          double ref = 0;
          for (int64_t d = 0; d < s.K; ++d) ref += double(A[i * lda + d]) * Bt[j * ldb_t + d];
          worst = std::max(worst, std::abs(0.5 * ref - C[i * ldc + j]));
        }
      CHECK(worst < 1e-4);
      std::vector<float> D(static_cast<size_t>(s.M * ldc), 7.0f);
      if (portable)
        cpu::gemm_nn_portable(s.M, s.N, s.K, A.data(), lda, B.data(), ldb, D.data(), ldc);
      else
        cpu::gemm_nn(s.M, s.N, s.K, A.data(), lda, B.data(), ldb, D.data(), ldc);
      worst = 0;
      for (int64_t i = 0; i < s.M; ++i)
        for (int64_t j = 0; j < s.N; ++j) {
          double ref = 0;
          for (int64_t d = 0; d < s.K; ++d) ref += double(A[i * lda + d]) * B[d * ldb + j];
          worst = std::max(worst, std::abs(ref - D[i * ldc + j]));
        }
      CHECK(worst < 1e-4);
      CHECK(D[static_cast<size_t>(ldc - 1)] == (s.pad > 0 ? 7.0f : D[ldc - 1]));  // padding kept
    }
  }
}

TEST_CASE("the vectorised exp is within 2 ulp-ish of std::exp and 0 at -inf", "[unit]") {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 87.0f * static_cast<float>(i) / 200000.0f + (i % 2 ? 1.0f : 0.0f);
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(cpu::exp_approx(x) - ref) / ref);
  }
  INFO("max relative error " << worst);
  CHECK(worst < 2.5e-7);  // 2 ulp of float is 2.4e-7 at worst
  CHECK(cpu::exp_approx(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(cpu::exp_approx(-100.0f) == 0.0f);
  CHECK(cpu::exp_approx(0.0f) == 1.0f);
  // exp_shifted over a row (vector body and tail): the values and their sum.
  std::mt19937 rng(5);
  for (int64_t n : {1, 15, 16, 17, 100}) {
    auto s = random_floats(static_cast<size_t>(n), rng);
    if (n > 1) s[0] = -std::numeric_limits<float>::infinity();
    std::vector<float> p(static_cast<size_t>(n));
    const float m = cpu::max_of(s.data(), n);
    const float z = cpu::exp_shifted(s.data(), m, p.data(), n);
    double ref_z = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double e = std::exp(double(s[j]) - m);
      ref_z += e;
      CHECK(std::abs(p[j] - e) <= 3e-7 * e + 1e-30);
    }
    CHECK(std::abs(z - ref_z) <= 1e-6 * ref_z);
    CHECK(m == *std::max_element(s.begin(), s.end()));
  }
}

TEST_CASE("weighted rows (gathered A·V) match a double-precision reference", "[unit]") {
  std::mt19937 rng(29);
  for (int64_t D : {1, 16, 17, 64, 80, 130}) {
    const int64_t ld = D + 3, S = 400;
    const std::vector<float> x = random_floats(static_cast<size_t>(S * ld), rng);
    for (int64_t m : {0, 1, 5, 300}) {
      for (bool gathered : {false, true}) {
        INFO("D " << D << " m " << m << " gathered " << gathered);
        std::vector<int32_t> rows(static_cast<size_t>(m));
        std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(S - 1));
        for (auto& r : rows) r = pick(rng);
        std::vector<float> w = random_floats(static_cast<size_t>(m), rng);
        std::vector<float> out(static_cast<size_t>(D), 123.0f);
        cpu::weighted_rows(out.data(), x.data(), ld, gathered ? rows.data() : nullptr, w.data(), m,
                           D);
        for (int64_t d = 0; d < D; ++d) {
          double ref = 0, mag = 0;
          for (int64_t a = 0; a < m; ++a) {
            const int64_t row = gathered ? rows[static_cast<size_t>(a)] : a;
            const double t = static_cast<double>(w[static_cast<size_t>(a)]) *
                             x[static_cast<size_t>(row * ld + d)];
            ref += t;
            mag += std::abs(t);
          }
          CHECK(std::abs(out[static_cast<size_t>(d)] - ref) <= 1e-5 * mag + 1e-30);
        }
      }
    }
  }
}

TEST_CASE("the fused CPU kernel matches the explicit path on long contexts", "[unit]") {
  // S = 700: eleven row blocks, rows long enough for the sampled top-k threshold, blocks on both
  // sides of the gathered/product A·V switch, rows listed and rows masked in place (alone and
  // mixed in one group), windows whose band starts past key 0, a KV prefix.
  at::manual_seed(17);
  const int64_t B = 2, H = 6, Hkv = 2, D = 32;
  for (int64_t T : {int64_t(700), int64_t(300)}) {
    const int64_t S = 700;
    at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, Hkv, S, D}),
               v = at::randn({B, Hkv, S, D});
    for (bool ties : {false, true}) {
      const at::Tensor qq = ties ? q.round() : q, kk = ties ? k.round() : k;
      std::vector<SparsitySpec> specs = {
          SparsitySpec::dense(),
          SparsitySpec::top_k(std::vector<std::vector<int64_t>>{{1, 17, 64, 100, 300, 2000}}, "k"),
          // Most keys kept: rows masked in place, whole groups of them (the KV union by count)
          SparsitySpec::top_k(std::vector<std::vector<int64_t>>{{300, 320, 400, 450, 500, 650}},
                              "k-high"),
          SparsitySpec::top_p(1, H, 0.9), SparsitySpec::local_window(100, 4),
          SparsitySpec::strided(50, 30, 2)};
      for (size_t i = 0; i < specs.size(); ++i) {
        INFO("T " << T << " ties " << ties << " spec " << specs[i].label);
        SparseAttentionHook slow_hook(specs[i], 1, H, Hkv, 100000);
        SparseAttentionHook fast_hook(specs[i], 1, H, Hkv, 100000);
        AttentionOptions slow;
        slow.allow_fused = false;
        slow.allow_fused_cpu = false;
        AttentionOptions fast;
        fast.allow_fused = false;
        const bool dense = i == 0;
        at::Tensor ref = attend(qq, kk, v, 0.2, 0, dense ? nullptr : &slow_hook, slow);
        at::Tensor got = attend(qq, kk, v, 0.2, 0, dense ? nullptr : &fast_hook, fast);
        CHECK_TENSOR_CLOSE(got, ref, 1e-5);
        if (!dense) {
          CHECK(fast_hook.tally().q_sparse == slow_hook.tally().q_sparse);
          CHECK(fast_hook.tally().kv_sparse == slow_hook.tally().kv_sparse);
        }
      }
    }
  }
}

TEST_CASE("the fused CPU kernel gives the same result on one thread or several", "[unit]") {
  // Each block is computed whole by one worker, with BLAS single-threaded inside the kernel's
  // OpenMP region, so the GCC build gives the same bits on any thread count; builds without
  // OpenMP (clang: sanitizers, fuzzing) run the blocks serially and let BLAS split each product
  // over its threads, which moves the last bits. Reads are counts: identical either way.
  at::manual_seed(19);
  at::Tensor q = at::randn({2, 6, 400, 64}), k = at::randn({2, 2, 400, 64}),
             v = at::randn({2, 2, 400, 64});
  SparsitySpec spec =
      SparsitySpec::top_k(std::vector<std::vector<int64_t>>{{32, 32, 8, 100, 32, 300}}, "k");
  const int before = at::get_num_threads();
  std::vector<at::Tensor> outs;
  std::vector<std::vector<std::vector<double>>> reads;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    SparseAttentionHook hook(spec, 1, 6, 2, 100000);
    outs.push_back(attend(q, k, v, 0.125, 0, &hook, {}));
    reads.push_back(hook.tally().kv_sparse);
  }
  at::set_num_threads(before);
  CHECK_TENSOR_CLOSE(outs[1], outs[0], 1e-6);
  CHECK_TENSOR_CLOSE(outs[2], outs[0], 1e-6);
  CHECK(reads[1] == reads[0]);
  CHECK(reads[2] == reads[0]);
}
