// The math of calibration and evaluation pinned against hand-computed cases and naive references:
// diffuseness statistics, top-k / top-p masks (ties -> the most recent key), reads accounting
// (query side and the KV-side union under GQA), budget allocation, sliding-window planning.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include "csa/attention/attention.h"
#include "csa/attention/mask.h"
#include "csa/attention/select.h"
#include "csa/attention/sparse_hook.h"
#include "csa/calib/policy.h"
#include "csa/calib/stats.h"
#include "csa/core/error.h"
#include "csa/eval/perplexity.h"
#include "support.h"

using namespace csa;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using Grid = std::vector<std::vector<int64_t>>;

// A [1, H, T, S] float tensor from nested rows; entries past a row's causal end become -inf.
at::Tensor scores_tensor(const std::vector<std::vector<std::vector<float>>>& heads,
                         int64_t q_pos0) {
  const auto H = static_cast<int64_t>(heads.size());
  const auto T = static_cast<int64_t>(heads[0].size());
  const auto S = static_cast<int64_t>(heads[0][0].size());
  at::Tensor t = at::empty({1, H, T, S}, at::kFloat);
  auto a = t.accessor<float, 4>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < T; ++r)
      for (int64_t s = 0; s < S; ++s)
        a[0][h][r][s] =
            s <= q_pos0 + r
                ? heads[static_cast<size_t>(h)][static_cast<size_t>(r)][static_cast<size_t>(s)]
                : -kInf;
  return t;
}

// Which keys of each row stayed finite: [B*H*T] sets of key indices.
std::vector<std::set<int64_t>> kept_sets(const at::Tensor& scores) {
  at::Tensor s = scores.contiguous();
  const int64_t rows = s.numel() / s.size(-1), S = s.size(-1);
  const float* p = s.data_ptr<float>();
  std::vector<std::set<int64_t>> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < S; ++j)
      if (std::isfinite(p[r * S + j])) out[static_cast<size_t>(r)].insert(j);
  return out;
}

// Key order of the reference: higher value first, ties -> the more recent (larger) index first.
std::vector<int64_t> ranked(const std::vector<float>& v, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    const float x = v[static_cast<size_t>(a)], y = v[static_cast<size_t>(b)];
    return x != y ? x > y : a > b;
  });
  return idx;
}

// Naive top-k of one causal row of n keys.
std::set<int64_t> naive_top_k(const std::vector<float>& row, int64_t n, int64_t k) {
  std::vector<int64_t> order = ranked(row, n);
  return std::set<int64_t>(order.begin(), order.begin() + std::min(k, n));
}

// Naive top-p of one causal row: the fewest keys, in the reference order, whose softmax mass
// (float probabilities as the hook sees them, summed in double) reaches p.
std::set<int64_t> naive_top_p(const std::vector<float>& probs, int64_t n, double p) {
  std::vector<int64_t> order = ranked(probs, n);
  std::set<int64_t> keep;
  double mass = 0;
  for (int64_t j : order) {
    keep.insert(j);
    mass += probs[static_cast<size_t>(j)];
    if (mass >= p) break;
  }
  return keep;
}

// Masks a block of layer 0 the way the explicit attention path does and reports the kept keys
// to the hook.
void apply_block(SparseAttentionHook& hook, at::Tensor& scores, int64_t q_pos0, int64_t n_kv) {
  REQUIRE(hook.rule(0) != nullptr);
  mask_to_rule(scores, *hook.rule(0), q_pos0);
  auto [q, kv] = count_kept(scores, n_kv);
  hook.count_reads(0, q, kv);
}

std::vector<float> row_of(const at::Tensor& t, int64_t b, int64_t h, int64_t r) {
  at::Tensor row = t[b][h][r].contiguous();
  return std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Diffuseness statistics

TEST_CASE("row diffuseness: exp(entropy) and keys-to-mass on hand-computed rows", "[unit]") {
  std::vector<float> scratch;
  auto eff = [&](const std::vector<float>& p, double tau) {
    auto [h, k] = row_diffuseness(p.data(), static_cast<int64_t>(p.size()), tau, scratch);
    return std::make_pair(std::exp(h), k);
  };
  // Uniform over 4 keys: H = ln 4, exp(H) = 4; 0.25 per key, so tau 0.5 -> 2, 0.75 -> 3
  // (reaching tau exactly counts), 0.9 -> 4.
  {
    std::vector<float> u(4, 0.25f);
    CHECK(eff(u, 0.5).first == Approx(4.0).epsilon(1e-9));
    CHECK(eff(u, 0.5).second == 2);
    CHECK(eff(u, 0.75).second == 3);
    CHECK(eff(u, 0.9).second == 4);
    CHECK(eff(u, 1.0).second == 4);
  }
  // One-hot: H = 0, one key for every tau; zero-probability keys add nothing to H.
  CHECK(eff({0, 1, 0}, 0.9).first == Approx(1.0));
  CHECK(eff({0, 1, 0}, 0.9).second == 1);
  CHECK(eff({1}, 1.0).second == 1);
  // [1/2, 1/4, 1/8, 1/8]: H = 1.75 ln 2 -> exp(H) = 2^1.75; mass 0.5 | 0.75 | 0.875 | 1.
  {
    std::vector<float> p = {0.125f, 0.5f, 0.125f, 0.25f};  // order does not matter
    CHECK(eff(p, 0.5).first == Approx(std::pow(2.0, 1.75)).epsilon(1e-9));
    CHECK(eff(p, 0.5).second == 1);
    CHECK(eff(p, 0.6).second == 2);
    CHECK(eff(p, 0.8).second == 3);
    CHECK(eff(p, 0.9).second == 4);
  }
  // Five equal keys (0.2 each): tau 0.41 needs 3, tau 0.39 needs 2.
  CHECK(eff(std::vector<float>(5, 0.2f), 0.41).second == 3);
  CHECK(eff(std::vector<float>(5, 0.2f), 0.39).second == 2);
}

TEST_CASE("keys-to-mass matches a sort-based reference on random rows", "[unit]") {
  at::manual_seed(11);
  std::vector<float> scratch;
  for (int64_t n : {1, 2, 3, 7, 64, 301}) {
    for (bool ties : {false, true}) {
      at::Tensor x = at::randn({n});
      if (ties) x = x.round();  // many equal probabilities
      at::Tensor p = at::softmax(x, 0).contiguous();
      std::vector<float> v(p.data_ptr<float>(), p.data_ptr<float>() + n);
      for (double tau : {0.1, 0.5, 0.9, 0.99}) {
        INFO("n " << n << " ties " << ties << " tau " << tau);
        CHECK(count_for_mass(v.data(), n, tau, scratch) ==
              static_cast<int64_t>(naive_top_p(v, n, tau).size()));
      }
    }
  }
}

namespace {

// The quickselect that count_for_mass used before its bitwise search (three-way partitions,
// double sums in partition order), kept as a second reference: the counts must not move.
int64_t quickselect_count_for_mass(const float* p, int64_t n, double mass) {
  std::vector<float> v(p, p + n);
  double need = mass;
  int64_t taken = 0;
  size_t lo = 0, hi = v.size();
  while (lo < hi) {
    if (need <= 0) return taken;
    float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1];
    float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    size_t gt_end = lo, i = lo, lt_begin = hi;
    while (i < lt_begin) {
      if (v[i] > pivot) {
        std::swap(v[i++], v[gt_end++]);
      } else if (v[i] < pivot) {
        std::swap(v[i], v[--lt_begin]);
      } else {
        ++i;
      }
    }
    double gt_mass = 0;
    for (size_t j = lo; j < gt_end; ++j) gt_mass += v[j];
    if (gt_mass >= need) {
      hi = gt_end;
      continue;
    }
    need -= gt_mass;
    taken += static_cast<int64_t>(gt_end - lo);
    const size_t n_eq = lt_begin - gt_end;
    const double eq_mass = static_cast<double>(pivot) * static_cast<double>(n_eq);
    if (eq_mass >= need) {
      if (pivot <= 0) return taken;
      int64_t m = static_cast<int64_t>(std::ceil(need / static_cast<double>(pivot) - 1e-12));
      return taken + std::max<int64_t>(1, std::min<int64_t>(m, static_cast<int64_t>(n_eq)));
    }
    need -= eq_mass;
    taken += static_cast<int64_t>(n_eq);
    lo = lt_begin;
  }
  return need <= 0 ? taken : n;
}

}  // namespace

TEST_CASE("keys-to-mass gives the former quickselect's counts on attention-like rows", "[unit]") {
  // Softmax rows from flat to very peaked (probabilities down to denormals and 0), rounded
  // scores (many equal probabilities), equal rows, rows with zeros, rows not summing to 1.
  at::manual_seed(23);
  std::vector<float> scratch;
  for (int64_t n : {1, 2, 5, 17, 64, 301, 1000, 2048}) {
    for (int dist = 0; dist < 7; ++dist) {
      at::Tensor x = at::randn({n});
      if (dist == 1) x = x * 8;
      if (dist == 2) x = x * 40;
      if (dist == 3) x = (x * 2).round();
      if (dist == 4) x = at::zeros({n});
      at::Tensor p = at::softmax(x, 0).contiguous();
      if (dist == 5) p = p.masked_fill(at::rand({n}) < 0.5, 0.0f);  // zeros; sums below 1
      if (dist == 6) p = (p * 1000).round() / 1000;                 // coarse, ties
      std::vector<float> v(p.data_ptr<float>(), p.data_ptr<float>() + n);
      for (double tau : {1e-9, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999999, 1.0, 1.5}) {
        INFO("n " << n << " dist " << dist << " tau " << tau);
        CHECK(count_for_mass(v.data(), n, tau, scratch) ==
              quickselect_count_for_mass(v.data(), n, tau));
      }
    }
  }
}

TEST_CASE("the statistics observer averages per cell over causal rows only", "[unit]") {
  // One layer, two heads, three query rows over three keys (q_pos0 = 0):
  //   head 0: [1 | .5 .5 | .5 .25 .25]   head 1: [1 | 1 0 | 1/3 1/3 1/3]
  // Entries past the causal end hold garbage that must be ignored.
  const float g = 0.7f;
  std::vector<std::vector<std::vector<float>>> heads = {
      {{1, g, g}, {0.5f, 0.5f, g}, {0.5f, 0.25f, 0.25f}},
      {{1, g, g}, {1, 0, g}, {1 / 3.f, 1 / 3.f, 1 / 3.f}}};
  at::Tensor probs = at::empty({1, 2, 3, 3});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t s = 0; s < 3; ++s)
        probs[0][h][r][s] =
            heads[static_cast<size_t>(h)][static_cast<size_t>(r)][static_cast<size_t>(s)];
  for (bool tensors : {false, true}) {  // the row path and the tensor path (CUDA's default)
    INFO("tensor path " << tensors);
    AttentionStatsObserver obs(1, 2, 0.9);
    obs.set_tensor_path(tensors);
    obs.observe(AttentionView{0, 0, probs, {}});
    auto r = obs.result();
    REQUIRE(obs.rows_per_cell() == 3);
    const double h_row2 = 0.5 * std::log(2.0) + 0.5 * std::log(4.0);  // [.5 .25 .25]
    CHECK(r[0][0].entropy == Approx((0 + std::log(2.0) + h_row2) / 3).epsilon(1e-6));
    CHECK(r[0][0].effective_keys == Approx((1 + 2 + std::exp(h_row2)) / 3).epsilon(1e-6));
    CHECK(r[0][0].mass_keys == Approx((1 + 2 + 3) / 3.0));  // tau 0.9
    CHECK(r[0][0].causal_keys == Approx(2.0));              // (1 + 2 + 3) / 3
    CHECK(r[0][1].effective_keys == Approx((1 + 1 + 3) / 3.0).epsilon(1e-6));
    CHECK(r[0][1].mass_keys == Approx((1 + 1 + 3) / 3.0));

    // A later chunk (q_pos0 = 2, one row over 3 keys) and a second batch row: means over all rows.
    at::Tensor more = at::tensor({0.25f, 0.25f, 0.5f, 1.f, 0.f, 0.f})
                          .view({2, 1, 1, 3})
                          .expand({2, 2, 1, 3})
                          .contiguous();
    obs.observe(AttentionView{0, 2, more, {}});
    r = obs.result();
    CHECK(obs.rows_per_cell() == 5);
    const double h_quarter = 0.5 * std::log(4.0) + 0.5 * std::log(2.0);  // [.25 .25 .5]
    CHECK(r[0][0].effective_keys ==
          Approx((1 + 2 + std::exp(h_row2) + std::exp(h_quarter) + 1) / 5).epsilon(1e-6));
    CHECK(r[0][0].causal_keys == Approx((1 + 2 + 3 + 3 + 3) / 5.0));
  }
}

TEST_CASE("the statistics observer's tensor path measures what its row path measures", "[unit]") {
  at::manual_seed(6);
  const int64_t B = 2, H = 4, Hkv = 2, T = 300, D = 8;
  for (bool ties : {false, true}) {
    INFO("ties " << ties);
    at::Tensor q = test::attention_input({B, H, T, D}, ties);
    at::Tensor k = test::attention_input({B, Hkv, T, D}, ties);
    at::Tensor v = at::randn({B, Hkv, T, D});
    AttentionStatsObserver rows(1, H, 0.9), tensors(1, H, 0.9);
    tensors.set_tensor_path(true);
    AttentionOptions o;
    o.max_score_bytes = B * H * 70 * T * 4;  // blocks of 70 query rows
    attend(q, k, v, 0.7, 0, &rows, o);
    attend(q, k, v, 0.7, 0, &tensors, o);
    REQUIRE(rows.rows_per_cell() == tensors.rows_per_cell());
    const auto a = rows.result(), b = tensors.result();
    for (int64_t h = 0; h < H; ++h) {
      const CellStats &x = a[0][static_cast<size_t>(h)], &y = b[0][static_cast<size_t>(h)];
      CHECK(y.entropy == Approx(x.entropy).epsilon(1e-9));
      CHECK(y.effective_keys == Approx(x.effective_keys).epsilon(1e-9));
      CHECK(y.mass_keys == Approx(x.mass_keys).epsilon(1e-9));
      CHECK(y.causal_keys == x.causal_keys);
    }
  }
}

TEST_CASE("uniform attention through attend(): i + 1 effective keys for query i", "[unit]") {
  // q = 0 gives equal scores, so query i spreads evenly over its i + 1 causal keys.
  const int64_t T = 8;
  at::Tensor q = at::zeros({1, 2, T, 4}), k = at::randn({1, 1, T, 4}), v = at::randn({1, 1, T, 4});
  for (bool tensors : {false, true}) {
    AttentionStatsObserver obs(1, 2, 0.5);
    obs.set_tensor_path(tensors);
    AttentionOptions opts;
    opts.max_score_bytes = 2 * 3 * T * 4;  // chunked: blocks of 3 rows
    attend(q, k, v, 1.0, 0, &obs, opts);
    auto r = obs.result();
    CHECK(obs.rows_per_cell() == T);
    for (int h = 0; h < 2; ++h) {
      CHECK(r[0][static_cast<size_t>(h)].effective_keys == Approx(4.5).epsilon(1e-5));  // mean 1..8
      // ceil(0.5 * n) for n = 1..8: 1 1 2 2 3 3 4 4 -> mean 2.5
      CHECK(r[0][static_cast<size_t>(h)].mass_keys == Approx(2.5));
      CHECK(r[0][static_cast<size_t>(h)].causal_keys == Approx(4.5));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Top-k / top-p masks

TEST_CASE("top-k keeps the k highest keys, ties to the most recent, short rows whole", "[unit]") {
  std::vector<float> scratch;
  // Hand cases on one row of 5 keys.
  auto keep = [&](std::vector<float> s, int64_t k) {
    keep_top_k(s.data(), static_cast<int64_t>(s.size()), k, scratch);
    std::set<int64_t> kept;
    for (size_t j = 0; j < s.size(); ++j)
      if (std::isfinite(s[j])) kept.insert(static_cast<int64_t>(j));
    return kept;
  };
  CHECK(keep({3, 1, 3, 2, 3}, 1) == std::set<int64_t>{4});
  CHECK(keep({3, 1, 3, 2, 3}, 2) == std::set<int64_t>{2, 4});
  CHECK(keep({3, 1, 3, 2, 3}, 4) == std::set<int64_t>{0, 2, 3, 4});
  CHECK(keep({5, 5, 5, 5, 5}, 3) == std::set<int64_t>{2, 3, 4});
  CHECK(keep({9, 1, 1, 1, 0}, 2) == std::set<int64_t>{0, 3});
  CHECK(kth_largest(std::vector<float>{3, 1, 3, 2, 3}.data(), 5, 4, scratch) == 2.f);
  CHECK(kth_largest(std::vector<float>{-kInf, kInf, -1, 0}.data(), 4, 1, scratch) == kInf);
  CHECK(kth_largest(std::vector<float>{-kInf, kInf, -1, 0}.data(), 4, 4, scratch) == -kInf);
  CHECK(kth_largest(std::vector<float>{-0.0f, 0.0f, -1}.data(), 3, 2, scratch) == 0.0f);
  CHECK(keep({0.0f, -0.0f, 0.0f, -0.0f}, 2) == std::set<int64_t>{2, 3});  // -0 ties +0

  // Through the hook: head budgets 1 and 3 over 4 rows (q_pos0 = 0); rows with fewer causal
  // keys than the budget keep them all, untouched.
  at::Tensor s = scores_tensor({{{2, 0, 0, 0}, {1, 1, 0, 0}, {0, 4, 4, 0}, {1, 2, 3, 4}},
                                {{2, 0, 0, 0}, {1, 1, 0, 0}, {0, 4, 4, 0}, {1, 2, 3, 4}}},
                               0);
  at::Tensor before = s.clone();
  SparseAttentionHook hook(SparsitySpec::top_k(Grid{{1, 3}}, "hand"), 1, 2, 2, 4);
  apply_block(hook, s, 0, 2);
  auto kept = kept_sets(s);
  using Set = std::set<int64_t>;
  // head 0, k = 1
  CHECK(kept[0] == Set{0});
  CHECK(kept[1] == Set{1});  // tie 1 = 1: the most recent
  CHECK(kept[2] == Set{2});  // tie 4 = 4: the most recent
  CHECK(kept[3] == Set{3});
  // head 1, k = 3
  CHECK(kept[4] == Set{0});
  CHECK(kept[5] == Set{0, 1});  // shorter than the budget: whole
  CHECK(kept[6] == Set{0, 1, 2});
  CHECK(kept[7] == Set{1, 2, 3});
  // Kept entries keep their values.
  CHECK(s[0][1][2].equal(before[0][1][2]));
}

TEST_CASE("top-k through the hook matches a naive reference on random blocks", "[unit]") {
  at::manual_seed(5);
  // B 2, H 4 (2 KV heads), chunks starting at q_pos0 = 0 and 9 over S = 17 keys.
  const std::vector<int64_t> budgets = {1, 2, 5, 40};
  for (int64_t q_pos0 : {0, 9}) {
    for (bool ties : {false, true}) {
      const int64_t T = 17 - q_pos0, S = 17;
      at::Tensor x = at::randn({2, 4, T, S});
      if (ties) x = (x * 1.5).round();
      x.masked_fill_(causal_mask(q_pos0, T, S, x.options()).isinf().view({1, 1, T, S}), -kInf);
      at::Tensor ref = x.clone();
      SparseAttentionHook hook(SparsitySpec::top_k(Grid{budgets}, "r"), 1, 4, 2, 1000);
      apply_block(hook, x, q_pos0, 2);
      auto kept = kept_sets(x);
      size_t row = 0;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t r = 0; r < T; ++r, ++row) {
            INFO("q_pos0 " << q_pos0 << " ties " << ties << " b " << b << " h " << h << " r " << r);
            const int64_t n = q_pos0 + r + 1;
            CHECK(kept[row] ==
                  naive_top_k(row_of(ref, b, h, r), n, budgets[static_cast<size_t>(h)]));
          }
    }
  }
}

TEST_CASE("top-k of long rows (sampled thresholds) is the naive top-k, ties included", "[unit]") {
  // Rows long enough for the sampled thresholds of top_k_indices and kth_largest (one bracket
  // below the k-th largest, or two around it), with distributions that make the sample miss
  // (spikes off the sample positions, a ramp), overshoot (spikes or dips on them: the fallback),
  // or tie (rounded, constant, periodic, infinities). The index list (top_k_indices), the
  // threshold (kth_largest), the row masked in place (keep_top_k) and select_row_in_place's
  // choice between them all give the naive top-k.
  at::manual_seed(13);
  std::vector<float> scratch;
  std::vector<int32_t> idx;
  SelectScratch select;
  for (int64_t n : {256, 257, 1000, 2048, 3001}) {
    const int64_t stride = n / 128;
    for (int dist = 0; dist < 11; ++dist) {
      std::vector<float> row(static_cast<size_t>(n));
      at::Tensor x = at::randn({n});
      for (int64_t j = 0; j < n; ++j) {
        const float g = x[j].item<float>();
        float v = g;
        if (dist == 1) v = std::round(g * 2);                                     // ties
        if (dist == 2) v = 0.5f;                                                  // all equal
        if (dist == 3) v = static_cast<float>(j);                                 // ascending
        if (dist == 4) v = static_cast<float>(-j);                                // descending
        if (dist == 5) v = static_cast<float>(j % 7);                             // periodic
        if (dist == 6) v = j % stride == 0 ? 100 + g : g;                         // spikes sampled
        if (dist == 7) v = j % stride == 1 ? 100 + std::round(g) : g;             // spikes missed
        if (dist == 8) v = j % 97 == 0 ? (j % 2 ? kInf : -kInf) : std::round(g);  // infinities
        if (dist == 9) v = j % 3 == 0 ? -0.0f : (j % 3 == 1 ? 0.0f : -std::abs(g));  // -0 == +0
        if (dist == 10) v = j % stride == 0 ? -100 + g : g;                          // dips sampled
        row[static_cast<size_t>(j)] = v;
      }
      for (int64_t k : {int64_t(1), int64_t(3), int64_t(31), int64_t(64), n / 8, n / 8 + 1,
                        n * 45 / 100, n / 2, n * 3 / 4, n - 1, n}) {
        INFO("n " << n << " dist " << dist << " k " << k);
        top_k_indices(row.data(), n, k, scratch, idx);
        std::set<int64_t> want = naive_top_k(row, n, k);
        std::vector<int32_t> want_desc(want.rbegin(), want.rend());
        CHECK(idx == want_desc);
        const std::vector<int64_t> order = ranked(row, n);
        CHECK(kth_largest(row.data(), n, k, scratch) ==
              row[static_cast<size_t>(order[static_cast<size_t>(k - 1)])]);
        if (k == n) continue;
        // Masked in place: kept entries bit for bit, the rest -inf.
        std::vector<float> masked = row, want_masked(row.size(), -kInf);
        for (int64_t j : want) want_masked[static_cast<size_t>(j)] = row[static_cast<size_t>(j)];
        keep_top_k(masked.data(), n, k, scratch);
        CHECK(std::memcmp(masked.data(), want_masked.data(), masked.size() * sizeof(float)) == 0);
        for (int64_t ratio : {int64_t(2), int64_t(4)}) {
          LayerRule rule;
          rule.kind = SparsityKind::kTopK;
          rule.top_k = BudgetSchedule::fixed({k});
          std::vector<float> s = row;
          const RowSelection sel =
              select_row_in_place(rule, 0, n - 1, s.data(), n, ratio, select, idx);
          CHECK(sel.count == k);
          if (k * ratio >= n) {
            CHECK(sel.keep == RowKeep::kMasked);
            CHECK(idx.empty());
            CHECK(std::memcmp(s.data(), want_masked.data(), s.size() * sizeof(float)) == 0);
          } else {
            CHECK(sel.keep == RowKeep::kListed);
            CHECK(idx == want_desc);
            CHECK(s == row);
          }
        }
      }
    }
  }
}

TEST_CASE("top-p keeps the fewest keys reaching p, ties to the most recent", "[unit]") {
  // Probabilities [1/2, 1/4, 1/8, 1/8] from log scores; row of 4 keys, q_pos0 = 3.
  const float l2 = std::log(2.f);
  std::vector<float> row = {-l2, -2 * l2, -3 * l2, -3 * l2};
  auto kept_for = [&](double p) {
    at::Tensor s = scores_tensor({{row}}, 3);
    SparseAttentionHook hook(SparsitySpec::top_p(1, 1, p), 1, 1, 1, 1000);
    apply_block(hook, s, 3, 1);
    return std::make_pair(kept_sets(s)[0], hook.tally().q_sparse[0][0]);
  };
  using Set = std::set<int64_t>;
  CHECK(kept_for(0.45).first == Set{0});
  CHECK(kept_for(0.7).first == Set{0, 1});
  CHECK(kept_for(0.8).first == Set{0, 1, 3});  // the 1/8 tie: the more recent key
  CHECK(kept_for(0.8).second == 3);            // reads = the size of the top-p set
  CHECK(kept_for(0.95).first == Set{0, 1, 2, 3});

  // Random blocks against the naive reference.
  at::manual_seed(6);
  const int64_t T = 12, S = 12;
  for (bool ties : {false, true}) {
    at::Tensor x = at::randn({1, 3, T, S}) * 2;
    if (ties) x = x.round();
    x.masked_fill_(causal_mask(0, T, S, x.options()).isinf().view({1, 1, T, S}), -kInf);
    at::Tensor probs = at::softmax(x, -1).contiguous();
    SparsitySpec spec = SparsitySpec::top_p(1, 3, 0.5);
    spec.p = {{0.3, 0.6, 0.9}};
    SparseAttentionHook hook(spec, 1, 3, 3, 1000);
    apply_block(hook, x, 0, 3);
    auto kept = kept_sets(x);
    double reads = 0;
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t r = 0; r < T; ++r) {
        INFO("ties " << ties << " h " << h << " r " << r);
        auto want = naive_top_p(row_of(probs, 0, h, r), r + 1, spec.p[0][static_cast<size_t>(h)]);
        CHECK(kept[static_cast<size_t>(h * T + r)] == want);
        reads += static_cast<double>(want.size());
      }
    CHECK(hook.tally().q_sparse_total() == reads);
  }
}

// ---------------------------------------------------------------------------------------------
// Reads accounting

TEST_CASE("reads: query side per head, KV side the union over a group's heads", "[unit]") {
  // H 4, Hkv 2 (heads 0,1 -> KV 0; heads 2,3 -> KV 1), k = 1 everywhere, 4 rows from q_pos0 0.
  // head 0: key 0 always (a sink)         head 1: the newest key (previous-token-like)
  // head 2: key 0 always                  head 3: key 0 always
  std::vector<std::vector<float>> sink = {{5, 0, 0, 0}, {5, 0, 0, 0}, {5, 0, 0, 0}, {5, 0, 0, 0}};
  std::vector<std::vector<float>> diag = {{5, 0, 0, 0}, {0, 5, 0, 0}, {0, 0, 5, 0}, {0, 0, 0, 5}};
  at::Tensor s = scores_tensor({sink, diag, sink, sink}, 0);
  SparseAttentionHook hook(SparsitySpec::uniform_top_k(2, 4, 1), 2, 4, 2, 4);
  apply_block(hook, s, 0, 2);
  const ReadsTally& t = hook.tally();
  // Query side: one key per row, 4 rows per head.
  for (int h = 0; h < 4; ++h) CHECK(t.q_sparse[0][static_cast<size_t>(h)] == 4);
  // KV 0: row 0 {0}, rows 1..3 {0, i} -> 1 + 2 + 2 + 2 = 7. KV 1: {0} every row -> 4.
  CHECK(t.kv_sparse[0][0] == 7);
  CHECK(t.kv_sparse[0][1] == 4);
  // Layer 1 was never masked here; count_pass adds the dense denominators (1+2+3+4 = 10 per
  // head and per KV head, both layers) and nothing sparse for active layers.
  hook.count_pass(1, 4);
  CHECK(t.q_dense[0][0] == 10);
  CHECK(t.kv_dense[1][1] == 10);
  CHECK(t.q_sparse[1][0] == 0);
  CHECK(t.q_sparse_total() == 16);
  CHECK(t.q_dense_total() == 80);
  CHECK(t.kv_sparse_total() == 11);
  CHECK(t.kv_dense_total() == 40);
  CHECK(t.q_fraction() == Approx(16.0 / 80));
  CHECK(t.kv_fraction() == Approx(11.0 / 40));
}

TEST_CASE("reads: layers whose budgets cover the context are inactive and count dense", "[unit]") {
  // Layer 0 budgets 2 (< context 4): active. Layer 1 budgets 4 (= context): inactive.
  SparseAttentionHook hook(SparsitySpec::top_k(Grid{{2, 2}, {4, 9}}, "t"), 2, 2, 1, 4);
  CHECK(hook.active(0));
  CHECK_FALSE(hook.active(1));
  at::Tensor s = at::randn({3, 2, 4, 4});
  s.masked_fill_(causal_mask(0, 4, 4, s.options()).isinf().view({1, 1, 4, 4}), -kInf);
  apply_block(hook, s, 0, 1);
  hook.count_pass(3, 4);
  const ReadsTally& t = hook.tally();
  // Layer 0, per head and batch row: min(2, i + 1) for i = 0..3 -> 1 + 2 + 2 + 2 = 7; B = 3.
  CHECK(t.q_sparse[0][0] == 21);
  CHECK(t.q_sparse[0][1] == 21);
  CHECK(t.q_dense[0][0] == 30);
  // Layer 1: dense reads on both sides.
  CHECK(t.q_sparse[1][0] == 30);
  CHECK(t.q_sparse[1][1] == 30);
  CHECK(t.kv_sparse[1][0] == 30);
  // The MQA group's union on layer 0 lies between one head's reads and the dense count.
  CHECK(t.kv_sparse[0][0] >= 21);
  CHECK(t.kv_sparse[0][0] <= 30);
  CHECK(t.q_fraction() == Approx((21 + 21 + 30 + 30) / 120.0));
}

TEST_CASE("reads: top-k through attend() sums min(k, i + 1) whatever the kernel", "[unit]") {
  at::manual_seed(9);
  const int64_t B = 2, H = 4, Hkv = 2, T = 13;
  at::Tensor q = at::randn({B, H, T, 8}), k = at::randn({B, Hkv, T, 8}),
             v = at::randn({B, Hkv, T, 8});
  const std::vector<int64_t> ks = {1, 3, 6, 100};
  double expect = 0;
  for (int64_t kh : ks)
    for (int64_t i = 0; i < T; ++i) expect += static_cast<double>(B * std::min(kh, i + 1));
  // The fused CPU kernel (counts in the kernel) and the explicit score path, chunked.
  for (bool fused : {true, false}) {
    INFO("allow_fused_cpu " << fused);
    SparseAttentionHook hook(SparsitySpec::top_k(Grid{ks}, "k"), 1, H, Hkv, 1000);
    AttentionOptions opts;
    opts.allow_fused_cpu = fused;
    opts.max_score_bytes = B * H * 3 * T * 4;
    attend(q, k, v, 0.3, 0, &hook, opts);
    CHECK(hook.tally().q_sparse_total() == expect);
    // KV side: each group reads at least its widest head and at most the dense count.
    for (int64_t g = 0; g < Hkv; ++g) {
      double widest = 0;
      for (int64_t h = g * 2; h < g * 2 + 2; ++h)
        widest = std::max(widest, hook.tally().q_sparse[0][static_cast<size_t>(h)]);
      CHECK(hook.tally().kv_sparse[0][static_cast<size_t>(g)] >= widest);
      CHECK(hook.tally().kv_sparse[0][static_cast<size_t>(g)] <= B * T * (T + 1) / 2.0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Budget allocation

TEST_CASE("allocation: proportional to diffuseness, rounded, floored, capped", "[unit]") {
  AllocationRule rule;
  rule.k_max = 16;
  rule.floor = 1;
  CHECK(allocate_budgets({{1, 2}, {4, 8}}, rule, 1) == Grid{{2, 4}, {8, 16}});
  // Rounding: k_max * d / max(d) = 0.5, 1.5, 2.5, 5 -> half away from zero: 1, 2, 3, 5.
  rule.k_max = 5;
  CHECK(allocate_budgets({{1, 3, 5, 10}}, rule, 1) == Grid{{1, 2, 3, 5}});
  // 0.49 rounds to 0 and the floor lifts it; floor 2 lifts the 1s too.
  CHECK(allocate_budgets({{0.98, 10}}, rule, 1) == Grid{{1, 5}});
  rule.floor = 2;
  CHECK(allocate_budgets({{1, 3, 5, 10}}, rule, 1) == Grid{{2, 2, 3, 5}});
  // A floor above the cap gives the cap everywhere (the cap wins).
  rule.floor = 8;
  rule.k_max = 4;
  CHECK(allocate_budgets({{1, 2}, {3, 4}}, rule, 1) == Grid{{4, 4}, {4, 4}});
  // All-zero diffuseness: every cell at the floor.
  rule.floor = 3;
  rule.k_max = 10;
  CHECK(allocate_budgets({{0, 0}, {0, 0}}, rule, 1) == Grid{{3, 3}, {3, 3}});
  // The most diffuse cell always gets exactly k_max.
  rule.floor = 1;
  rule.k_max = 7;
  CHECK(allocate_budgets({{2.5, 9.75}, {9.75, 0.1}}, rule, 1) == Grid{{2, 7}, {7, 1}});
  // Bad rules.
  rule.k_max = 0;
  CHECK_THROWS_AS(allocate_budgets({{1}}, rule, 1), UsageError);
  rule.k_max = 4;
  rule.floor = 0;
  CHECK_THROWS_AS(allocate_budgets({{1}}, rule, 1), UsageError);
}

TEST_CASE("allocation per KV group: each group takes its most diffuse head", "[unit]") {
  AllocationRule rule;
  rule.k_max = 8;
  rule.floor = 1;
  const std::vector<std::vector<double>> d = {{1, 4, 2, 2}, {8, 0, 0.5, 1}};
  CHECK(allocate_budgets(d, rule, 2) == Grid{{1, 4, 2, 2}, {8, 1, 1, 1}});  // per head
  rule.per_kv_group = true;
  CHECK(allocate_budgets(d, rule, 2) == Grid{{4, 4, 2, 2}, {8, 8, 1, 1}});
  CHECK(allocate_budgets(d, rule, 1) == Grid{{1, 4, 2, 2}, {8, 1, 1, 1}});  // MHA: no grouping
  CHECK(allocate_budgets(d, rule, 4) == Grid{{4, 4, 4, 4}, {8, 8, 8, 8}});  // MQA
}

TEST_CASE("a policy re-caps from its statistics and survives a JSON round trip", "[unit]") {
  Policy p;
  p.model = {
      {"name", "hand"}, {"family", "llama"}, {"n_layer", 2}, {"n_head", 4}, {"n_head_kv", 2}};
  p.metric = DiffusenessMetric::kMassKeys;
  p.stats.assign(2, std::vector<CellStats>(4));
  const std::vector<std::vector<double>> mass = {{1, 4, 2, 2}, {8, 0, 0.5, 1}};
  for (size_t l = 0; l < 2; ++l)
    for (size_t h = 0; h < 4; ++h) {
      p.stats[l][h].mass_keys = mass[l][h];
      p.stats[l][h].effective_keys = 1;  // not the chosen metric: must not matter
    }
  p.rule.floor = 1;
  p.rule.per_kv_group = true;
  Policy q = p.recapped(16);
  CHECK(q.fixed_budgets() == Grid{{8, 8, 4, 4}, {16, 16, 2, 2}});
  CHECK(q.rule.k_max == 16);
  Policy back = Policy::from_json(q.to_json(), "round trip");
  CHECK(back.fixed_budgets() == q.fixed_budgets());
  CHECK(back.rule.k_max == 16);
  CHECK(back.rule.per_kv_group);
  CHECK(back.recapped(8).fixed_budgets() == Grid{{4, 4, 2, 2}, {8, 8, 1, 1}});
  CHECK(bool(back.sparsity().k == SparsitySpec::top_k(back.budgets, "").k));
  CHECK(back.mean_budget() == Approx((8 + 8 + 4 + 4 + 16 + 16 + 2 + 2) / 8.0));
}

// ---------------------------------------------------------------------------------------------
// Sliding-window planning

namespace {

// The Hugging Face loop (perplexity of fixed-length models), naively: for each window, which
// absolute target positions enter the loss. labels[:-trg_len] = -100, then the model shifts
// labels by one, so window-relative target t in [1, len) counts when t >= len - trg_len.
std::vector<std::vector<int64_t>> hf_scored_targets(int64_t n, int64_t ctx, int64_t stride) {
  std::vector<std::vector<int64_t>> out;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + ctx, n), len = end - begin, trg = end - prev_end;
    std::vector<int64_t> targets;
    for (int64_t t = 1; t < len; ++t)
      if (t >= len - trg) targets.push_back(begin + t);
    if (len >= 2) out.push_back(targets);  // a 1-token window has no target to score
    prev_end = end;
    if (end == n) break;
  }
  return out;
}

std::vector<std::vector<int64_t>> planned_targets(const std::vector<Window>& ws) {
  std::vector<std::vector<int64_t>> out;
  for (const Window& w : ws) {
    std::vector<int64_t> t;
    for (int64_t i = w.begin + w.first_scored; i < w.end; ++i) t.push_back(i);
    out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("sliding windows: 10 tokens, ctx 4, stride 2, worked by hand", "[unit]") {
  // [0,4) scores 1 2 3 | [2,6) scores 4 5 | [4,8) scores 6 7 | [6,10) scores 8 9.
  std::vector<Window> ws = plan_windows(10, 4, 2);
  REQUIRE(ws.size() == 4);
  CHECK((ws[0].begin == 0 && ws[0].end == 4 && ws[0].first_scored == 1));
  CHECK((ws[1].begin == 2 && ws[1].end == 6 && ws[1].first_scored == 2));
  CHECK((ws[2].begin == 4 && ws[2].end == 8 && ws[2].first_scored == 2));
  CHECK((ws[3].begin == 6 && ws[3].end == 10 && ws[3].first_scored == 2));
  using T = std::vector<std::vector<int64_t>>;
  CHECK(planned_targets(ws) == T{{1, 2, 3}, {4, 5}, {6, 7}, {8, 9}});

  // 9 tokens: the last window is short ([6,9)) and scores only the new target 8.
  CHECK(planned_targets(plan_windows(9, 4, 2)) == T{{1, 2, 3}, {4, 5}, {6, 7}, {8}});
  // Shorter than one window: one window over everything.
  CHECK(planned_targets(plan_windows(3, 4, 2)) == T{{1, 2}});
  CHECK(plan_windows(1, 4, 2).empty());  // nothing to predict
  // stride = ctx: disjoint windows; each window's first token has no context and is not a
  // target (as in the HF loop), so tokens 4 and 8 are never scored.
  CHECK(planned_targets(plan_windows(10, 4, 4)) == T{{1, 2, 3}, {5, 6, 7}, {9}});
  // stride 1: every later window scores exactly its last token.
  CHECK(planned_targets(plan_windows(6, 4, 1)) == T{{1, 2, 3}, {4}, {5}});
}

TEST_CASE("sliding windows match the Hugging Face loop on a grid of sizes", "[unit]") {
  for (int64_t n : {1, 2, 3, 7, 16, 17, 33, 100})
    for (int64_t ctx : {2, 3, 4, 8, 16})
      for (int64_t stride = 1; stride <= ctx; ++stride) {
        INFO("n " << n << " ctx " << ctx << " stride " << stride);
        auto ws = plan_windows(n, ctx, stride);
        CHECK(planned_targets(ws) == hf_scored_targets(n, ctx, stride));
        // No target is scored twice; windows never exceed ctx and tile the text in order.
        std::set<int64_t> seen;
        size_t total = 0;
        for (const auto& w : planned_targets(ws)) {
          seen.insert(w.begin(), w.end());
          total += w.size();
        }
        CHECK(seen.size() == total);
        for (const Window& w : ws) CHECK(w.end - w.begin <= ctx);
        if (n >= 2 && stride < ctx) CHECK(total == static_cast<size_t>(n - 1));
      }
}
