// The Markdown summaries for CI job summaries (csa-eval / csa-sweep --summary), from results
// documents shaped as the tools write them.
#include "csa/tools/results.h"
#include "support.h"

using namespace csa;

namespace {

Json eval_results(bool policy_matches) {
  Json r = {{"model", {{"name", "tiny|model"}}},
            {"corpus", {{"path", "-"}}},
            {"slice", {{"offset", 0}, {"tokens", 4096}}},
            {"protocol", {{"ctx", 512}, {"stride", 256}}},
            {"criteria", {{"tolerance", 0.005}, {"position_tolerance", 0.01}}},
            {"dense", {{"ppl", 20.0}}}};
  r["runs"] = Json::array();
  r["runs"].push_back({{"role", "policy"},
                       {"label", "policy p.json (k_max 64)"},
                       {"reads", {{"query_side_fraction", 0.25}, {"kv_side_fraction", 0.5}}},
                       {"comparison",
                        {{"ppl", policy_matches ? 20.05 : 20.2},
                         {"delta_rel", policy_matches ? 0.0025 : 0.01},
                         {"max_bucket_worsening_rel", policy_matches ? 0.004 : 0.02},
                         {"matches_dense", policy_matches}}}});
  r["runs"].push_back({{"role", "baseline"},
                       {"label", "uniform k=64"},
                       {"reads", {{"query_side_fraction", 0.4}, {"kv_side_fraction", 0.6}}},
                       {"comparison",
                        {{"ppl", 20.02},
                         {"delta_rel", 0.001},
                         {"max_bucket_worsening_rel", -0.001},
                         {"matches_dense", true}}}});
  return r;
}

}  // namespace

TEST_CASE("csa-eval --summary: a Markdown table with the verdict", "[unit]") {
  const std::string ok = eval_summary_markdown(eval_results(true));
  INFO(ok);
  CHECK(ok.find("### csa-eval: tiny\\|model on `-`") != std::string::npos);  // '|' escaped
  CHECK(ok.find("4096 tokens from token 0 · ctx 512, stride 256") != std::string::npos);
  CHECK(ok.find("| run | ppl | Δ ppl | reads | KV reads | worst bucket | verdict |") !=
        std::string::npos);
  CHECK(ok.find("| dense | 20.000 | — | 100% | 100% | — | reference |") != std::string::npos);
  CHECK(ok.find("| **policy p.json (k_max 64)** | 20.050 | +0.25% | 25.0% | 50.0% | +0.40% | "
                "matches dense |") != std::string::npos);
  CHECK(ok.find("| uniform k=64 | 20.020 | +0.10% | 40.0% | 60.0% | -0.10% | matches dense |") !=
        std::string::npos);
  CHECK(ok.find("**The policy matches dense quality**, reading 25.0% of the keys.") !=
        std::string::npos);

  const std::string bad = eval_summary_markdown(eval_results(false));
  INFO(bad);
  CHECK(bad.find("**misses**: Δ +1.00% > 0.5%, bucket +2.00% > 1.0%") != std::string::npos);
  CHECK(bad.find("**The policy misses dense quality**") != std::string::npos);
}

TEST_CASE("csa-eval --summary with --confidence: a miss by the upper bound says so", "[unit]") {
  Json r = eval_results(true);
  r["criteria"]["confidence"] = 0.95;
  Json& c = r["runs"][0]["comparison"];
  c["delta_rel_upper"] = 0.0045;
  c["max_bucket_worsening_upper"] = 0.012;
  c["matches_dense"] = false;
  const std::string md = eval_summary_markdown(r);
  INFO(md);
  CHECK(md.find("every position bucket ≤ 1.0% (one-sided 95% upper confidence bounds)") !=
        std::string::npos);
  CHECK(md.find("**misses**: bucket +0.40% (upper bound +1.20%) > 1.0% |") != std::string::npos);
}

TEST_CASE("csa-sweep --summary: the chosen caps, or that none matched", "[unit]") {
  Json r = eval_results(true);
  r.erase("runs");
  Json best = {{"k_max", 48},           {"ppl", 20.05},
               {"delta_rel", 0.0025},   {"max_bucket_worsening_rel", 0.004},
               {"reads_fraction", 0.2}, {"kv_reads_fraction", 0.3}};
  r["policy_sweep"] = {{"axis", "k_max"}, {"probes", Json::array({1, 2, 3})}, {"best", best}};
  best.erase("k_max");
  best["k"] = 96;
  best["reads_fraction"] = 0.5;
  r["uniform_sweep"] = {{"axis", "k"}, {"probes", Json::array({1, 2})}, {"best", best}};
  r["reads_advantage_vs_uniform"] = 2.5;
  const std::string md = sweep_summary_markdown(r);
  INFO(md);
  CHECK(md.find("### csa-sweep: ") != std::string::npos);
  CHECK(md.find("| **policy**, k_max 48 | 20.050 | +0.25% | 20.0% | 30.0% | +0.40% | matches "
                "dense (the smallest of 3 levels tried) |") != std::string::npos);
  CHECK(md.find("| uniform top-k, k 96 |") != std::string::npos);
  CHECK(md.find("**k_max 48 matches dense**, reading 20.0% of the keys, 2.50× fewer") !=
        std::string::npos);

  r["policy_sweep"].erase("best");
  r.erase("uniform_sweep");
  const std::string none = sweep_summary_markdown(r);
  INFO(none);
  CHECK(none.find("| **policy** | — | — | — | — | — | **no level matches** (3 tried) |") !=
        std::string::npos);
  CHECK(none.find("**No level matches dense** (`csa-sweep` exits 7).") != std::string::npos);
}
