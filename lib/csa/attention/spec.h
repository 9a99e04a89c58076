// Sparsity patterns as data: what a policy or a baseline asks every layer to keep (a LayerRule
// per layer, rule.h), with a label and its JSON form. Policies (calib/policy.h) and baselines
// (tools) build these; SparseAttentionHook applies them.
#pragma once

#include <string>
#include <vector>

#include "csa/attention/rule.h"
#include "csa/core/json.h"

namespace csa {

struct SparsitySpec {
  SparsityKind kind = SparsityKind::kDense;
  std::vector<BudgetSchedule> k;       // [L] (kTopK)
  PageSelection select;                // kTopK: token- or page-granular (rule.h)
  std::vector<std::vector<double>> p;  // [L][H] (kTopP)
  int64_t window = 0, sinks = 0, stride = 0;
  std::string label;  // e.g. "policy k_max=96", "uniform k=64"

  static SparsitySpec dense();
  static SparsitySpec top_k(std::vector<BudgetSchedule> schedules, std::string label);
  // A fixed budget per (layer, head): one band.
  static SparsitySpec top_k(const std::vector<std::vector<int64_t>>& budgets, std::string label);
  static SparsitySpec uniform_top_k(int64_t n_layer, int64_t n_head, int64_t k);
  static SparsitySpec top_p(int64_t n_layer, int64_t n_head, double p);
  // One mass per (layer, query head), each in (0, 1] (UsageError otherwise).
  static SparsitySpec top_p(std::vector<std::vector<double>> p, std::string label);
  static SparsitySpec local_window(int64_t window, int64_t sinks);
  static SparsitySpec strided(int64_t stride, int64_t window, int64_t sinks);

  // The same top_k budgets selected page by page (label and JSON say so); UsageError for
  // kinds other than top_k when `s` is paged.
  SparsitySpec with_selection(const PageSelection& s) const;
  // The rule of one layer (patterns are the same for every layer).
  LayerRule layer_rule(int64_t layer) const;
  // Mean top-k budget over every (layer, head, band) entry (0 for other kinds).
  double mean_budget() const;
  std::string kind_name() const { return sparsity_kind_name(kind); }
  Json to_json() const;
};

// Budget schedules in JSON: {"band_start": [...], "budgets": [L][H][NB]}, or with one band the
// plain grid {"budgets": [L][H]} (the form every fixed-k policy has used).
Json schedules_to_json(const std::vector<BudgetSchedule>& schedules);
// Reads either form; errors name `origin` and the field. Budgets are integers >= 1.
std::vector<BudgetSchedule> schedules_from_json(const Json& j, const std::string& origin,
                                                int64_t n_layer, int64_t n_head);

}  // namespace csa
