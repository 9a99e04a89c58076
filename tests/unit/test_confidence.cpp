// The confidence bound of dense-matching quality (docs/metrics.md, "Dense-matching quality"):
// clustered standard errors of the mean NLL difference against a naive computation and a value
// worked by hand, upper bounds equal to the point values at z = 0, the verdict flipping when z
// pushes a bucket's bound over the tolerance, and the normal quantile behind z.
#include <c10/core/GradMode.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "csa/core/error.h"
#include "csa/eval/perplexity.h"
#include "csa/model/decoder.h"
#include "csa/model/random.h"
#include "model_factory.h"

using namespace csa;

namespace {

// A pass from per-window sums: the scored targets' NLL and count per window, and per window and
// bucket ([W * B], window-major) the NLL and count of every target; the totals are their sums.
PassResult pass_from(const std::vector<double>& window_nll,
                     const std::vector<int64_t>& window_scored,
                     const std::vector<double>& window_bucket_nll,
                     const std::vector<int64_t>& window_bucket_count, size_t buckets,
                     int64_t cluster_windows) {
  PassResult r;
  r.window_nll = window_nll;
  r.window_scored = window_scored;
  r.window_bucket_nll = window_bucket_nll;
  r.window_bucket_count = window_bucket_count;
  r.cluster_windows = cluster_windows;
  r.windows = static_cast<int64_t>(window_nll.size());
  for (size_t w = 0; w < window_nll.size(); ++w) {
    r.nll_sum += window_nll[w];
    r.scored += window_scored[w];
  }
  r.bucket_nll.assign(buckets, 0.0);
  r.bucket_count.assign(buckets, 0);
  for (size_t i = 0; i < window_bucket_nll.size(); ++i) {
    r.bucket_nll[i % buckets] += window_bucket_nll[i];
    r.bucket_count[i % buckets] += window_bucket_count[i];
  }
  return r;
}

// The clustered ratio estimator written out: clusters [c K, (c + 1) K) of the per-window
// differences d_w and counts n_w, those without targets left out; returns {m, se}.
std::pair<double, double> naive_se(const std::vector<double>& d, const std::vector<int64_t>& n,
                                   size_t K) {
  std::vector<double> dc, nc;
  for (size_t begin = 0; begin < d.size(); begin += K) {
    double sd = 0, sn = 0;
    for (size_t w = begin; w < std::min(d.size(), begin + K); ++w) sd += d[w], sn += n[w];
    if (sn > 0) dc.push_back(sd), nc.push_back(sn);
  }
  double sum_d = 0, sum_n = 0;
  for (size_t c = 0; c < dc.size(); ++c) sum_d += dc[c], sum_n += nc[c];
  const double m = sum_d / sum_n, C = static_cast<double>(dc.size());
  double ss = 0;
  for (size_t c = 0; c < dc.size(); ++c) ss += (dc[c] - m * nc[c]) * (dc[c] - m * nc[c]);
  return {m, C < 2 ? 0.0 : std::sqrt(C / (C - 1) * ss / (sum_n * sum_n))};
}

}  // namespace

TEST_CASE("confidence bound: clustered standard errors against a naive computation", "[unit]") {
  // 5 windows, 2 buckets, clusters of 2 windows: {0, 1}, {2, 3}, {4}.
  const size_t B = 2, K = 2;
  const std::vector<int64_t> scored = {5, 5, 5, 5, 5};
  const std::vector<double> dense_w = {10, 11, 9, 10, 12};
  const std::vector<double> diff_w = {0.1, 0.3, 0.0, 0.2, 0.4};
  std::vector<double> sparse_w(dense_w);
  for (size_t w = 0; w < 5; ++w) sparse_w[w] += diff_w[w];
  // Buckets: 3 and 2 targets a window; the last (short) window has none in bucket 1, so bucket 1
  // has two clusters with targets.
  const std::vector<int64_t> counts = {3, 2, 3, 2, 3, 2, 3, 2, 3, 0};
  const std::vector<double> dense_b = {6, 4, 7, 4, 5, 4, 6, 4, 8, 0};
  const std::vector<double> diff_b = {0.05, 0.1, -0.02, 0.3, 0.0, 0.05, 0.1, 0.2, 0.15, 0};
  std::vector<double> sparse_b(dense_b);
  for (size_t i = 0; i < sparse_b.size(); ++i) sparse_b[i] += diff_b[i];
  const PassResult dense = pass_from(dense_w, scored, dense_b, counts, B, K);
  const PassResult sparse = pass_from(sparse_w, scored, sparse_b, counts, B, K);

  const double z = 1.6448536269514722;
  const Comparison c = compare(dense, sparse, z);
  // Overall: cluster sums d = {0.4, 0.2, 0.4}, n = {10, 10, 5}; m = 1 / 25 = 0.04; residuals
  // {0, -0.2, 0.2}: se^2 = 3/2 * 0.08 / 625 = 1.92e-4.
  CHECK(c.delta_se == Approx(std::sqrt(1.92e-4)).epsilon(1e-12));
  const auto [m_all, se_all] = naive_se(diff_w, scored, K);
  CHECK(m_all == Approx(0.04).epsilon(1e-12));
  CHECK(c.delta_se == Approx(se_all).epsilon(1e-12));
  // delta_rel is exp(m) - 1 (both passes score the same targets).
  CHECK(c.delta_rel == Approx(std::expm1(m_all)).epsilon(1e-12));
  CHECK(c.delta_rel_upper == Approx(std::expm1(m_all + z * se_all)).epsilon(1e-12));
  REQUIRE(c.bucket_se.size() == B);
  REQUIRE(c.bucket_delta_rel_upper.size() == B);
  double worst = 0;
  for (size_t b = 0; b < B; ++b) {
    INFO("bucket " << b);
    std::vector<double> d;
    std::vector<int64_t> n;
    for (size_t w = 0; w < 5; ++w) d.push_back(diff_b[w * B + b]), n.push_back(counts[w * B + b]);
    const auto [m, se] = naive_se(d, n, K);
    CHECK(se > 0);
    CHECK(c.bucket_se[b] == Approx(se).epsilon(1e-12));
    CHECK(c.bucket_delta_rel[b] == Approx(std::expm1(m)).epsilon(1e-12));
    CHECK(c.bucket_delta_rel_upper[b] == Approx(std::expm1(m + z * se)).epsilon(1e-12));
    worst = std::max(worst, std::expm1(m + z * se));
  }
  CHECK(c.max_bucket_worsening_upper == Approx(worst).epsilon(1e-12));

  // z = 0: every upper value is its point value, exactly; the standard errors are still there.
  const Comparison p = compare(dense, sparse);
  CHECK(p.delta_rel_upper == p.delta_rel);
  CHECK(p.bucket_delta_rel_upper == p.bucket_delta_rel);
  CHECK(p.max_bucket_worsening_upper == p.max_bucket_worsening_rel);
  CHECK(p.delta_se == c.delta_se);
  CHECK(p.bucket_se == c.bucket_se);

  // One cluster (clusters of 5 windows): no spread to estimate, se 0, upper = point.
  PassResult d1 = dense, s1 = sparse;
  d1.cluster_windows = s1.cluster_windows = 5;
  const Comparison one = compare(d1, s1, z);
  CHECK(one.delta_se == 0);
  CHECK(one.delta_rel_upper == one.delta_rel);
  CHECK(one.bucket_delta_rel_upper == one.bucket_delta_rel);

  // Passes without (or with mismatched) per-window sums, e.g. built by hand: se 0, upper = point.
  PassResult bare = sparse;
  bare.window_nll.clear();
  bare.window_scored.clear();
  bare.window_bucket_nll.clear();
  bare.window_bucket_count.clear();
  for (const PassResult* s : {&bare, &d1}) {
    const Comparison f = compare(dense, *s, z);
    CHECK(f.delta_se == 0);
    CHECK(f.bucket_se == std::vector<double>(B, 0.0));
    CHECK(f.delta_rel_upper == f.delta_rel);
    CHECK(f.max_bucket_worsening_upper == f.max_bucket_worsening_rel);
  }
}

TEST_CASE("confidence bound: z pushes a bucket's upper bound over the tolerance", "[unit]") {
  // 8 windows, clusters of 2; the scored targets and bucket 0 are unchanged, bucket 1 (100
  // targets a window) is worse by m = 6.4 / 800 = 0.008 in mean NLL (+0.80%) with cluster sums
  // {0.8, 2.4, 0.4, 2.8}: se^2 = 4/3 * 4.16 / 800^2, se = 0.002944.
  const size_t W = 8, B = 2;
  const std::vector<double> diff1 = {0.4, 0.4, 1.2, 1.2, 0.2, 0.2, 1.4, 1.4};
  std::vector<double> wn(W, 30.0), db, sb;
  std::vector<int64_t> ws(W, 10), counts;
  for (size_t w = 0; w < W; ++w) {
    db.insert(db.end(), {200.0, 300.0});
    sb.insert(sb.end(), {200.0, 300.0 + diff1[w]});
    counts.insert(counts.end(), {100, 100});
  }
  const PassResult dense = pass_from(wn, ws, db, counts, B, 2);
  const PassResult sparse = pass_from(wn, ws, sb, counts, B, 2);

  const Comparison point = compare(dense, sparse);
  CHECK(point.max_bucket_worsening_rel == Approx(std::expm1(0.008)).epsilon(1e-12));
  CHECK(point.bucket_se[1] == Approx(std::sqrt(4.0 / 3 * 4.16) / 800).epsilon(1e-12));
  CHECK(point.delta_se == 0);  // the scored targets did not change
  CHECK(point.meets(0.005, 0.01));

  // z = 0.5: +0.95%, still within 1%; z(0.95) = 1.645: +1.29%, a miss on the bucket alone.
  const Comparison low = compare(dense, sparse, 0.5);
  CHECK(low.max_bucket_worsening_upper < 0.01);
  CHECK(low.meets(0.005, 0.01));
  const Comparison high = compare(dense, sparse, confidence_z(0.95));
  CHECK(high.max_bucket_worsening_upper ==
        Approx(std::expm1(0.008 + 1.6448536269514722 * point.bucket_se[1])).epsilon(1e-9));
  CHECK(high.max_bucket_worsening_upper > 0.01);
  CHECK(high.delta_rel_upper == 0);
  CHECK_FALSE(high.meets(0.005, 0.01));
  CHECK(high.meets(0.005, 0.02));
  // The point values do not move with z.
  CHECK(high.max_bucket_worsening_rel == point.max_bucket_worsening_rel);
  CHECK(high.bucket_delta_rel == point.bucket_delta_rel);
}

TEST_CASE("normal quantile and the z of a confidence level", "[unit]") {
  CHECK(normal_quantile(0.95) == Approx(1.6448536269514722).epsilon(1e-12));
  CHECK(normal_quantile(0.9) == Approx(1.2815515655446004).epsilon(1e-12));
  CHECK(normal_quantile(0.975) == Approx(1.959963984540054).epsilon(1e-12));
  CHECK(normal_quantile(0.025) == Approx(-1.959963984540054).epsilon(1e-12));
  CHECK(std::abs(normal_quantile(0.5)) < 1e-15);
  for (double p : {1e-10, 0.01, 0.3, 0.7, 0.99, 1 - 1e-10}) {
    INFO("p " << p);
    CHECK(0.5 * std::erfc(-normal_quantile(p) / std::sqrt(2.0)) == Approx(p).epsilon(1e-12));
  }
  CHECK_THROWS_AS(normal_quantile(0), UsageError);
  CHECK_THROWS_AS(normal_quantile(1), UsageError);

  CHECK(confidence_z(0) == 0);  // off: point estimates
  CHECK(confidence_z(0.95) == Approx(1.6448536269514722).epsilon(1e-12));
  CHECK(confidence_z(0.9) == Approx(1.2815515655446004).epsilon(1e-12));
  CHECK(std::abs(confidence_z(0.5)) < 1e-15);
  CHECK_THROWS_WITH(confidence_z(0.3),
                    Catch::Contains("--confidence 0.3: expected 0 (point estimates) or"));
  CHECK_THROWS_AS(confidence_z(1), UsageError);
  CHECK_THROWS_AS(confidence_z(-0.1), UsageError);
}

TEST_CASE("evaluate_pass records per-window sums that add up to its totals", "[unit]") {
  c10::NoGradGuard no_grad;
  RandomWeightsOptions wo;
  wo.seed = 3;
  const Model m = random_model(test::tiny_config("gpt2"), "configs/tiny.json", wo);
  Decoder decoder(m);
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 70; ++i) ids.push_back((i * 7 + 3) % m.config.vocab_size);
  EvalProtocol p;
  p.ctx = 16;
  p.stride = 6;  // clusters of ceil(16 / 6) = 3 windows
  p.buckets = 4;
  p.batch = 3;
  const std::vector<Window> windows = plan_windows(static_cast<int64_t>(ids.size()), 16, 6);
  const PassResult r = evaluate_pass(decoder, ids, p, nullptr, "dense");
  CHECK(r.cluster_windows == 3);
  REQUIRE(r.window_nll.size() == windows.size());
  REQUIRE(r.window_scored.size() == windows.size());
  REQUIRE(r.window_bucket_nll.size() == windows.size() * 4);
  REQUIRE(r.window_bucket_count.size() == windows.size() * 4);
  double nll = 0;
  int64_t scored = 0;
  std::vector<double> bucket_nll(4, 0.0);
  std::vector<int64_t> bucket_count(4, 0);
  for (size_t w = 0; w < windows.size(); ++w) {
    // Plan order: window w scores its targets from first_scored to its end.
    CHECK(r.window_scored[w] == windows[w].end - windows[w].begin - windows[w].first_scored);
    nll += r.window_nll[w];
    scored += r.window_scored[w];
    int64_t targets = 0;
    for (size_t b = 0; b < 4; ++b) {
      bucket_nll[b] += r.window_bucket_nll[w * 4 + b];
      bucket_count[b] += r.window_bucket_count[w * 4 + b];
      targets += r.window_bucket_count[w * 4 + b];
    }
    CHECK(targets == windows[w].end - windows[w].begin - 1);
  }
  CHECK(scored == r.scored);
  CHECK(nll == Approx(r.nll_sum).epsilon(1e-12));
  CHECK(bucket_count == r.bucket_count);
  for (size_t b = 0; b < 4; ++b) CHECK(bucket_nll[b] == Approx(r.bucket_nll[b]).epsilon(1e-12));

  // Against a top-2 pass on the same windows: paired, so the standard errors are there.
  SparsitySpec spec = SparsitySpec::uniform_top_k(m.config.n_layer, m.config.n_head, 2);
  SparseAttentionHook hook(spec, m.config.n_layer, m.config.n_head, m.config.n_head_kv, p.ctx);
  const PassResult s = evaluate_pass(decoder, ids, p, &hook, "top-2");
  const Comparison c = compare(r, s, 1.0);
  CHECK(c.delta_se > 0);
  CHECK(c.delta_rel_upper > c.delta_rel);
  CHECK(c.delta_rel == Approx(std::expm1((s.nll_sum - r.nll_sum) / r.scored)).epsilon(1e-9));
}

TEST_CASE("Comparison::margin is the matching rule as one number", "[unit]") {
  Comparison c;
  c.delta_rel_upper = 0.004;
  c.max_bucket_worsening_upper = 0.006;
  CHECK(c.margin(0.005, 0.01) == Approx(0.8));  // the overall delta binds
  CHECK(c.meets(0.005, 0.01));
  CHECK(c.margin(0.005, 0.003) == Approx(2.0));  // the bucket binds
  CHECK_FALSE(c.meets(0.005, 0.003));
  // At the tolerance exactly: a match (<=).
  CHECK(c.margin(0.004, 0.006) == 1.0);
  CHECK(c.meets(0.004, 0.006));
  // Tolerance 0: any worsening is infinitely far, none (or an improvement) is 0.
  CHECK(std::isinf(c.margin(0, 0.01)));
  CHECK_FALSE(c.meets(0, 0.01));
  Comparison better;
  better.delta_rel_upper = -0.02;
  better.max_bucket_worsening_upper = 0;
  CHECK(better.margin(0, 0) == 0);
  CHECK(better.meets(0, 0));
  CHECK(better.margin(0.005, 0.01) == 0);  // the bucket term (never below 0) binds
  // NaN never matches, whichever side it is on.
  Comparison nan = c;
  nan.max_bucket_worsening_upper = std::nan("");
  CHECK(std::isinf(nan.margin(0.005, 0.01)));
  CHECK_FALSE(nan.meets(0.005, 0.01));
  nan = c;
  nan.delta_rel_upper = std::nan("");
  CHECK_FALSE(nan.meets(0.005, 0.01));
}
