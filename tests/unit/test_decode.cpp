// The paged KV cache and one decode step's attention (decode.h) on the CPU: the cache's summaries
// are pages.h's, and a decode step keeps exactly what the explicit path keeps for the last row of
// the same sequence under the same page rule (one rule for evaluation and decoding).
#include "csa/attention/attention.h"
#include "csa/attention/decode.h"
#include "csa/attention/pages.h"
#include "csa/attention/spec.h"
#include "support.h"

using namespace csa;

namespace {

struct FixedRule : AttentionHook {
  const LayerRule* r = nullptr;
  bool active(int) const override { return true; }
  const LayerRule* rule(int) const override { return r; }
};

}  // namespace

TEST_CASE("the paged cache holds what was appended and summarises full pages", "[unit]") {
  at::manual_seed(21);
  at::Tensor k = at::randn({2, 3, 70, 8}), v = at::randn({2, 3, 70, 8});
  PagedKvCache cache(16);
  int64_t at_ = 0;
  for (int64_t t : {5, 1, 1, 20, 1, 30, 12}) {
    cache.append(k.narrow(2, at_, t), v.narrow(2, at_, t));
    at_ += t;
    REQUIRE(cache.length() == at_);
    CHECK_TENSOR_CLOSE(cache.keys(), k.narrow(2, 0, at_), 0.0);
    CHECK_TENSOR_CLOSE(cache.values(), v.narrow(2, 0, at_), 0.0);
    const PageSummaries s = summarize_pages(k.narrow(2, 0, at_), 16);
    CHECK_TENSOR_CLOSE(cache.kmin(), s.kmin, 0.0);
    CHECK_TENSOR_CLOSE(cache.kmax(), s.kmax, 0.0);
  }
  CHECK(cache.capacity() % 16 == 0);
  for (int64_t bad : {0, 3, 24, 512}) CHECK_THROWS_AS(PagedKvCache(bad), UsageError);
  CHECK_THROWS(cache.append(at::randn({2, 2, 1, 8}), at::randn({2, 2, 1, 8})));
}

TEST_CASE("a decode step keeps what the explicit path keeps for the last row", "[unit]") {
  at::manual_seed(22);
  for (int64_t S : {1, 15, 16, 17, 100, 257}) {
    for (int64_t P : {1, 4, 16}) {
      for (bool exact : {false, true}) {
        INFO("S " << S << " P " << P << " exact " << exact);
        const int64_t B = 2, H = 8, Hkv = 2, D = 16;
        at::Tensor q = at::randint(-3, 4, {B, H, S, D}).to(at::kFloat);
        at::Tensor k = at::randint(-3, 4, {B, Hkv, S, D}).to(at::kFloat);
        at::Tensor v = at::randn({B, Hkv, S, D});
        BudgetSchedule sched;
        sched.band_start = {0, 50};
        for (int64_t h = 0; h < H; ++h)
          sched.k.push_back(std::vector<std::vector<int64_t>>{
              {1, 9}, {20, 3}, {1000, 40}, {6, 6}}[static_cast<size_t>(h % 4)]);
        const LayerRule rule = SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
                                   .with_selection(PageSelection{P, exact})
                                   .layer_rule(0);
        FixedRule hook;
        hook.r = &rule;
        at::Tensor full = attend(q, k, v, 0.5, 0, &hook);  // [B, H, S, D]
        PagedKvCache cache(P);
        cache.append(k.narrow(2, 0, S / 2), v.narrow(2, 0, S / 2));
        cache.append(k.narrow(2, S / 2, S - S / 2), v.narrow(2, S / 2, S - S / 2));
        DecodeSelection sel;
        at::Tensor out = decode_attend(q.narrow(2, S - 1, 1), cache, 0.5, &rule, {}, &sel);
        CHECK_TENSOR_CLOSE(out, full.narrow(2, S - 1, 1), 1e-5);
        // Reads: between the budget and the budget + P - 1 (or every key), per the rule.
        for (int64_t h = 0; h < H; ++h) {
          const int64_t kb = std::min(sched.budget(h, S - 1), S);
          const int64_t r = sel.reads[0][h].item<int64_t>();
          if (exact || kb == S)
            CHECK(r == kb);
          else
            CHECK((r >= std::min(kb, S) && r <= S));
        }
        // Dense decoding is the last row of dense attention.
        CHECK_TENSOR_CLOSE(decode_attend(q.narrow(2, S - 1, 1), cache, 0.5, nullptr),
                           attend(q, k, v, 0.5, 0, nullptr).narrow(2, S - 1, 1), 1e-5);
      }
    }
  }
}

TEST_CASE("a decode step refuses a policy paged for another cache", "[unit]") {
  PagedKvCache cache(16);
  cache.append(at::randn({1, 1, 40, 8}), at::randn({1, 1, 40, 8}));
  at::Tensor q = at::randn({1, 2, 1, 8});
  const LayerRule token = SparsitySpec::uniform_top_k(1, 2, 8).layer_rule(0);
  const LayerRule paged32 =
      SparsitySpec::uniform_top_k(1, 2, 8).with_selection(PageSelection{32, false}).layer_rule(0);
  CHECK_THROWS_AS(decode_attend(q, cache, 1.0, &token), InputError);
  CHECK_THROWS_AS(decode_attend(q, cache, 1.0, &paged32), InputError);
  const LayerRule window = SparsitySpec::local_window(4, 1).layer_rule(0);
  CHECK_THROWS_AS(decode_attend(q, cache, 1.0, &window), UsageError);
}
