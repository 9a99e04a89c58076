// The deployed artefact of CSA: per-(layer, head) top-k budgets plus everything needed to trust
// and re-cap them — the model identity, the metric and its statistics, the calibration corpus
// and the run that made it. JSON schema: docs/policy-format.md.
#pragma once

#include <string>
#include <vector>

#include "csa/attention/spec.h"
#include "csa/calib/stats.h"
#include "csa/core/json.h"
#include "csa/model/model.h"

namespace csa {

inline constexpr int kPolicySchemaVersion = 1;

enum class DiffusenessMetric { kEffectiveKeys, kMassKeys };
DiffusenessMetric parse_metric(const std::string& name);
std::string metric_name(DiffusenessMetric m);

struct AllocationRule {
  int64_t k_max = 0;          // the most diffuse cell's budget
  int64_t floor = 4;          // no cell below this
  bool per_kv_group = false;  // GQA: one budget per KV group (the group's most diffuse head)
};

// budget = clamp(round(k_max * d / max(d)), floor, k_max) per cell; with per_kv_group, d is
// replaced by the maximum over the query heads of each KV group (`group_size` heads).
std::vector<std::vector<int64_t>> allocate_budgets(
    const std::vector<std::vector<double>>& diffuseness, const AllocationRule& rule,
    int64_t group_size);

struct Policy {
  Json model;  // ModelIdentity::to_json
  DiffusenessMetric metric = DiffusenessMetric::kEffectiveKeys;
  double tau = 0.9;
  std::vector<std::vector<CellStats>> stats;  // [L][H]
  AllocationRule rule;
  std::vector<std::vector<int64_t>> budgets;  // [L][H]
  Json calibration;                           // corpus identity, tokens, ctx, windows
  Json sweep;                                 // the sweep that chose k_max (null until csa-sweep)
  Json run;                                   // run metadata of the tool that wrote it

  std::vector<std::vector<double>> diffuseness() const;  // the chosen metric per cell
  // A copy re-allocated at another cap (statistics unchanged).
  Policy recapped(int64_t k_max) const;
  SparsitySpec sparsity(const std::string& label = "") const;
  // Mean budget over cells (a quick "how sparse" figure).
  double mean_budget() const;

  Json to_json() const;
  // Validates schema, version, dimensions and budgets; errors name `origin` and the field.
  static Policy from_json(const Json& j, const std::string& origin);
  static Policy read(const std::string& path);
  // InputError unless the policy was made for a model of this shape (family, layers, heads, KV
  // heads); a different weights hash is an error too unless `allow_other_weights`.
  void check_model(const Model& model, const std::string& origin, bool allow_other_weights) const;
};

}  // namespace csa
