#include "csa/calib/allocate.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "csa/core/error.h"

namespace csa {

std::string allocation_name(AllocationKind k) {
  switch (k) {
    case AllocationKind::kProportional:
      return "proportional";
    case AllocationKind::kPower:
      return "power";
    case AllocationKind::kEqualError:
      return "equal_error";
    case AllocationKind::kGreedy:
      return "greedy";
    case AllocationKind::kBalanced:
      return "balanced";
    case AllocationKind::kGreedyP:
      return "greedy_p";
  }
  return "?";
}

AllocationKind parse_allocation(const std::string& name) {
  if (name == "proportional") return AllocationKind::kProportional;
  if (name == "power") return AllocationKind::kPower;
  if (name == "equal_error" || name == "equal-error") return AllocationKind::kEqualError;
  if (name == "greedy") return AllocationKind::kGreedy;
  if (name == "balanced") return AllocationKind::kBalanced;
  if (name == "greedy_p" || name == "greedy-p") return AllocationKind::kGreedyP;
  throw UsageError("--rule '" + name +
                   "': use greedy, balanced, equal_error, greedy_p, power or proportional");
}

bool need_based(AllocationKind k) {
  return k == AllocationKind::kEqualError || k == AllocationKind::kGreedy ||
         k == AllocationKind::kBalanced || k == AllocationKind::kGreedyP;
}

bool top_p_rule(AllocationKind k) { return k == AllocationKind::kGreedyP; }

std::string need_metric_name(NeedMetric m) {
  switch (m) {
    case NeedMetric::kResRel:
      return "res_rel";
    case NeedMetric::kResErr:
      return "res_err";
    case NeedMetric::kRelErr:
      return "rel_err";
    case NeedMetric::kRelErrP95:
      return "rel_err_p95";
    case NeedMetric::kMassOut:
      return "mass_out";
  }
  return "?";
}

NeedMetric parse_need_metric(const std::string& name) {
  if (name == "res_rel") return NeedMetric::kResRel;
  if (name == "res_err") return NeedMetric::kResErr;
  if (name == "rel_err") return NeedMetric::kRelErr;
  if (name == "rel_err_p95") return NeedMetric::kRelErrP95;
  if (name == "mass_out") return NeedMetric::kMassOut;
  throw UsageError("need metric '" + name +
                   "': use res_rel, res_err, rel_err, rel_err_p95 or mass_out");
}

std::vector<std::vector<int64_t>> allocate_budgets(const std::vector<std::vector<double>>& d,
                                                   const AllocationRule& rule, int64_t group_size) {
  if (rule.k_max < 1) throw UsageError("k_max must be >= 1, got " + std::to_string(rule.k_max));
  if (rule.floor < 1)
    throw UsageError("the budget floor must be >= 1, got " + std::to_string(rule.floor));
  if (!(rule.alpha >= 0)) throw UsageError("the power rule needs alpha >= 0");
  std::vector<std::vector<double>> v = d;
  if (rule.per_kv_group && group_size > 1) {
    for (auto& row : v)
      for (size_t g = 0; g < row.size(); g += static_cast<size_t>(group_size)) {
        double m = 0;
        for (size_t h = g; h < g + static_cast<size_t>(group_size) && h < row.size(); ++h)
          m = std::max(m, row[h]);
        for (size_t h = g; h < g + static_cast<size_t>(group_size) && h < row.size(); ++h)
          row[h] = m;
      }
  }
  double dmax = 0;
  for (const auto& row : v)
    for (double x : row) dmax = std::max(dmax, x);
  const int64_t lo = std::min(rule.floor, rule.k_max);
  std::vector<std::vector<int64_t>> out;
  for (const auto& row : v) {
    std::vector<int64_t> r;
    for (double x : row) {
      const double share = rule.alpha == 1.0 ? x / dmax : std::pow(x / dmax, rule.alpha);
      int64_t b = dmax > 0 ? std::llround(static_cast<double>(rule.k_max) * share) : lo;
      r.push_back(std::clamp(b, lo, rule.k_max));
    }
    out.push_back(std::move(r));
  }
  return out;
}

double reads_in_band(int64_t lo, int64_t hi, int64_t k) {
  if (hi <= lo) return 0;
  // Positions pos < k read pos + 1 keys; the others read k.
  const int64_t full_end = std::clamp(k, lo, hi);
  const double tri = (static_cast<double>(full_end) * static_cast<double>(full_end + 1) -
                      static_cast<double>(lo) * static_cast<double>(lo + 1)) /
                     2.0;
  return tri + static_cast<double>(k) * static_cast<double>(hi - full_end);
}

namespace {

// The metric's curves [L][H][NB][G]; res_rel is res_err over the layer's residual scale.
std::vector<double> metric_values(const NeedCurves& c, NeedMetric m) {
  switch (m) {
    case NeedMetric::kResRel: {
      std::vector<double> v = c.res_err;
      const size_t per_layer = v.size() / static_cast<size_t>(c.n_layer);
      for (size_t i = 0; i < v.size(); ++i) {
        const double ms = c.residual_ms[i / per_layer];
        v[i] = ms > 0 ? v[i] / ms : v[i];
      }
      return v;
    }
    case NeedMetric::kResErr:
      return c.res_err;
    case NeedMetric::kRelErr:
      return c.rel_err;
    case NeedMetric::kRelErrP95:
      return c.rel_err_p95;
    case NeedMetric::kMassOut:
      return c.mass_out;
  }
  return c.res_err;
}

// One decision: a unit (query head, or KV group) of a layer, over one band or all bands.
struct Decision {
  int64_t layer = 0, unit = 0, band = -1;  // band -1: one budget for every band
  std::vector<double> err;                 // [options] total error (rows · mean error)
  std::vector<double> row_err;             // [options] mean error per query (equal_error)
  std::vector<double> q_cost, kv_cost;     // [options] reads, query side and KV side
};

}  // namespace

NeedAllocation allocate_need(const NeedCurves& c, const AllocationRule& rule) {
  if (!need_based(rule.kind))
    throw UsageError("allocate_need: '" + allocation_name(rule.kind) + "' is not need-based");
  if (!(rule.reads > 0 && rule.reads <= 1))
    throw UsageError("the target reads fraction must be in (0, 1], got " +
                     std::to_string(rule.reads));
  const int64_t L = c.n_layer, H = c.n_head, Hkv = c.n_head_kv, Gq = H / Hkv;
  const int64_t NB = c.n_bands(), G = c.n_grid();
  const bool kv = rule.kv_aware && Gq > 1;
  const int64_t units = kv ? Hkv : H;
  const std::vector<double> m = metric_values(c, rule.metric);
  const double dense_window = reads_in_band(0, c.ctx, c.ctx);  // per head and layer
  if (!rule.band_weight.empty() && static_cast<int64_t>(rule.band_weight.size()) != NB)
    throw UsageError("the band weights must be one per band of the need curves (" +
                     std::to_string(NB) + "), got " + std::to_string(rule.band_weight.size()));
  for (double w : rule.band_weight)
    if (!(w > 0 && std::isfinite(w)))
      throw UsageError("the band weights must be finite and > 0, got " + std::to_string(w));
  auto weight = [&](int64_t b) {
    return rule.band_weight.empty() ? 1.0 : rule.band_weight[static_cast<size_t>(b)];
  };

  const bool top_p = top_p_rule(rule.kind);
  if (top_p) {
    if (!c.has_top_p())
      throw UsageError(
          "the greedy_p rule needs top-p need curves (p_grid), which these curves do not have: "
          "re-run csa-calibrate");
    if (rule.metric != NeedMetric::kRelErr)
      throw UsageError(
          "the greedy_p rule balances rel_err (the top-p curves measure only it), not " +
          need_metric_name(rule.metric));
    if (rule.banded || rule.kv_aware)
      throw UsageError("the greedy_p rule gives one mass per query head: not banded, not KV-aware");
  }
  const int64_t P = c.n_p();

  // The options of every decision: grid budgets up to the first that covers the whole band; for
  // greedy_p, the curves' masses and p = 1 (every key, no error).
  std::vector<Decision> decisions;
  for (int64_t l = 0; l < L && top_p; ++l)
    for (int64_t h = 0; h < H; ++h) {
      Decision d;
      d.layer = l, d.unit = h;
      d.err.assign(static_cast<size_t>(P + 1), 0.0);
      d.row_err.assign(static_cast<size_t>(P + 1), 0.0);
      d.q_cost.assign(static_cast<size_t>(P + 1), 0.0);
      for (int64_t b = 0; b < NB; ++b) {
        const int64_t lo = c.band_start[static_cast<size_t>(b)], hi = c.band_end(b);
        const double rows = static_cast<double>(hi - lo);
        for (int64_t q = 0; q < P; ++q) {
          d.err[static_cast<size_t>(q)] += rows * weight(b) * c.p_rel_err[c.at_p(l, h, b, q)];
          d.q_cost[static_cast<size_t>(q)] += rows * c.p_keys[c.at_p(l, h, b, q)];
        }
        d.q_cost[static_cast<size_t>(P)] += reads_in_band(lo, hi, hi);
      }
      d.kv_cost = d.q_cost;
      decisions.push_back(std::move(d));
    }
  for (int64_t l = 0; l < L && !top_p; ++l)
    for (int64_t u = 0; u < units; ++u) {
      auto fill = [&](Decision& d, int64_t b) {
        const int64_t lo = c.band_start[static_cast<size_t>(b)], hi = c.band_end(b);
        const double rows = static_cast<double>(hi - lo);
        for (int64_t g = 0; g < G; ++g) {
          const int64_t k = c.grid[static_cast<size_t>(g)];
          double e = 0;
          for (int64_t h = kv ? u * Gq : u; h < (kv ? (u + 1) * Gq : u + 1); ++h)
            e += m[c.at(l, h, b, g)];
          e *= weight(b);
          const double q = reads_in_band(lo, hi, k) * (kv ? Gq : 1);
          // KV side: the measured union of the group's top-k sets (a lower bound when the
          // group's heads have different budgets: the union at the widest).
          const int64_t kv_head = kv ? u : u / Gq;
          const double kvc =
              std::min(c.kv_union[c.at_kv(l, kv_head, b, g)] * rows, reads_in_band(lo, hi, hi));
          if (static_cast<int64_t>(d.err.size()) <= g) {
            d.err.push_back(0), d.row_err.push_back(0), d.q_cost.push_back(0);
            d.kv_cost.push_back(0);
          }
          d.err[static_cast<size_t>(g)] += rows * e;
          d.row_err[static_cast<size_t>(g)] =
              std::max(d.row_err[static_cast<size_t>(g)], e / static_cast<double>(kv ? Gq : 1));
          d.q_cost[static_cast<size_t>(g)] += q;
          d.kv_cost[static_cast<size_t>(g)] += kvc;
        }
      };
      if (rule.banded) {
        for (int64_t b = 0; b < NB; ++b) {
          Decision d;
          d.layer = l, d.unit = u, d.band = b;
          fill(d, b);
          // Budgets beyond the band's widest query read the same: keep the first that covers it.
          const int64_t hi = c.band_end(b);
          size_t keep = 0;
          while (keep < d.err.size() && c.grid[keep] < hi) ++keep;
          keep = std::min(keep + 1, d.err.size());
          d.err.resize(keep), d.row_err.resize(keep), d.q_cost.resize(keep), d.kv_cost.resize(keep);
          decisions.push_back(std::move(d));
        }
      } else {
        Decision d;
        d.layer = l, d.unit = u;
        for (int64_t b = 0; b < NB; ++b) fill(d, b);
        decisions.push_back(std::move(d));
      }
    }

  // The decisions of each band (balanced: one Lagrangian per band).
  std::vector<std::vector<size_t>> by_band(static_cast<size_t>(rule.banded ? NB : 1));
  for (size_t i = 0; i < decisions.size(); ++i)
    by_band[static_cast<size_t>(std::max<int64_t>(0, decisions[i].band))].push_back(i);
  // min rows · error + λ · cost over one decision's options, cost on the side the rule pays
  // for; ties: fewer reads.
  auto lagrangian = [&](const Decision& d, double lambda) {
    const auto& cost = kv ? d.kv_cost : d.q_cost;
    size_t best = d.err.size() - 1;
    double best_v = d.err[best] + lambda * cost[best];
    for (size_t g = 0; g < d.err.size(); ++g) {
      const double v = d.err[g] + lambda * cost[g];
      if (v < best_v) best_v = v, best = g;
    }
    return best;
  };
  // balanced, for one band: the largest λ whose greedy choice keeps the band's error per query
  // (summed over layers and heads) at most ε — the fewest reads that hold the band at ε.
  auto choose_band = [&](const std::vector<size_t>& ids, double eps, std::vector<size_t>& pick) {
    auto band_err = [&](double lambda) {
      double e = 0;
      for (size_t i : ids) {
        const size_t g = lagrangian(decisions[i], lambda);
        pick[i] = g;
        e += decisions[i].err[g];
      }
      return e;
    };
    if (ids.empty()) return;
    const Decision& d0 = decisions[ids.front()];
    const int64_t lo_pos = d0.band >= 0 ? c.band_start[static_cast<size_t>(d0.band)] : 0;
    const int64_t hi_pos = d0.band >= 0 ? c.band_end(d0.band) : c.ctx;
    const double target = eps * static_cast<double>(hi_pos - lo_pos);  // err is rows · error
    double lo = -70, hi = 30;
    for (int it = 0; it < 60 && hi - lo > 1e-6; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (band_err(std::exp(mid)) <= target)
        lo = mid;
      else
        hi = mid;
    }
    band_err(std::exp(lo));
  };

  // choice(x): the option index of every decision for the rule's inner scalar x.
  auto choose = [&](double x, std::vector<size_t>& pick) {
    pick.resize(decisions.size());
    if (rule.kind == AllocationKind::kBalanced) {
      for (const auto& ids : by_band) choose_band(ids, x, pick);
      return;
    }
    for (size_t i = 0; i < decisions.size(); ++i) {
      const Decision& d = decisions[i];
      size_t best = d.err.size() - 1;
      if (rule.kind == AllocationKind::kGreedy || rule.kind == AllocationKind::kGreedyP) {
        best = lagrangian(d, x);
      } else {
        for (size_t g = 0; g < d.err.size(); ++g)
          if (d.row_err[g] <= x) {
            best = g;
            break;
          }
      }
      pick[i] = best;
    }
  };
  // Predicted reads of a choice. KV side: a kv-aware decision pays its group's union; otherwise
  // a group's heads may hold different budgets, and the union at the widest of them is the
  // estimate (a lower bound: the union grows further with the narrower heads' own picks).
  std::vector<int64_t> widest;  // [L][Hkv][NB or 1] grid index
  auto predicted = [&](const std::vector<size_t>& pick) {
    double q = 0, kvr = 0;
    for (size_t i = 0; i < decisions.size(); ++i) q += decisions[i].q_cost[pick[i]];
    if (top_p) {  // no union curves for top-p sets: KV side known only without GQA
      const double qf = q / (dense_window * static_cast<double>(L * H));
      return std::make_pair(qf, Gq == 1 ? qf : -1.0);
    }
    if (kv) {
      for (size_t i = 0; i < decisions.size(); ++i) kvr += decisions[i].kv_cost[pick[i]];
    } else {
      const int64_t nb = rule.banded ? NB : 1;
      widest.assign(static_cast<size_t>(L * Hkv * nb), 0);
      for (size_t i = 0; i < decisions.size(); ++i) {
        const Decision& d = decisions[i];
        auto& w = widest[static_cast<size_t>((d.layer * Hkv + d.unit / Gq) * nb +
                                             std::max<int64_t>(0, d.band))];
        w = std::max<int64_t>(w, static_cast<int64_t>(pick[i]));
      }
      for (int64_t l = 0; l < L; ++l)
        for (int64_t g = 0; g < Hkv; ++g)
          for (int64_t b = 0; b < NB; ++b) {
            const int64_t gi =
                widest[static_cast<size_t>((l * Hkv + g) * nb + (rule.banded ? b : 0))];
            const int64_t lo = c.band_start[static_cast<size_t>(b)], hi = c.band_end(b);
            kvr += std::min(c.kv_union[c.at_kv(l, g, b, gi)] * static_cast<double>(hi - lo),
                            reads_in_band(lo, hi, hi));
          }
    }
    return std::make_pair(q / (dense_window * static_cast<double>(L * H)),
                          kvr / (dense_window * static_cast<double>(L * Hkv)));
  };
  auto side = [&](const std::vector<size_t>& pick) {
    auto [q, kvr] = predicted(pick);
    return kv ? kvr : q;
  };

  // Reads fall as x grows (λ: reads cost more; ε: more error allowed). Bisection in log x for the
  // largest x whose allocation still reads at least the target.
  std::vector<size_t> pick;
  double lo = -70, hi = 30;  // log x
  for (int it = 0; it < 200 && hi - lo > 1e-9; ++it) {
    const double mid = 0.5 * (lo + hi);
    choose(std::exp(mid), pick);
    if (side(pick) >= rule.reads)
      lo = mid;
    else
      hi = mid;
  }
  choose(std::exp(lo), pick);

  NeedAllocation out;
  auto [q, kvr] = predicted(pick);
  out.reads_fraction = q;
  out.kv_reads_fraction = kvr;
  if (top_p) {
    out.p.assign(static_cast<size_t>(L), std::vector<double>(static_cast<size_t>(H), 1.0));
    for (size_t i = 0; i < decisions.size(); ++i) {
      const Decision& d = decisions[i];
      out.error += d.err[pick[i]];
      if (static_cast<int64_t>(pick[i]) < P)
        out.p[static_cast<size_t>(d.layer)][static_cast<size_t>(d.unit)] = c.p_grid[pick[i]];
    }
    return out;
  }
  out.schedules.assign(static_cast<size_t>(L), BudgetSchedule{});
  for (auto& s : out.schedules) {
    s.band_start = rule.banded ? c.band_start : std::vector<int64_t>{0};
    s.k.assign(static_cast<size_t>(H), std::vector<int64_t>(s.band_start.size(), 1));
  }
  for (size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    out.error += d.err[pick[i]];
    const int64_t k = c.grid[pick[i]];
    for (int64_t h = kv ? d.unit * Gq : d.unit; h < (kv ? (d.unit + 1) * Gq : d.unit + 1); ++h)
      out.schedules[static_cast<size_t>(d.layer)]
          .k[static_cast<size_t>(h)][static_cast<size_t>(std::max<int64_t>(0, d.band))] = k;
  }
  return out;
}

double predicted_error(const NeedCurves& c, NeedMetric metric,
                       const std::vector<BudgetSchedule>& schedules,
                       const std::vector<double>& band_weight) {
  CSA_CHECK(static_cast<int64_t>(schedules.size()) == c.n_layer, "schedules per layer");
  CSA_CHECK(band_weight.empty() || static_cast<int64_t>(band_weight.size()) == c.n_bands(),
            "band weights per band");
  const std::vector<double> m = metric_values(c, metric);
  const int64_t G = c.n_grid();
  double total = 0;
  for (int64_t l = 0; l < c.n_layer; ++l)
    for (int64_t h = 0; h < c.n_head; ++h)
      for (int64_t b = 0; b < c.n_bands(); ++b) {
        const int64_t lo = c.band_start[static_cast<size_t>(b)], hi = c.band_end(b);
        const int64_t k = schedules[static_cast<size_t>(l)].budget(h, lo);
        // Linear interpolation between the grid budgets around k.
        int64_t g = 0;
        while (g + 1 < G && c.grid[static_cast<size_t>(g + 1)] <= k) ++g;
        double e = m[c.at(l, h, b, g)];
        if (g + 1 < G && c.grid[static_cast<size_t>(g)] < k) {
          const double k0 = static_cast<double>(c.grid[static_cast<size_t>(g)]);
          const double k1 = static_cast<double>(c.grid[static_cast<size_t>(g + 1)]);
          const double t = (static_cast<double>(k) - k0) / (k1 - k0);
          e = (1 - t) * e + t * m[c.at(l, h, b, g + 1)];
        }
        if (!band_weight.empty()) e *= band_weight[static_cast<size_t>(b)];
        total += static_cast<double>(hi - lo) * e;
      }
  return total;
}

double predicted_error_top_p(const NeedCurves& c, const std::vector<std::vector<double>>& p,
                             const std::vector<double>& band_weight) {
  CSA_CHECK(c.has_top_p(), "top-p curves");
  CSA_CHECK(static_cast<int64_t>(p.size()) == c.n_layer, "masses per layer");
  CSA_CHECK(band_weight.empty() || static_cast<int64_t>(band_weight.size()) == c.n_bands(),
            "band weights per band");
  const int64_t P = c.n_p();
  double total = 0;
  for (int64_t l = 0; l < c.n_layer; ++l)
    for (int64_t h = 0; h < c.n_head; ++h) {
      const double x = p[static_cast<size_t>(l)].at(static_cast<size_t>(h));
      if (x >= 1) continue;
      // Grid points around x: q0 <= x < q0 + 1 (x below the grid: its first).
      int64_t q0 = 0;
      while (q0 + 1 < P && c.p_grid[static_cast<size_t>(q0 + 1)] <= x) ++q0;
      const double x0 = c.p_grid[static_cast<size_t>(q0)];
      const double x1 = q0 + 1 < P ? c.p_grid[static_cast<size_t>(q0 + 1)] : 1.0;
      const double t = std::clamp((x - x0) / (x1 - x0), 0.0, 1.0);
      for (int64_t b = 0; b < c.n_bands(); ++b) {
        const double e0 = c.p_rel_err[c.at_p(l, h, b, q0)];
        const double e1 = q0 + 1 < P ? c.p_rel_err[c.at_p(l, h, b, q0 + 1)] : 0.0;
        double e = (1 - t) * e0 + t * e1;
        if (!band_weight.empty()) e *= band_weight[static_cast<size_t>(b)];
        total += static_cast<double>(c.band_end(b) - c.band_start[static_cast<size_t>(b)]) * e;
      }
    }
  return total;
}

std::vector<double> adapt_band_weights(const std::vector<double>& weights,
                                       const std::vector<int64_t>& band_start,
                                       const std::vector<std::vector<double>>& bucket_delta_rel,
                                       int64_t ctx, double position_tolerance, double step) {
  const size_t nb = band_start.size();
  std::vector<double> w = weights.empty() ? std::vector<double>(nb, 1.0) : weights;
  if (w.size() != nb) throw UsageError("adapt_band_weights: one weight per band");
  if (!(position_tolerance > 0)) throw UsageError("adapt_band_weights: position tolerance <= 0");
  // e_b: the worst bucket overlapping the band's positions [lo, hi) within the window.
  std::vector<double> e(nb, 0);
  std::vector<bool> seen(nb, false);
  for (size_t b = 0; b < nb; ++b) {
    const int64_t lo = band_start[b];
    const int64_t hi = b + 1 < nb ? band_start[b + 1] : ctx;
    for (const auto& deltas : bucket_delta_rel) {
      const auto n = static_cast<int64_t>(deltas.size());
      for (int64_t j = 0; j < n; ++j) {
        const int64_t blo = j * ctx / n, bhi = (j + 1) * ctx / n;
        if (blo >= std::min(hi, ctx) || bhi <= lo) continue;
        const double x = deltas[static_cast<size_t>(j)] / position_tolerance;
        e[b] = seen[b] ? std::max(e[b], x) : x;
        seen[b] = true;
      }
    }
  }
  double mean = 0;
  int64_t n_seen = 0;
  for (size_t b = 0; b < nb; ++b)
    if (seen[b]) mean += e[b], ++n_seen;
  if (n_seen == 0) return w;
  mean /= static_cast<double>(n_seen);
  double log_sum = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (seen[b]) w[b] *= std::exp(step * std::clamp(e[b] - mean, -1.0, 1.0));
    log_sum += std::log(w[b]);
  }
  const double norm = std::exp(log_sum / static_cast<double>(nb));
  for (double& x : w) x /= norm;
  return w;
}

}  // namespace csa
