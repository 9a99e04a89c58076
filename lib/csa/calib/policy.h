// The deployed artefact of CSA: per-(layer, head) top-k budget schedules (or, mode top_p, one
// top-p mass per (layer, query head)) plus everything needed
// to trust and re-allocate them — the model identity, the diffuseness statistics and the need
// curves measured on the calibration text, the allocation rule and its scalar, the calibration
// sources and the runs that made it. JSON schema: docs/policy-format.md (version 2; version 1
// policies, fixed budgets from the proportional rule, are still read).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "csa/attention/spec.h"
#include "csa/calib/allocate.h"
#include "csa/calib/need.h"
#include "csa/calib/stats.h"
#include "csa/core/json.h"
#include "csa/model/model.h"

namespace csa {

inline constexpr int kPolicySchemaVersion = 2;

enum class DiffusenessMetric { kEffectiveKeys, kMassKeys };
DiffusenessMetric parse_metric(const std::string& name);
std::string metric_name(DiffusenessMetric m);

struct Policy {
  Json model;  // ModelIdentity::to_json
  DiffusenessMetric metric = DiffusenessMetric::kEffectiveKeys;
  double tau = 0.9;
  std::vector<std::vector<CellStats>> stats;  // [L][H]
  std::optional<NeedCurves> need;             // absent in version 1 policies
  AllocationRule rule;
  std::vector<BudgetSchedule> budgets;  // [L] (mode top_k)
  std::vector<std::vector<double>>
      top_p;             // [L][H] masses (mode top_p: a top_p_rule; budgets empty)
  PageSelection select;  // how the budgets are applied: token- or page-granular (rule.h)
  double predicted_reads = -1, predicted_kv_reads = -1;  // need-based rules: from the curves
  Json calibration;  // sources (corpus identity, offset, tokens), ctx, windows
  Json sweep;        // the sweep that chose the scalar (null until csa-sweep)
  Json run;          // run metadata of the tool that wrote it

  std::vector<std::vector<double>> diffuseness() const;  // the chosen metric per cell
  // The rule's scalar: k_max (proportional, power) or the target reads fraction (need-based).
  double scalar() const;
  // top_p when the rule is greedy_p, else top_k.
  SparsityKind mode() const;
  // The error the need curves predict for this policy's budgets or masses (allocate.h), with
  // its band weights; needs the curves.
  double predicted_error() const;
  // A copy re-allocated at another scalar (measurements unchanged).
  Policy reallocated(double scalar) const;
  // One dual-ascent step on a need-based rule's position-band weights (adapt_band_weights,
  // allocate.h) from a probe at `scalar`: its per-slice bucket changes over windows of `ctx`.
  // True when the allocation at that scalar changed; an unchanged one would measure the same
  // again, so a sweep's refine need not repeat the probe.
  bool adapt_band_weights_at(double scalar,
                             const std::vector<std::vector<double>>& bucket_delta_rel, int64_t ctx,
                             double position_tolerance, double step);
  // A copy re-allocated with another rule (need-based rules need the curves: InputError naming
  // `origin` without them).
  Policy with_rule(const AllocationRule& rule, const std::string& origin = "policy") const;
  // The starting cap of the k_max rules: the most diffuse cell's statistic rounded up to 8
  // (at most the calibration context).
  int64_t starting_cap() const;
  Policy recapped(int64_t k_max) const { return reallocated(static_cast<double>(k_max)); }
  SparsitySpec sparsity(const std::string& label = "") const;
  std::string describe() const;   // e.g. "greedy reads 4.2%" / "proportional k_max 96"
  std::string rule_name() const;  // e.g. "greedy:res_rel+kv", "power(0.5)", "proportional"
  // Mean budget over every (layer, head, band) entry (a quick "how sparse" figure).
  double mean_budget() const;
  // [L][H] when every layer has one band (fixed budgets); empty otherwise.
  std::vector<std::vector<int64_t>> fixed_budgets() const;

  Json to_json() const;
  // Validates schema, version, dimensions and budgets; errors name `origin` and the field.
  static Policy from_json(const Json& j, const std::string& origin);
  static Policy read(const std::string& path);
  // InputError unless the policy was made for a model of this shape (family, layers, heads, KV
  // heads); a different weights hash is an error too unless `allow_other_weights`.
  void check_model(const Model& model, const std::string& origin, bool allow_other_weights) const;
};

}  // namespace csa
