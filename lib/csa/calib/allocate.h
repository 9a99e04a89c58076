// Budget allocation: from what calibration measured to per-(layer, head) budget schedules.
// Every rule is driven by one scalar that the sweep controls (METHOD.md steps 2-3):
//
//   proportional  the original's rule: k = clamp(round(k_max · d / max d), floor, k_max), d a
//                 diffuseness statistic; scalar k_max. One budget per head.
//   power         k = clamp(round(k_max · (d / max d)^α), floor, k_max); α = 0 is uniform top-k,
//                 α = 1 proportional; scalar k_max.
//   equal_error   need-based: every (head, position band) gets the smallest budget of the grid
//                 whose error is at most ε; scalar: the predicted reads fraction (ε found by
//                 bisection to give it).
//   greedy        need-based water-filling: the budgets that minimise the total error over all
//                 queries for a total of reads (Lagrangian: each (head, band) minimises
//                 rows · error + λ · reads); scalar: the predicted reads fraction.
//   balanced      greedy within each position band, every band held to the same predicted error
//                 per query (one λ per band): dense-matching quality is a maximum over position
//                 buckets, so no band is starved to pay for another; scalar: the predicted reads
//                 fraction. Unbanded it is greedy.
//   greedy_p      greedy over the top-p curves: one mass p per query head (the top_p rule,
//                 rule.h), chosen from the curves' masses and p = 1 to minimise rows · rel_err
//                 + λ · reads over every band; scalar: the predicted reads fraction. The policy's
//                 mode is top_p: each query keeps the fewest keys reaching its head's p, so its
//                 reads follow its own row (and its context) instead of a fixed budget.
//
// Need-based rules are banded by default (a budget per position band, so budgets follow the
// query's context at both ends) and can be KV-aware under GQA (one budget per KV group and band,
// its cost the measured union of the group's top-k sets: what a kernel fetches).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "csa/attention/rule.h"
#include "csa/calib/need.h"

namespace csa {

enum class AllocationKind { kProportional, kPower, kEqualError, kGreedy, kBalanced, kGreedyP };
std::string allocation_name(AllocationKind k);
AllocationKind parse_allocation(const std::string& name);  // UsageError naming the choices
bool need_based(AllocationKind k);
// The rules whose policies are top_p (one mass per query head) rather than top_k budgets.
bool top_p_rule(AllocationKind k);

// The error a need-based rule balances (need.h).
enum class NeedMetric { kResRel, kResErr, kRelErr, kRelErrP95, kMassOut };
std::string need_metric_name(NeedMetric m);
NeedMetric parse_need_metric(const std::string& name);

struct AllocationRule {
  AllocationKind kind = AllocationKind::kProportional;
  // proportional / power
  int64_t k_max = 0;          // the scalar: the most diffuse cell's budget
  int64_t floor = 4;          // no cell below this
  double alpha = 1.0;         // power: exponent (proportional: 1)
  bool per_kv_group = false;  // GQA: one budget per KV group (the group's most diffuse head)
  // need-based
  NeedMetric metric = NeedMetric::kRelErr;
  double reads = 0;       // the scalar: predicted reads fraction (query side, KV side if kv_aware)
  bool banded = true;     // a budget per position band (false: one per head)
  bool kv_aware = false;  // one budget per KV group and band, cost = the group's union
  // Position-band weights [NB of the curves] on the error (empty: 1 each): the exchange rate
  // between one band's predicted error and another's. Dense-matching quality is a maximum over
  // position buckets, and a band's error reaches its buckets (and the later queries that read
  // its keys) at a rate the curves do not measure; csa-sweep learns the weights from its probes'
  // buckets (adapt_band_weights) and the policy records them.
  std::vector<double> band_weight;
};

// Proportional / power: budget per (layer, head) from diffuseness d [L][H].
std::vector<std::vector<int64_t>> allocate_budgets(const std::vector<std::vector<double>>& d,
                                                   const AllocationRule& rule, int64_t group_size);

// Keys read by the queries at positions [lo, hi) under budget k: sum of min(k, pos + 1).
double reads_in_band(int64_t lo, int64_t hi, int64_t k);

// A need-based allocation: the schedules [L] (top-k rules) or the masses [L][H] (greedy_p), and
// what the curves predict for them.
struct NeedAllocation {
  std::vector<BudgetSchedule> schedules;  // [L], bands of the curves (top-k rules)
  std::vector<std::vector<double>> p;     // [L][H] top-p masses (greedy_p)
  double reads_fraction = 0;              // predicted query-side reads / dense, over one window
  double kv_reads_fraction = 0;  // predicted KV-side (greedy_p under GQA: -1, not measured)
  double error = 0;              // total predicted error (rows · mean error)
};
NeedAllocation allocate_need(const NeedCurves& curves, const AllocationRule& rule);

// One dual-ascent step on the band weights from a probe: `bucket_delta_rel[s][j]` the relative
// ppl change of position bucket j (positions [j·ctx/B, (j+1)·ctx/B) of a window of `ctx`) on
// slice s. A band's excess e_b is its worst overlapping bucket over the slices, in units of
// `position_tolerance`; every weight moves by exp(step · clamp(e_b − mean e, −1, 1)) (bands the
// windows do not reach keep theirs), then the weights are scaled to a geometric mean of 1. A band
// whose buckets bind gains weight (its error costs more); one with room to spare loses it, so the
// next allocation at the same reads moves keys to where the criterion binds.
std::vector<double> adapt_band_weights(const std::vector<double>& weights,
                                       const std::vector<int64_t>& band_start,
                                       const std::vector<std::vector<double>>& bucket_delta_rel,
                                       int64_t ctx, double position_tolerance, double step);

// The total error the curves predict for any schedules [L] (rows · mean error over every
// (layer, head, band), times the band's weight if `band_weight` is not empty; budgets between grid
// points interpolated): what a sweep uses to predict where quality crosses its tolerance.
double predicted_error(const NeedCurves& curves, NeedMetric metric,
                       const std::vector<BudgetSchedule>& schedules,
                       const std::vector<double>& band_weight = {});
// The same for top-p masses p [L][H] from the top-p curves' rel_err (masses between grid points
// interpolated linearly, below the grid as its first, p >= 1 no error).
double predicted_error_top_p(const NeedCurves& curves, const std::vector<std::vector<double>>& p,
                             const std::vector<double>& band_weight = {});

}  // namespace csa
