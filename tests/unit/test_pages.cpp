// Page-granular selection (rule.h, pages.h) against a naive reference written from the rule's
// text: integer-valued queries and keys make every bound and score exact, so ties between pages
// and between keys are common and the tie rule is checked too.
#include <algorithm>
#include <set>

#include "csa/attention/attention.h"
#include "csa/attention/pages.h"
#include "csa/attention/sparse_hook.h"
#include "csa/attention/spec.h"
#include "support.h"

using namespace csa;

namespace {

// The keys a query (q [D], keys [S][D] of its KV head) at position pos keeps with budget k under
// page size P: sink and newest page, then best bounds first (larger page on ties) until the kept
// keys reach k; with `exact` the k best-scoring keys of those (larger key on ties); with
// spread < 1 pages ranked by q·centre + spread·|q|·half-range instead of the bound. With a
// group (`group_q`: the queries of every head sharing the KV head, `k_group` the largest of their
// budgets) a page's score is the largest of the group's scores and the count follows k_group.
std::set<int64_t> naive_kept(const at::Tensor& q, const at::Tensor& keys, int64_t pos, int64_t k,
                             int64_t P, bool exact, bool oracle, double spread = 1,
                             const std::vector<at::Tensor>& group_q = {}, int64_t k_group = 0) {
  const std::vector<at::Tensor> scorers = group_q.empty() ? std::vector<at::Tensor>{q} : group_q;
  const int64_t kc = group_q.empty() ? k : k_group;  // the budget that counts pages
  const int64_t D = q.size(0);
  auto ka = keys.accessor<double, 2>();
  auto score = [&](const at::Tensor& qq, int64_t j) {
    auto qa = qq.accessor<double, 1>();
    double x = 0;
    for (int64_t d = 0; d < D; ++d) x += qa[d] * ka[j][d];
    return x;
  };
  std::set<int64_t> kept;
  const int64_t newest = pos / P;
  auto add_page = [&](int64_t m) {
    for (int64_t j = m * P; j < std::min((m + 1) * P, pos + 1); ++j) kept.insert(j);
  };
  if (kc >= pos + 1) {
    for (int64_t j = 0; j <= pos; ++j) kept.insert(j);
  } else {
    add_page(0);
    add_page(newest);
    std::vector<std::pair<double, int64_t>> cand;  // (score, page)
    for (int64_t m = 1; m < newest; ++m) {
      double best = -1e300;
      for (const at::Tensor& qq : scorers) {
        auto qa = qq.accessor<double, 1>();
        double b = 0;
        for (int64_t d = 0; d < D; ++d) {
          double lo = ka[m * P][d], hi = ka[m * P][d];
          for (int64_t j = m * P; j < (m + 1) * P; ++j)
            lo = std::min(lo, ka[j][d]), hi = std::max(hi, ka[j][d]);
          b += spread == 1 ? std::max(qa[d] * lo, qa[d] * hi)
                           : qa[d] * (lo + hi) / 2 + spread * std::abs(qa[d]) * (hi - lo) / 2;
        }
        if (oracle) {  // the page's best exact score
          b = -1e300;
          for (int64_t j = m * P; j < (m + 1) * P; ++j) b = std::max(b, score(qq, j));
        }
        best = std::max(best, b);
      }
      cand.push_back({best, m});
    }
    std::sort(cand.begin(), cand.end(), [](auto a, auto b) {
      return a.first != b.first ? a.first > b.first : a.second > b.second;
    });
    const int64_t extra = (kc + P - 1) / P;  // ceil(k / P) pages besides the sink and the newest
    for (size_t i = 0; i < cand.size() && static_cast<int64_t>(i) < extra; ++i)
      add_page(cand[i].second);
  }
  if (!exact || static_cast<int64_t>(kept.size()) <= k) return kept;
  std::vector<std::pair<double, int64_t>> sc;  // (score, key)
  for (int64_t j : kept) sc.push_back({score(q, j), j});
  std::sort(sc.begin(), sc.end(), [](auto a, auto b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  std::set<int64_t> top;
  for (int64_t i = 0; i < k; ++i) top.insert(sc[static_cast<size_t>(i)].second);
  return top;
}

struct Case {
  int64_t B, H, Hkv, T, S, P;
};

}  // namespace

TEST_CASE("selection spellings parse and print", "[unit]") {
  CHECK(selection_name(parse_selection("token", "x")) == "token");
  CHECK(selection_name(parse_selection("page:16", "x")) == "page:16");
  CHECK(selection_name(parse_selection("page:32:topk", "x")) == "page:32:topk");
  CHECK(selection_name(parse_selection("page:8:oracle", "x")) == "page:8:oracle");
  CHECK(selection_name(parse_selection("page:8:oracle:topk", "x")) == "page:8:oracle:topk");
  CHECK(selection_name(parse_selection("page:16:spread=0.25", "x")) == "page:16:spread=0.25");
  CHECK(selection_name(parse_selection("page:16:spread=0.1:topk", "x")) ==
        "page:16:spread=0.1:topk");
  CHECK(selection_name(parse_selection("page:16:spread=0.5:group", "x")) ==
        "page:16:spread=0.5:group");
  CHECK(parse_selection("page:8:group:oracle:topk", "x") == PageSelection{8, true, true, 1, true});
  CHECK(parse_selection("page:16:spread=0", "x").spread == 0);
  CHECK(selection_name(parse_selection("page:16:spread=1", "x")) == "page:16");  // the bound
  {  // every spread reads back as itself
    PageSelection s{16, false, false, 1.0 / 3};
    CHECK(parse_selection(selection_name(s), "x") == s);
  }
  for (const char* bad : {"page",
                          "page:",
                          "page:0",
                          "page:-4",
                          "page:16:top",
                          "pages:16",
                          "page:99999999999",
                          "page:1e3",
                          "",
                          "page:8:topk:oracle",
                          "page:8:",
                          "page:8:spread=",
                          "page:8:spread=1.5",
                          "page:8:spread=-0.1",
                          "page:8:spread=x",
                          "page:8:spread=0.5:oracle",
                          "page:8:topk:spread=0.5",
                          "page:8:spread=0.5:spread=0.5",
                          "page:8:spread=nan",
                          "page:8:oracle:group",
                          "page:8:group:group",
                          "page:8:groups"})
    CHECK_THROWS_AS(parse_selection(bad, "--select"), UsageError);
  // The count arithmetic: ceil(k / P) pages besides the forced ones, so the chosen pages alone
  // hold k to k + P - 1 keys; every page when that is all of them.
  for (int64_t P : {1, 4, 16})
    for (int64_t pos = 0; pos < 80; ++pos)
      for (int64_t k = 1; k <= pos + 2; ++k) {
        const PageCount c = page_count(k, pos, P);
        const int64_t candidates = std::max<int64_t>(pos / P - 1, 0);
        if (k >= pos + 1 || (k + P - 1) / P >= candidates) {
          CHECK(c.all);
          continue;
        }
        CHECK(!c.all);
        CHECK((c.extra * P >= k && c.extra * P < k + P));
      }
}

TEST_CASE("page selection keeps what the rule's text says, on the explicit path", "[unit]") {
  at::manual_seed(11);
  for (Case c : {Case{1, 2, 2, 40, 40, 4}, Case{2, 4, 2, 37, 53, 8}, Case{1, 6, 3, 70, 70, 16},
                 Case{1, 4, 1, 1, 100, 16}, Case{1, 2, 1, 9, 9, 16}, Case{1, 3, 3, 33, 33, 1}}) {
    for (int variant = 0; variant < 12; ++variant) {
      const bool exact = variant % 2 == 1, oracle = variant % 6 == 2 || variant % 6 == 3;
      const double spread = variant % 6 >= 4 ? 0.25 : 1;
      const bool group = variant >= 6;
      INFO("B" << c.B << " H" << c.H << " Hkv" << c.Hkv << " T" << c.T << " S" << c.S << " P" << c.P
               << " exact " << exact << " oracle " << oracle << " spread " << spread << " group "
               << group);
      const PageSelection sel{c.P, exact, oracle, spread, group};
      const int64_t D = 8;
      at::Tensor q = at::randint(-3, 4, {c.B, c.H, c.T, D}).to(at::kFloat);
      at::Tensor k = at::randint(-3, 4, {c.B, c.Hkv, c.S, D}).to(at::kFloat);
      at::Tensor v = at::randn({c.B, c.Hkv, c.S, D});
      // Budgets by band, tiny to all-reading.
      BudgetSchedule sched;
      sched.band_start = {0, 10, 30};
      for (int64_t h = 0; h < c.H; ++h)
        sched.k.push_back(std::vector<std::vector<int64_t>>{
            {1, 5, 12}, {3, 20, 7}, {1000, 9, 33}}[static_cast<size_t>(h % 3)]);
      SparsitySpec spec =
          SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "banded").with_selection(sel);
      CHECK(spec.label == "banded [" + selection_name(sel) + "]");
      SparseAttentionHook hook(spec, 1, c.H, c.Hkv, 100000);
      const double scale = 0.5;
      at::Tensor out = attend(q, k, v, scale, 0, &hook);
      hook.count_pass(c.B, c.T);
      // The reference: softmax over the naive kept set, in float64.
      at::Tensor ref = at::zeros({c.B, c.H, c.T, D}, at::kDouble);
      double reads = 0;
      const int64_t G = c.H / c.Hkv;
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.H; ++h)
          for (int64_t t = 0; t < c.T; ++t) {
            const int64_t pos = c.S - c.T + t;
            at::Tensor qi = q[b][h][t].to(at::kDouble);
            at::Tensor keys = k[b][h / G].to(at::kDouble);
            std::vector<at::Tensor> group_q;
            int64_t k_group = 0;
            for (int64_t gi = 0; group && gi < G; ++gi) {
              const int64_t hh = h / G * G + gi;
              group_q.push_back(q[b][hh][t].to(at::kDouble));
              k_group = std::max(k_group, sched.budget(hh, pos));
            }
            const auto kept = naive_kept(qi, keys, pos, sched.budget(h, pos), c.P, exact, oracle,
                                         spread, group_q, k_group);
            reads += static_cast<double>(kept.size());
            std::vector<int64_t> idx(kept.begin(), kept.end());
            at::Tensor ix = at::tensor(idx, at::kLong);
            at::Tensor s = at::matmul(keys.index_select(0, ix), qi) * scale;
            at::Tensor p = at::softmax(s, 0);
            ref[b][h][t] = at::matmul(p, v[b][h / G].to(at::kDouble).index_select(0, ix));
          }
      CHECK_TENSOR_CLOSE(out.to(at::kDouble), ref, 1e-5);
      CHECK(hook.tally().q_sparse_total() == reads);
    }
  }
}

TEST_CASE("page bounds bound every key of the page", "[unit]") {
  at::manual_seed(12);
  at::Tensor q = at::randn({2, 4, 5, 16}), k = at::randn({2, 2, 64, 16});
  const PageSummaries s = summarize_pages(k, 8);
  REQUIRE(s.pages() == 8);
  at::Tensor bounds = page_bounds(q, s, 0.25);  // [2, 4, 5, 8]
  at::Tensor scores = at::matmul(q.view({2, 2, 10, 16}), k.transpose(2, 3)).mul(0.25);
  at::Tensor page_max = std::get<0>(scores.view({2, 2, 10, 8, 8}).max(4)).view({2, 4, 5, 8});
  CHECK((bounds >= page_max - 1e-5).all().item<bool>());
  // A page of identical keys: the bound is the score itself.
  at::Tensor same = at::randn({1, 1, 1, 16}).expand({1, 1, 16, 16}).contiguous();
  at::Tensor q1 = at::randn({1, 1, 1, 16});
  at::Tensor b1 = page_bounds(q1, summarize_pages(same, 16), 1.0);
  CHECK(std::abs(b1.item<float>() - at::dot(q1.view(16), same[0][0][0]).item<float>()) < 1e-5);
  // Spread 1 is the bound; smaller spreads move every score down toward the centre's, which no
  // longer bounds the page, linearly in the spread.
  at::Tensor centre = page_bounds(q, s, 0.25, 0), half = page_bounds(q, s, 0.25, 0.5);
  CHECK_TENSOR_CLOSE(page_bounds(q, s, 0.25, 1 - 1e-12), bounds, 1e-4);
  CHECK_TENSOR_CLOSE(half, (centre + bounds) / 2, 1e-4);
  CHECK((centre <= bounds + 1e-5).all().item<bool>());
  CHECK((centre < page_max).any().item<bool>());
}

TEST_CASE("a page rule whose budgets cover the context reads like dense", "[unit]") {
  at::manual_seed(13);
  at::Tensor q = at::randn({1, 4, 30, 8}), k = at::randn({1, 2, 30, 8}),
             v = at::randn({1, 2, 30, 8});
  SparsitySpec spec = SparsitySpec::uniform_top_k(1, 4, 30).with_selection(PageSelection{8, false});
  LayerRule r = spec.layer_rule(0);
  struct Fixed : AttentionHook {
    const LayerRule* r;
    bool active(int) const override { return true; }
    const LayerRule* rule(int) const override { return r; }
  } hook;
  hook.r = &r;
  CHECK_TENSOR_CLOSE(attend(q, k, v, 0.3, 0, &hook), attend(q, k, v, 0.3, 0, nullptr), 1e-5);
  // Patterns cannot be paged.
  CHECK_THROWS_AS(SparsitySpec::local_window(4, 1).with_selection(PageSelection{8, false}),
                  UsageError);
}
