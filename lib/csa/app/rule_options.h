// CLI11 bindings for the allocation rule (csa-calibrate, csa-sweep --rule).
#pragma once

#include <CLI/CLI.hpp>

#include "csa/tools/tools.h"

namespace csa::app {

inline void add_rule_options(CLI::App& app, RuleOptions& r, const char* rule_help) {
  app.add_option("--rule", r.rule, rule_help)
      ->check(CLI::IsMember(
          {"greedy", "balanced", "equal_error", "greedy_p", "power", "proportional"}));
  app.add_option("--need-metric", r.need_metric,
                 "Error a need-based rule balances: rel_err (default: relative L2 error of the "
                 "head's output), rel_err_p95, res_rel (squared error reaching the residual "
                 "stream, relative to the stream's scale), res_err, mass_out")
      ->check(CLI::IsMember({"res_rel", "res_err", "rel_err", "rel_err_p95", "mass_out"}));
  app.add_flag("--unbanded", r.unbanded,
               "Need-based: one budget per head instead of one per position band");
  app.add_flag("--kv-aware", r.kv_aware,
               "Need-based, GQA: one budget per KV group, paid by the union of its heads' keys");
  app.add_option("--reads", r.reads,
                 "Need-based: starting reads fraction in (0, 1] (default 0.1; csa-sweep moves it)");
  app.add_option("--k-max", r.k_max,
                 "proportional / power: starting cap (default: the most diffuse cell's measured "
                 "keys, rounded up to 8)");
  app.add_option("--floor", r.floor, "proportional / power: smallest budget (default 4)");
  app.add_option("--alpha", r.alpha,
                 "power: budget ∝ diffuseness^alpha (0 uniform, 1 proportional)");
  app.add_flag("--per-kv-group", r.per_kv_group,
               "proportional / power, GQA: one budget per KV group (its most diffuse head)");
}

}  // namespace csa::app
