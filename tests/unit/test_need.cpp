// Need curves and the allocation rules over them, pinned against naive computations: the per-row
// need (ties included) against a sort, the observer through attend(), the greedy allocation
// against brute force, equal-error budgets monotone in the target, band arithmetic.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "csa/attention/attention.h"
#include "csa/attention/sparse_hook.h"
#include "csa/calib/allocate.h"
#include "csa/calib/need.h"
#include "csa/calib/policy.h"
#include "csa/core/error.h"
#include "support.h"

using namespace csa;

namespace {

// Naive need of one row: rank keys by (p desc, index desc), renormalise the top k; top-p: the
// fewest ranked keys whose mass (summed in rank order) reaches p, at least 1.
void naive_need(const std::vector<float>& p, const std::vector<float>& v,
                const std::vector<float>& vr, int64_t D, const std::vector<int64_t>& grid,
                const std::vector<double>& masses, RowNeed& out) {
  const auto n = static_cast<int64_t>(p.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return p[a] != p[b] ? p[a] > p[b] : a > b; });
  auto output = [&](const std::vector<float>& x, int64_t k, std::vector<double>& o) {
    o.assign(static_cast<size_t>(D), 0.0);
    double m = 0;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = order[static_cast<size_t>(i)];
      m += p[j];
      for (int64_t d = 0; d < D; ++d) o[d] += static_cast<double>(p[j]) * x[j * D + d];
    }
    for (double& e : o) e /= m;
    return m;
  };
  std::vector<double> full, fullr, ok, okr;
  const double total = output(v, n, full);
  output(vr, n, fullr);
  double norm = 0;
  for (double x : full) norm += x * x;
  norm = std::sqrt(norm);
  out.mass_out.clear(), out.rel_err.clear(), out.res_err.clear();
  out.seg.assign(static_cast<size_t>(n), static_cast<int32_t>(grid.size()));
  for (size_t g = 0; g < grid.size(); ++g) {
    const int64_t k = std::min(grid[g], n);
    if (grid[g] >= n) {
      out.mass_out.push_back(0), out.rel_err.push_back(0), out.res_err.push_back(0);
      continue;
    }
    const double m = output(v, k, ok);
    output(vr, k, okr);
    double e = 0, er = 0;
    for (int64_t d = 0; d < D; ++d) {
      e += (ok[d] - full[d]) * (ok[d] - full[d]);
      er += (okr[d] - fullr[d]) * (okr[d] - fullr[d]);
    }
    out.mass_out.push_back((total - m) / total);
    out.rel_err.push_back(std::sqrt(e) / norm);
    out.res_err.push_back(er);
    for (int64_t i = 0; i < k; ++i) {
      auto& s = out.seg[static_cast<size_t>(order[static_cast<size_t>(i)])];
      s = std::min(s, static_cast<int32_t>(g));
    }
  }
  out.p_keys.clear(), out.p_rel_err.clear();
  for (double target : masses) {
    int64_t c = 0;
    double m = 0;
    while (c < n && m < target) m += p[order[static_cast<size_t>(c++)]];
    c = m >= target ? std::max<int64_t>(c, 1) : n;
    out.p_keys.push_back(c);
    if (c == n) {
      out.p_rel_err.push_back(0);
      continue;
    }
    output(v, c, ok);
    double e = 0;
    for (int64_t d = 0; d < D; ++d) e += (ok[d] - full[d]) * (ok[d] - full[d]);
    out.p_rel_err.push_back(std::sqrt(e) / norm);
  }
}

}  // namespace

TEST_CASE("budget grid and position bands", "[unit]") {
  CHECK(budget_grid(16) == std::vector<int64_t>{1, 2, 3, 4, 6, 8, 12, 16});
  CHECK(budget_grid(20) == std::vector<int64_t>{1, 2, 3, 4, 6, 8, 12, 16, 20});
  CHECK(budget_grid(2048).size() == 22);
  CHECK(position_bands(2048) == std::vector<int64_t>{0, 16, 32, 64, 128, 256, 512, 1024});
  CHECK(position_bands(16) == std::vector<int64_t>{0});
  // reads_in_band: sum over positions of min(k, pos + 1).
  for (int64_t lo : {0, 3, 16})
    for (int64_t hi : {lo, lo + 1, lo + 17, int64_t(64)})
      for (int64_t k : {1, 2, 5, 20, 100}) {
        double naive = 0;
        for (int64_t pos = lo; pos < hi; ++pos) naive += static_cast<double>(std::min(k, pos + 1));
        CHECK(reads_in_band(lo, hi, k) == naive);
      }
}

TEST_CASE("row need matches a sort-based reference, ties to the more recent key", "[unit]") {
  std::mt19937 rng(3);
  const std::vector<int64_t> grid = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32};
  const std::vector<double> masses = top_p_grid();
  RowNeed got, want;
  std::vector<uint64_t> keys;
  for (int64_t n : {1, 2, 5, 17, 31, 40}) {
    for (bool ties : {false, true}) {
      const int64_t D = 5;
      std::normal_distribution<float> N(0, 1);
      std::vector<float> p(static_cast<size_t>(n)), v(static_cast<size_t>(n * D)), vr(v.size());
      double z = 0;
      for (auto& x : p) {
        x = ties ? std::exp(std::round(N(rng))) : std::exp(N(rng));
        z += x;
      }
      for (auto& x : p) x = static_cast<float>(x / z);
      for (auto& x : v) x = N(rng);
      for (auto& x : vr) x = N(rng);
      row_need(p.data(), n, v.data(), vr.data(), D, grid, masses, got, keys);
      naive_need(p, v, vr, D, grid, masses, want);
      INFO("n " << n << " ties " << ties);
      CHECK(got.seg == want.seg);
      CHECK(got.p_keys == want.p_keys);
      for (size_t q = 0; q < masses.size(); ++q) {
        INFO("p " << masses[q]);
        CHECK(got.p_rel_err[q] == Approx(want.p_rel_err[q]).epsilon(1e-4).margin(1e-6));
      }
      for (size_t g = 0; g < grid.size(); ++g) {
        INFO("k " << grid[g]);
        CHECK(got.mass_out[g] == Approx(want.mass_out[g]).margin(1e-6));
        CHECK(got.rel_err[g] == Approx(want.rel_err[g]).epsilon(1e-4).margin(1e-6));
        CHECK(got.res_err[g] == Approx(want.res_err[g]).epsilon(1e-4).margin(1e-8));
      }
    }
  }
  // Hand case: p = [.5 .25 .125 .125], v one-hot per key (D = 4): top-1 keeps key 0 and its
  // output is e0; the full output is p itself. Ties at .125: top-3 keeps key 3 (more recent).
  std::vector<float> p = {0.5f, 0.25f, 0.125f, 0.125f}, v(16, 0.f);
  for (int j = 0; j < 4; ++j) v[j * 4 + j] = 1;
  // Top-p at .5 keeps key 0 (its mass reaches .5 exactly), at .6 and .75 keys 0-1, at .8 keys
  // 0, 1 and 3 (the tie at .125 goes to the more recent key), at .9 every key (no error).
  row_need(p.data(), 4, v.data(), v.data(), 4, {1, 3}, {0.5, 0.6, 0.75, 0.8, 0.9}, got, keys);
  CHECK(got.seg == std::vector<int32_t>{0, 1, 2, 1});
  CHECK(got.p_keys == std::vector<int64_t>{1, 2, 2, 3, 4});
  {
    const double o[4] = {0.5, 0.25, 0.125, 0.125};
    auto rel = [&](const double(&x)[4]) {
      double e = 0, nn = 0;
      for (int d = 0; d < 4; ++d) e += (x[d] - o[d]) * (x[d] - o[d]), nn += o[d] * o[d];
      return std::sqrt(e / nn);
    };
    const double top1[4] = {1, 0, 0, 0}, top2[4] = {2. / 3, 1. / 3, 0, 0},
                 top3[4] = {4. / 7, 2. / 7, 0, 1. / 7};
    CHECK(got.p_rel_err[0] == Approx(rel(top1)));  // = 1: |e0 - o| = |o| here
    CHECK(got.p_rel_err[1] == Approx(rel(top2)));
    CHECK(got.p_rel_err[2] == Approx(rel(top2)));
    CHECK(got.p_rel_err[3] == Approx(rel(top3)));
    CHECK(got.p_rel_err[4] == 0);
  }
  CHECK(got.mass_out[0] == Approx(0.5));
  CHECK(got.mass_out[1] == Approx(0.125));
  // top-1: o_1 - o = [.5, -.25, -.125, -.125] -> |.| / |o| with |o|² = .25+.0625+2*.015625.
  const double no = std::sqrt(0.25 + 0.0625 + 2 * 0.015625);
  CHECK(got.rel_err[0] == Approx(std::sqrt(0.25 + 0.0625 + 2 * 0.015625) / no));
  CHECK(got.res_err[0] == Approx(0.25 + 0.0625 + 2 * 0.015625));
}

TEST_CASE("the need observer through attend(): rows per band, union bounds, zero at full budget",
          "[unit]") {
  at::manual_seed(4);
  const int64_t B = 2, H = 4, Hkv = 2, T = 40, D = 8, C = 16;
  at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, Hkv, T, D}),
             v = at::randn({B, Hkv, T, D});
  NeedObserver obs(1, H, Hkv, D, T, {at::randn({C, H * D})});
  AttentionOptions o;
  o.max_score_bytes = B * H * 7 * T * 4;  // chunked: rows of several blocks land in one band
  attend(q, k, v, 0.4, 0, &obs, o);
  NeedCurves c = obs.result();
  REQUIRE(c.band_start == std::vector<int64_t>{0, 16, 32});
  const int64_t G = c.n_grid();
  for (int64_t h = 0; h < H; ++h) {
    // Bands of at most kRowsPerBand positions: every query row is measured.
    CHECK(c.rows[static_cast<size_t>(h * 3 + 0)] == 16 * B);
    CHECK(c.rows[static_cast<size_t>(h * 3 + 2)] == 8 * B);
    for (int64_t b = 0; b < 3; ++b) {
      // The last grid budget (the context) reads everything: no error.
      CHECK(c.rel_err[c.at(0, h, b, G - 1)] == 0);
      // Mass left out never grows with the budget.
      for (int64_t g = 1; g < G; ++g)
        CHECK(c.mass_out[c.at(0, h, b, g)] <= c.mass_out[c.at(0, h, b, g - 1)] + 1e-12);
    }
  }
  // The union of a group's top-k sets holds between k (capped by the keys seen) and 2k.
  for (int64_t g = 0; g < G; ++g) {
    const double kk = static_cast<double>(c.grid[static_cast<size_t>(g)]);
    const double u = c.kv_union[c.at_kv(0, 1, 2, g)];  // band [32, 40): 33..40 keys
    CHECK(u >= std::min(kk, 33.0) - 1e-9);
    CHECK(u <= std::min(2 * kk, 40.0) + 1e-9);
  }
  // JSON round trip.
  NeedCurves back = NeedCurves::from_json(c.to_json(), "round trip", 1, H, Hkv);
  CHECK(back.grid == c.grid);
  CHECK(back.rel_err.size() == c.rel_err.size());
  CHECK(back.res_err[c.at(0, 1, 1, 3)] == Approx(c.res_err[c.at(0, 1, 1, 3)]).epsilon(1e-4));
  CHECK_THROWS_AS(NeedCurves::from_json(c.to_json(), "x", 2, H, Hkv), FormatError);
  // Top-p curves: keys grow with the mass, within [1, keys seen]; they survive the round trip;
  // curves without them (calibrated before) still read; keys without masses name the field.
  REQUIRE(c.p_grid == top_p_grid());
  for (int64_t h = 0; h < H; ++h)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t q = 0; q < c.n_p(); ++q) {
        const double keys = c.p_keys[c.at_p(0, h, b, q)];
        CHECK(keys >= 1);
        CHECK(keys <= static_cast<double>(c.band_end(b)));
        if (q > 0) CHECK(keys >= c.p_keys[c.at_p(0, h, b, q - 1)]);
      }
  CHECK(back.p_grid == c.p_grid);
  CHECK(back.p_keys[c.at_p(0, 2, 1, 7)] == Approx(c.p_keys[c.at_p(0, 2, 1, 7)]).epsilon(1e-4));
  CHECK(back.p_rel_err[c.at_p(0, 2, 1, 7)] ==
        Approx(c.p_rel_err[c.at_p(0, 2, 1, 7)]).epsilon(1e-4));
  Json old = c.to_json();
  for (const char* key : {"p_grid", "p_keys", "p_rel_err", "p_description"}) old.erase(key);
  CHECK_FALSE(NeedCurves::from_json(old, "old", 1, H, Hkv).has_top_p());
  old["p_keys"] = c.to_json()["p_keys"];
  CHECK_THROWS_WITH(NeedCurves::from_json(old, "old.json", 1, H, Hkv),
                    Catch::Contains("old.json") && Catch::Contains("p_grid"));
  Json bad = c.to_json();
  bad["p_grid"][3] = 1.5;
  CHECK_THROWS_AS(NeedCurves::from_json(bad, "bad", 1, H, Hkv), FormatError);
}

TEST_CASE("top-p curves count the keys the top_p rule keeps", "[unit]") {
  // Every row measured (bands of <= 256 positions): the curves' mean keys times the rows are the
  // keys the attention path reads under top_p at that mass, head by head.
  at::manual_seed(6);
  const int64_t B = 2, H = 3, T = 40, D = 8, C = 8;
  at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, H, T, D}), v = at::randn({B, H, T, D});
  NeedObserver obs(1, H, H, D, T, {at::randn({C, H * D})});
  attend(q, k, v, 0.5, 0, &obs);
  const NeedCurves c = obs.result();
  const int64_t NB = c.n_bands();
  for (int64_t qi = 0; qi < c.n_p(); qi += 3) {
    INFO("p " << c.p_grid[static_cast<size_t>(qi)]);
    SparseAttentionHook hook(SparsitySpec::top_p(1, H, c.p_grid[static_cast<size_t>(qi)]), 1, H, H,
                             T);
    attend(q, k, v, 0.5, 0, &hook);
    for (int64_t h = 0; h < H; ++h) {
      double predicted = 0;
      for (int64_t b = 0; b < NB; ++b)
        predicted += c.p_keys[c.at_p(0, h, b, qi)] * c.rows[static_cast<size_t>(h * NB + b)];
      CHECK(hook.tally().q_sparse[0][static_cast<size_t>(h)] == Approx(predicted).margin(1e-6));
    }
  }
}

TEST_CASE("the need observer's tensor path measures what its row path measures", "[unit]") {
  // The row path (row_need, the CPU default) and the tensor path (the CUDA default, run here on
  // the CPU) on the same attention: bands with every row and strided ones (T > 2 * 256), GQA,
  // ties (small-integer scores give equal probabilities), several blocks of query rows.
  at::manual_seed(5);
  const int64_t B = 2, H = 4, Hkv = 2, T = 1100, D = 8, C = 16;
  for (bool ties : {false, true}) {
    INFO("ties " << ties);
    at::Tensor q = test::attention_input({B, H, T, D}, ties);
    at::Tensor k = test::attention_input({B, Hkv, T, D}, ties);
    at::Tensor v = at::randn({B, Hkv, T, D});
    const std::vector<at::Tensor> wo = {at::randn({C, H * D})};
    NeedObserver rows(1, H, Hkv, D, T, wo), tensors(1, H, Hkv, D, T, wo);
    tensors.set_tensor_path(true, ties ? int64_t(1) << 20 : int64_t(256) << 20);  // ~11 rows
    AttentionOptions o;
    o.max_score_bytes = B * H * 300 * T * 4;  // blocks of 300 query rows
    attend(q, k, v, 0.5, 0, &rows, o);
    attend(q, k, v, 0.5, 0, &tensors, o);
    const NeedCurves a = rows.result(), b = tensors.result();
    REQUIRE(a.band_start == b.band_start);
    CHECK(a.rows == b.rows);
    CHECK(a.kv_union == b.kv_union);
    REQUIRE(a.p_grid == b.p_grid);
    REQUIRE(a.p_keys.size() == b.p_keys.size());
    for (size_t i = 0; i < a.p_keys.size(); ++i) {
      INFO("top-p entry " << i);
      CHECK(b.p_keys[i] == Approx(a.p_keys[i]).margin(1e-9));
      CHECK(b.p_rel_err[i] == Approx(a.p_rel_err[i]).epsilon(1e-4).margin(1e-7));
    }
    REQUIRE(a.rel_err.size() == b.rel_err.size());
    for (size_t i = 0; i < a.rel_err.size(); ++i) {
      INFO("entry " << i);
      CHECK(b.mass_out[i] == Approx(a.mass_out[i]).margin(1e-9));
      CHECK(b.rel_err[i] == Approx(a.rel_err[i]).epsilon(1e-4).margin(1e-7));
      CHECK(b.res_err[i] == Approx(a.res_err[i]).epsilon(1e-4).margin(1e-9));
      // The 95th percentile from log-spaced bins: a row at a bin's edge may land in its
      // neighbour (sums in another order), at most a bin's width (10^(1/6)).
      CHECK(b.rel_err_p95[i] <= a.rel_err_p95[i] * 1.47 + 1e-12);
      CHECK(b.rel_err_p95[i] >= a.rel_err_p95[i] / 1.47 - 1e-12);
    }
  }
}

namespace {

// Curves by hand: one layer, H heads (MHA), one band, a grid, decreasing errors.
NeedCurves hand_curves(int64_t H, int64_t ctx, const std::vector<std::vector<double>>& err) {
  NeedCurves c;
  c.n_layer = 1, c.n_head = H, c.n_head_kv = H, c.ctx = ctx;
  c.grid = budget_grid(ctx);
  c.band_start = {0};
  c.rows.assign(static_cast<size_t>(H), 100);
  for (int64_t h = 0; h < H; ++h)
    for (size_t g = 0; g < c.grid.size(); ++g) c.res_err.push_back(err[static_cast<size_t>(h)][g]);
  c.rel_err = c.rel_err_p95 = c.mass_out = c.res_err;
  c.residual_ms.assign(1, 1.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t k : c.grid) c.kv_union.push_back(static_cast<double>(k));
  return c;
}

}  // namespace

TEST_CASE("greedy allocation is optimal for its reads (brute force)", "[unit]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> U(0, 1);
  const int64_t H = 3, ctx = 16;  // grid 1 2 3 4 6 8 12 16
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<double>> err(H);
    for (auto& e : err) {
      double x = 1 + 10 * U(rng);
      for (size_t g = 0; g < budget_grid(ctx).size(); ++g) {
        e.push_back(g + 1 == budget_grid(ctx).size() ? 0.0 : x);
        x *= U(rng);  // decreasing, not necessarily convex
      }
    }
    NeedCurves c = hand_curves(H, ctx, err);
    // balanced over one band is greedy: every Lagrangian choice is optimal for its own reads
    for (auto [kind, target] :
         std::vector<std::pair<AllocationKind, double>>{{AllocationKind::kGreedy, 0.05},
                                                        {AllocationKind::kGreedy, 0.2},
                                                        {AllocationKind::kGreedy, 0.5},
                                                        {AllocationKind::kGreedy, 0.8},
                                                        {AllocationKind::kBalanced, 0.2},
                                                        {AllocationKind::kBalanced, 0.5}}) {
      AllocationRule r;
      r.kind = kind;
      r.reads = target;
      NeedAllocation a = allocate_need(c, r);
      // Brute force over every assignment with at most the greedy's reads.
      const auto G = c.grid.size();
      double best = 1e300;
      for (size_t i = 0; i < G; ++i)
        for (size_t j = 0; j < G; ++j)
          for (size_t k = 0; k < G; ++k) {
            const size_t pick[3] = {i, j, k};
            double reads = 0, e = 0;
            for (int h = 0; h < 3; ++h) {
              reads += reads_in_band(0, ctx, c.grid[pick[h]]);
              e += 16 * err[static_cast<size_t>(h)][pick[h]];
            }
            if (reads / (3 * reads_in_band(0, ctx, ctx)) <= a.reads_fraction + 1e-12)
              best = std::min(best, e);
          }
      INFO("trial " << trial << " " << allocation_name(kind) << " target " << target);
      CHECK(a.error <= best + 1e-9);
      CHECK(a.reads_fraction >= std::min(target, 1.0) - 1e-12);
    }
  }
}

TEST_CASE("equal-error, greedy and balanced budgets grow with the target reads", "[unit]") {
  std::vector<std::vector<double>> err = {{5, 3, 2, 1, 0.5, 0.3, 0.1, 0},
                                          {1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0},
                                          {9, 1, 0.1, 0, 0, 0, 0, 0}};
  NeedCurves c = hand_curves(3, 16, err);
  for (AllocationKind kind :
       {AllocationKind::kEqualError, AllocationKind::kGreedy, AllocationKind::kBalanced}) {
    std::vector<int64_t> prev(3, 0);
    double prev_reads = 0;
    for (double target = 0.05; target <= 1.0; target += 0.05) {
      AllocationRule r;
      r.kind = kind;
      r.reads = target;
      NeedAllocation a = allocate_need(c, r);
      INFO(allocation_name(kind) << " target " << target);
      CHECK(a.reads_fraction >= prev_reads);
      prev_reads = a.reads_fraction;
      for (int64_t h = 0; h < 3; ++h) {
        const int64_t k = a.schedules[0].k[static_cast<size_t>(h)][0];
        CHECK(k >= prev[static_cast<size_t>(h)]);
        prev[static_cast<size_t>(h)] = k;
      }
    }
  }
  // Equal error: every head reaches the same error level.
  AllocationRule r;
  r.kind = AllocationKind::kEqualError;
  r.reads = 0.3;
  NeedAllocation a = allocate_need(c, r);
  double worst = 0;
  for (int64_t h = 0; h < 3; ++h) {
    const int64_t k = a.schedules[0].k[static_cast<size_t>(h)][0];
    const auto g = std::find(c.grid.begin(), c.grid.end(), k) - c.grid.begin();
    worst = std::max(worst, err[static_cast<size_t>(h)][static_cast<size_t>(g)]);
    // One step down would exceed that level (the smallest budget meeting it).
    if (g > 0) CHECK(err[static_cast<size_t>(h)][static_cast<size_t>(g - 1)] > worst - 1e-12);
  }
  CHECK_THROWS_AS(allocate_need(c, AllocationRule{}), UsageError);  // proportional: not need-based
}

TEST_CASE("band weights move budgets to the weighted band; adaptation follows the buckets",
          "[unit]") {
  // One head, two bands of a 32-position window ([0, 16) and [16, 32)), the same error curve in
  // both: a weight on a band is what makes its budget larger.
  NeedCurves c;
  c.n_layer = 1, c.n_head = 1, c.n_head_kv = 1, c.ctx = 32;
  c.grid = budget_grid(32);  // 1 2 3 4 6 8 12 16 24 32
  c.band_start = {0, 16};
  c.rows = {16, 16};
  const std::vector<double> curve = {8, 4, 3, 2, 1.5, 1, 0.5, 0.2, 0.1, 0};
  for (int b = 0; b < 2; ++b) c.rel_err.insert(c.rel_err.end(), curve.begin(), curve.end());
  c.rel_err_p95 = c.mass_out = c.res_err = c.rel_err;
  c.residual_ms = {1.0};
  for (int b = 0; b < 2; ++b)
    for (int64_t k : c.grid) c.kv_union.push_back(static_cast<double>(std::min<int64_t>(k, 32)));
  AllocationRule r;
  r.kind = AllocationKind::kGreedy;
  r.reads = 0.3;
  auto budgets = [&](const std::vector<double>& w) {
    r.band_weight = w;
    const NeedAllocation a = allocate_need(c, r);
    return a.schedules[0].k[0];
  };
  const auto even = budgets({});
  const auto late = budgets({1, 50});
  const auto early = budgets({50, 1});
  CHECK(late[1] > even[1]);
  CHECK(early[0] >= even[0]);
  CHECK(early[1] < late[1]);
  CHECK(budgets({1, 1}) == even);  // unit weights are no weights
  // Predicted error scales with the weights.
  r.band_weight.clear();
  const NeedAllocation a = allocate_need(c, r);
  const double e1 = predicted_error(c, NeedMetric::kRelErr, a.schedules);
  CHECK(predicted_error(c, NeedMetric::kRelErr, a.schedules, {2, 2}) == Approx(2 * e1));
  CHECK_THROWS_AS(budgets({1, 2, 3}), UsageError);
  CHECK_THROWS_AS(budgets({1, 0}), UsageError);

  // Adaptation: 4 buckets of a 32-position window; bucket 3 (positions 24..31, in band 1) binds.
  const std::vector<int64_t> starts = {0, 16};
  std::vector<double> w =
      adapt_band_weights({}, starts, {{0.002, -0.001, 0.004, 0.015}}, 32, 0.01, 0.5);
  REQUIRE(w.size() == 2);
  CHECK(w[1] > w[0]);
  CHECK(w[0] * w[1] == Approx(1.0));  // geometric mean 1
  // e = {0.2, 1.5}: mean 0.85, each moves by 0.5 * 0.65 either way.
  CHECK(w[1] / w[0] == Approx(std::exp(0.5 * 1.3)));
  // The worst slice counts; a band the window does not reach keeps its weight.
  std::vector<double> w2 = adapt_band_weights(
      {1, 1, 1}, {0, 16, 64}, {{0.0, 0.0, 0.0, 0.0}, {0.02, 0.0, 0.0, 0.0}}, 32, 0.01, 0.5);
  CHECK(w2[0] > w2[1]);
  CHECK(w2[2] / w2[1] == Approx(std::exp(0.5)));  // band 1 moved by -0.5 (clamped at -1 step)
  CHECK_THROWS_AS(adapt_band_weights({1}, starts, {}, 32, 0.01, 0.5), UsageError);
}

namespace {

// One head, a 32-position window in two bands of 16 with the same curves (rel_err 1 / (g + 1)
// at grid point g, 0 at the full budget), the greedy rule.
Policy two_band_policy() {
  Policy p;
  p.model = {
      {"name", "hand"}, {"family", "llama"}, {"n_layer", 1}, {"n_head", 1}, {"n_head_kv", 1}};
  p.stats.assign(1, std::vector<CellStats>(1));
  NeedCurves c;
  c.n_layer = 1, c.n_head = 1, c.n_head_kv = 1, c.ctx = 32;
  c.grid = budget_grid(32);
  c.band_start = {0, 16};
  c.rows = {16, 16};
  for (int b = 0; b < 2; ++b)
    for (size_t g = 0; g < c.grid.size(); ++g)
      c.rel_err.push_back(g + 1 == c.grid.size() ? 0.0 : 1.0 / static_cast<double>(g + 1));
  c.rel_err_p95 = c.mass_out = c.res_err = c.rel_err;
  c.residual_ms = {1.0};
  for (int b = 0; b < 2; ++b)
    for (int64_t k : c.grid) c.kv_union.push_back(static_cast<double>(k));
  p.need = c;
  p.rule.kind = AllocationKind::kGreedy;
  return p;
}

}  // namespace

TEST_CASE("a band-weight step reports whether the allocation at the probe's level changed",
          "[unit]") {
  // Band 0's buckets (positions 0-15 of 32: buckets 0-7 of 16) 5% worse than dense, band 1's
  // 5% better: band 0's weight rises. A step of 0.5 (band 0 weighs e times band 1) leaves the
  // grid's budgets at 30% reads where they were; a step of 2 (e^4 times) moves keys to band 0.
  std::vector<double> buckets(16, -0.05);
  std::fill(buckets.begin(), buckets.begin() + 8, 0.05);
  Policy p = two_band_policy();
  const auto before = p.reallocated(0.3).budgets;
  CHECK_FALSE(p.adapt_band_weights_at(0.3, {buckets}, 32, 0.01, 0.5));
  CHECK(p.rule.band_weight[0] > p.rule.band_weight[1]);
  CHECK(p.reallocated(0.3).budgets[0].k == before[0].k);
  p = two_band_policy();
  CHECK(p.adapt_band_weights_at(0.3, {buckets}, 32, 0.01, 2.0));
  CHECK(p.reallocated(0.3).budgets[0].k != before[0].k);
  // At every key (reads 1) no weight moves a budget: the weights change, the allocation does
  // not, and the step says so (a sweep would otherwise measure the same probe again).
  Policy q = two_band_policy();
  const auto full = q.reallocated(1.0).budgets;
  CHECK_FALSE(q.adapt_band_weights_at(1.0, {buckets}, 32, 0.01, 0.5));
  CHECK(q.rule.band_weight[0] > q.rule.band_weight[1]);
  CHECK(q.reallocated(1.0).budgets[0].k == full[0].k);
}

TEST_CASE("a policy's band weights survive a JSON round trip; bad ones name the field", "[unit]") {
  Policy p = two_band_policy();
  p.rule.band_weight = {0.5, 2.0};
  Policy q = p.reallocated(0.3);
  Json j = q.to_json();
  Policy back = Policy::from_json(j, "round trip");
  CHECK(back.rule.band_weight == std::vector<double>{0.5, 2.0});
  CHECK(back.budgets[0].k == q.budgets[0].k);
  j["allocation"]["band_weights"] = {1.0};
  CHECK_THROWS_WITH(Policy::from_json(j, "p.json"),
                    Catch::Contains("p.json") && Catch::Contains("band_weights"));
  j["allocation"]["band_weights"] = {1.0, -1.0};
  CHECK_THROWS_AS(Policy::from_json(j, "p.json"), FormatError);
  j["allocation"].erase("band_weights");
  CHECK(Policy::from_json(j, "p.json").rule.band_weight.empty());
}

namespace {

// Top-p curves by hand on top of hand_curves: one band of a 16-position window, masses
// {.5, .8, .9, .99}, keys and errors per head.
NeedCurves hand_top_p(const std::vector<std::vector<double>>& keys,
                      const std::vector<std::vector<double>>& err) {
  const auto H = static_cast<int64_t>(keys.size());
  NeedCurves c = hand_curves(
      H, 16, std::vector<std::vector<double>>(static_cast<size_t>(H), std::vector<double>(8, 0.0)));
  c.p_grid = {0.5, 0.8, 0.9, 0.99};
  for (int64_t h = 0; h < H; ++h)
    for (size_t q = 0; q < c.p_grid.size(); ++q) {
      c.p_keys.push_back(keys[static_cast<size_t>(h)][q]);
      c.p_rel_err.push_back(err[static_cast<size_t>(h)][q]);
    }
  return c;
}

}  // namespace

TEST_CASE("greedy_p: one mass per head, optimal for its reads (brute force), growing", "[unit]") {
  std::mt19937 rng(12);
  std::uniform_real_distribution<double> U(0, 1);
  const int64_t H = 3;
  const double window = reads_in_band(0, 16, 16);  // 136 keys per head
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<double>> keys(H), err(H);
    for (int64_t h = 0; h < H; ++h) {
      double k = 1 + 3 * U(rng), e = 0.2 + U(rng);
      for (int q = 0; q < 4; ++q) {
        keys[static_cast<size_t>(h)].push_back(k);
        err[static_cast<size_t>(h)].push_back(e);
        k = std::min(8.5, k + 2 * U(rng));  // growing with the mass, below the window's mean
        e *= U(rng);                        // falling, not necessarily convex
      }
    }
    const NeedCurves c = hand_top_p(keys, err);
    std::vector<double> prev(H, 0);
    for (double target : {0.05, 0.1, 0.2, 0.3, 0.5, 0.8}) {
      AllocationRule r;
      r.kind = AllocationKind::kGreedyP;
      r.banded = false;
      r.reads = target;
      const NeedAllocation a = allocate_need(c, r);
      REQUIRE(a.p.size() == 1);
      REQUIRE(a.schedules.empty());
      // Brute force over every mass of every head (option 4: p = 1, every key).
      double best = 1e300;
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 5; ++j)
          for (int l = 0; l < 5; ++l) {
            const int pick[3] = {i, j, l};
            double reads = 0, e = 0;
            for (int h = 0; h < 3; ++h) {
              reads += pick[h] == 4 ? window : 16 * keys[static_cast<size_t>(h)][pick[h]];
              e += pick[h] == 4 ? 0 : 16 * err[static_cast<size_t>(h)][pick[h]];
            }
            if (reads / (3 * window) <= a.reads_fraction + 1e-12) best = std::min(best, e);
          }
      INFO("trial " << trial << " target " << target);
      CHECK(a.error <= best + 1e-9);
      CHECK(a.reads_fraction >= std::min(target, 1.0) - 1e-12);
      CHECK(a.kv_reads_fraction == a.reads_fraction);  // MHA: the KV side is the query side
      CHECK(predicted_error_top_p(c, a.p) == Approx(a.error));
      for (int64_t h = 0; h < H; ++h) {
        const double p = a.p[0][static_cast<size_t>(h)];
        CHECK((p == 1.0 || std::find(c.p_grid.begin(), c.p_grid.end(), p) != c.p_grid.end()));
        CHECK(p >= prev[static_cast<size_t>(h)]);
        prev[static_cast<size_t>(h)] = p;
      }
    }
  }
  // What the rule refuses: no top-p curves, a band per head, another metric.
  AllocationRule r;
  r.kind = AllocationKind::kGreedyP;
  r.banded = false;
  r.reads = 0.3;
  CHECK_THROWS_AS(allocate_need(hand_curves(1, 16, {std::vector<double>(8, 0.0)}), r), UsageError);
  const NeedCurves c = hand_top_p({{1, 2, 3, 4}}, {{0.5, 0.3, 0.2, 0.1}});
  r.banded = true;
  CHECK_THROWS_AS(allocate_need(c, r), UsageError);
  r.banded = false;
  r.metric = NeedMetric::kResRel;
  CHECK_THROWS_AS(allocate_need(c, r), UsageError);
  // Interpolated between masses; none above 1.
  CHECK(predicted_error_top_p(c, {{0.85}}) == Approx(16 * 0.25));
  CHECK(predicted_error_top_p(c, {{1.0}}) == 0);
}

TEST_CASE("a top_p policy: mode, masses, JSON round trip, errors naming the field", "[unit]") {
  Policy p;
  p.model = {
      {"name", "hand"}, {"family", "llama"}, {"n_layer", 1}, {"n_head", 2}, {"n_head_kv", 2}};
  p.stats.assign(1, std::vector<CellStats>(2));
  p.need = hand_top_p({{1, 2, 3, 4}, {2, 5, 8, 9}}, {{0.5, 0.3, 0.2, 0.1}, {0.9, 0.2, 0.1, 0.01}});
  AllocationRule r;
  r.kind = AllocationKind::kGreedyP;
  r.banded = false;
  r.reads = 0.3;
  const Policy q = p.with_rule(r, "hand.json");
  REQUIRE(q.mode() == SparsityKind::kTopP);
  REQUIRE(q.top_p.size() == 1);
  CHECK(q.budgets.empty());
  CHECK(q.rule_name() == "greedy_p:rel_err");
  const SparsitySpec spec = q.sparsity();
  CHECK(spec.kind == SparsityKind::kTopP);
  CHECK(spec.p == q.top_p);
  CHECK(q.predicted_error() == Approx(predicted_error_top_p(*q.need, q.top_p)));
  Json j = q.to_json();
  CHECK(j["mode"] == "top_p");
  CHECK_FALSE(j.contains("budgets"));
  const Policy back = Policy::from_json(j, "round trip");
  CHECK(back.top_p == q.top_p);
  CHECK(back.rule.kind == AllocationKind::kGreedyP);
  CHECK(back.need->p_grid == q.need->p_grid);
  // Back to a top-k rule: budgets again, no masses.
  AllocationRule g;
  g.kind = AllocationKind::kGreedy;
  g.reads = 0.3;
  CHECK(q.with_rule(g).mode() == SparsityKind::kTopK);
  CHECK(q.with_rule(g).top_p.empty());
  // Errors name the file and the field.
  Json bad = j;
  bad["p"][0][1] = 1.5;
  CHECK_THROWS_WITH(Policy::from_json(bad, "p.json"),
                    Catch::Contains("p.json") && Catch::Contains("'p'"));
  bad = j;
  bad.erase("p");
  CHECK_THROWS_WITH(Policy::from_json(bad, "p.json"), Catch::Contains("'p'"));
  bad = j;
  bad["mode"] = "top_k";
  CHECK_THROWS_WITH(Policy::from_json(bad, "p.json"), Catch::Contains("mode"));
  bad = j;
  bad["allocation"]["banded"] = true;
  CHECK_THROWS_WITH(Policy::from_json(bad, "p.json"), Catch::Contains("banded"));
  bad = j;
  bad["need_curves"].erase("p_grid");
  bad["need_curves"].erase("p_keys");
  bad["need_curves"].erase("p_rel_err");
  CHECK_THROWS_WITH(Policy::from_json(bad, "p.json"), Catch::Contains("need_curves"));
  // A policy calibrated before the top-p curves cannot take the rule.
  Policy old = p;
  old.need->p_grid.clear();
  CHECK_THROWS_AS(old.with_rule(r, "old.json"), InputError);
}
