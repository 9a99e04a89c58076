// The paged decode kernels (decode_cuda_kernel.cu) against decode.h's tensor reference, which the
// unit tier proves equal to the explicit path's page rule: integer-valued queries and keys make
// every bound exact, so the kept pages and reads must be identical (ties included); outputs agree
// within float32 / half tolerances. Dense decoding over every page too.
#include "csa/attention/decode.h"
#include "csa/attention/spec.h"
#include "support.h"

using namespace csa;

TEST_CASE("CUDA paged decode equals the reference: pages, reads, outputs", "[.][gpu]") {
  REQUIRE(at::hasCUDA());
  REQUIRE(decode_kernels_built());
  at::manual_seed(31);
  struct Case {
    int64_t B, H, Hkv, D, S, P;
  };
  const std::vector<Case> cases = {{1, 4, 1, 64, 1, 16},     {2, 8, 2, 64, 17, 16},
                                   {1, 32, 8, 64, 5000, 16}, {2, 12, 2, 128, 3001, 32},
                                   {1, 8, 1, 80, 777, 8},    {1, 4, 4, 64, 40000, 64},
                                   {3, 6, 2, 128, 100, 1},   {1, 8, 8, 256, 2049, 16}};
  for (const Case& c : cases) {
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
      INFO("B" << c.B << " H" << c.H << " Hkv" << c.Hkv << " D" << c.D << " S" << c.S << " P" << c.P
               << " " << at::toString(dt));
      auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
      // Small integers are exact in every dtype; scale 1/8 keeps the softmax in range.
      at::Tensor q = at::randint(-2, 3, {c.B, c.H, 1, c.D}, opts);
      at::Tensor k = at::randint(-2, 3, {c.B, c.Hkv, c.S, c.D}, opts);
      at::Tensor v = at::randn({c.B, c.Hkv, c.S, c.D}, opts);
      PagedKvCache cache(c.P);
      cache.append(k.narrow(2, 0, c.S / 3), v.narrow(2, 0, c.S / 3));
      for (int64_t t = c.S / 3; t < c.S; t += std::max<int64_t>(1, c.S / 7)) {
        const int64_t n = std::min(std::max<int64_t>(1, c.S / 7), c.S - t);
        cache.append(k.narrow(2, t, n), v.narrow(2, t, n));
      }
      REQUIRE(cache.length() == c.S);
      BudgetSchedule sched;
      sched.band_start = {0, 1000};
      for (int64_t h = 0; h < c.H; ++h)
        sched.k.push_back(std::vector<std::vector<int64_t>>{
            {1, 100}, {40, 4000}, {1000000, 7}, {17, 17}, {300, 33}}[static_cast<size_t>(h % 5)]);
      const LayerRule rule = SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
                                 .with_selection(PageSelection{c.P, false})
                                 .layer_rule(0);
      const double tol = dt == at::kFloat ? 1e-5 : 2e-2;
      for (const LayerRule* r : {&rule, static_cast<const LayerRule*>(nullptr)}) {
        DecodeSelection got, want;
        DecodeOptions kernel, reference;
        reference.allow_kernel = false;
        at::Tensor out = decode_attend(q, cache, 0.125, r, kernel, &got);
        at::Tensor ref = decode_attend(q, cache, 0.125, r, reference, &want);
        CHECK(at::equal(got.keep.cpu(), want.keep.cpu()));
        CHECK(at::equal(got.reads.cpu(), want.reads.cpu()));
        CHECK_TENSOR_CLOSE(out.to(at::kFloat).cpu(), ref.to(at::kFloat).cpu(), tol);
        // Deterministic: the same call gives the same bits.
        CHECK(at::equal(out, decode_attend(q, cache, 0.125, r, kernel)));
        // Any split count gives the same output within rounding.
        DecodeOptions one;
        one.splits = 1;
        CHECK_TENSOR_CLOSE(decode_attend(q, cache, 0.125, r, one).to(at::kFloat).cpu(),
                           ref.to(at::kFloat).cpu(), tol);
      }
    }
  }
}
