// csa-calibrate, csa-sweep and csa-eval on bad inputs: each case checks the exit code
// (lib/csa/core/error.h), the part of the message that tells the user what is wrong, and that no
// output file is left behind. Models: stories260K (the smallest shared model, ctx 512) and a
// synthetic tiny Llama (tests/model_factory.h) whose policy is "a policy of another model".
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_support.h"
#include "cli/run_parallel.h"
#include "csa/calib/policy.h"
#include "csa/core/file.h"
#include "csa/core/json.h"
#include "csa/model/model.h"
#include "model_factory.h"

using namespace csa;

namespace {

// A policy for `model_path` as csa-calibrate writes it, from made-up statistics (calibration
// itself is tested elsewhere; here only the policy's identity and shape matter).
Json policy_for(const std::string& model_path) {
  const Model m = load_model(model_path);
  Policy p;
  p.model = m.identity.to_json(m.config);
  p.stats.assign(static_cast<size_t>(m.config.n_layer),
                 std::vector<CellStats>(static_cast<size_t>(m.config.n_head)));
  for (size_t l = 0; l < p.stats.size(); ++l)
    for (size_t h = 0; h < p.stats[l].size(); ++h) {
      CellStats& c = p.stats[l][h];
      c.effective_keys = c.mass_keys = 1.0 + static_cast<double>((l * 7 + h * 3) % 11);
      c.entropy = std::log(c.effective_keys);
      c.causal_keys = 32;
    }
  p.rule.floor = 2;
  return p.recapped(16).to_json();
}

struct Case {
  std::string app;
  std::string args;    // without -o
  int code;            // expected exit code
  std::string needle;  // part of the message
  std::string output;  // the -o path that must not exist afterwards ("" for none)
};

void check_cases(const std::vector<Case>& cases) {
  std::vector<std::pair<std::string, std::string>> cmds;
  for (const Case& c : cases)
    cmds.emplace_back(c.app, c.args + (c.output.empty() ? "" : " -o " + test::quote(c.output)));
  auto runs = test::run_apps_parallel(cmds);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].app << " " << cmds[i].second << "\n" << runs[i].output);
    CHECK(runs[i].exit_code == cases[i].code);
    CHECK(runs[i].output.find(cases[i].needle) != std::string::npos);
    if (!cases[i].output.empty()) CHECK_FALSE(file_exists(cases[i].output));
  }
}

}  // namespace

TEST_CASE("csa-calibrate / csa-sweep / csa-eval: bad inputs are refused clearly", "[cli]") {
  test::TempDir dir;
  const std::string stories = test::shared_dir() + "/models/stories260K";
  const std::string model = test::quote(stories);
  auto q = [&](const std::string& name) { return test::quote(dir.file(name)); };
  auto out = [&](const std::string& name) { return dir.file(name); };

  test::write_text(dir.file("story.txt"), test::story_text());
  test::write_text(dir.file("short.txt"), "Lily saw a dog.");
  test::write_text(dir.file("empty.txt"), "");
  test::write_text(dir.file("latin1.txt"), "Lily saw a caf\xe9 and a dog.");  // byte 14
  // A synthetic tiny Llama (2 layers x 4 heads, 2 KV heads, ctx 32): "another model".
  const std::string tiny = dir.file("tiny");
  REQUIRE(std::system(("mkdir -p " + test::quote(tiny)).c_str()) == 0);
  test::write_hf_dir(tiny, test::tiny_config("llama"),
                     test::tiny_weights(test::tiny_config("llama")));

  // A good policy for stories260K, one for the tiny model, and broken variants of the good one.
  const Json good = policy_for(stories);
  REQUIRE(good.at("budgets").size() == 5);
  test::write_text(dir.file("policy.json"), good.dump());
  test::write_text(dir.file("tiny_policy.json"), policy_for(tiny).dump());
  auto write_policy = [&](const std::string& name, const std::function<void(Json&)>& edit) {
    Json p = good;
    edit(p);
    test::write_text(dir.file(name), p.dump());
    return q(name);
  };
  const std::string v2 = write_policy("v3.json", [](Json& p) { p["schema_version"] = 3; });
  const std::string zero = write_policy("zero.json", [](Json& p) { p["budgets"][1][3] = 0; });
  const std::string neg = write_policy("neg.json", [](Json& p) { p["budgets"][4][7] = -8; });
  const std::string rows = write_policy("rows.json", [](Json& p) { p["budgets"].erase(4); });
  const std::string cols =
      write_policy("cols.json", [](Json& p) { p["budgets"][2].erase(p["budgets"][2].begin()); });
  const std::string other_weights = write_policy(
      "weights.json", [](Json& p) { p["model"]["weights_sha256"] = std::string(64, '0'); });
  const std::string tiny_policy = q("tiny_policy.json");
  const std::string policy = q("policy.json");

  const std::string common = " -q --threads 1";
  const std::string cal_args = " --tokens 128 --ctx 64" + common;
  const std::string eval_args = " --max-tokens 96 --ctx 64" + common;
  const std::string sweep_args = " --tokens 128 --ctx 64 --no-uniform --max-level 16" + common;
  std::vector<Case> cases = {
      // A policy of another model: refused by both tools that apply policies.
      {"csa-eval", model + " " + q("story.txt") + " --policy " + tiny_policy + eval_args, 6,
       "this policy was calibrated for tiny (llama, 2 layers x 4 heads, 2 KV heads), not for "
       "stories260K (llama, 5 layers x 8 heads, 4 KV heads)",
       out("e_other.json")},
      {"csa-sweep", model + " " + tiny_policy + " " + q("story.txt") + sweep_args, 6,
       "not for stories260K", out("s_other.json")},
      // Same shape, other weights: refused unless --allow-other-weights.
      {"csa-eval", model + " " + q("story.txt") + " --policy " + other_weights + eval_args, 6,
       "--allow-other-weights", out("e_weights.json")},
      {"csa-eval", model + " " + q("story.txt") + " --policy " + v2 + eval_args, 6,
       "policy schema_version 3 is not supported (this csa reads versions 1..2)", out("e_v2.json")},
      // Zero and negative budgets, budgets of the wrong L x H (against the policy's own model).
      {"csa-eval", model + " " + q("story.txt") + " --policy " + zero + eval_args, 4,
       "field 'budgets' [1][3] = 0 (budgets are integers >= 1)", out("e_zero.json")},
      {"csa-sweep", model + " " + neg + " " + q("story.txt") + sweep_args, 4,
       "[4][7] = -8 (budgets are integers >= 1)", out("s_neg.json")},
      {"csa-eval", model + " " + q("story.txt") + " --policy " + rows + eval_args, 4,
       "must be an array of n_layer = 5 rows", out("e_rows.json")},
      {"csa-sweep", model + " " + cols + " " + q("story.txt") + sweep_args, 4,
       "row 2 must have n_head = 8 entries", out("s_cols.json")},
      // --ctx beyond the model's positions.
      {"csa-eval", model + " " + q("story.txt") + " --ctx 600" + common, 6,
       "--ctx 600 is longer than the model supports (max_position_embeddings = 512)",
       out("e_ctx.json")},
      {"csa-sweep", model + " " + policy + " " + q("story.txt") + " --ctx 513" + common, 6,
       "--ctx 513 is longer", out("s_ctx.json")},
      // Corpora: empty, not UTF-8 (the byte offset), shorter than one window.
      {"csa-eval", model + " " + q("empty.txt") + eval_args, 6, "the corpus is empty",
       out("e_empty.json")},
      {"csa-eval", model + " " + q("latin1.txt") + eval_args, 6, "not valid UTF-8 at byte 14",
       out("e_latin1.json")},
      // Calibration and the sweep need one full window: statistics of short windows would
      // understate late queries' diffuseness, and the cap is chosen for ctx-long windows.
      {"csa-calibrate", model + " " + q("short.txt") + cal_args, 6,
       "calibration needs at least 64 tokens", out("c_short.json")},
      {"csa-sweep", model + " " + policy + " " + q("short.txt") + sweep_args, 6,
       "the sweep needs at least 64 tokens", out("s_short.json")},
      // Missing files.
      {"csa-calibrate", test::quote(dir.file("no-model")) + " " + q("story.txt") + cal_args, 3,
       "no-model: no such file", out("c_nomodel.json")},
      {"csa-eval", model + " " + q("missing.txt") + eval_args, 3, "missing.txt",
       out("e_missing.json")},
      {"csa-eval", model + " " + q("story.txt") + " --policy " + q("nope.json") + eval_args, 3,
       "nope.json", out("e_nopolicy.json")},
      // A run that succeeds but cannot write its output.
      {"csa-calibrate", model + " " + q("story.txt") + cal_args + " -o /nonexistent/dir/p.json", 3,
       "/nonexistent/dir", ""},
  };
  // A corpus shorter than one window still evaluates, as one shorter window (the HF protocol
  // on a text shorter than ctx), with a warning.
  cases.push_back({"csa-eval",
                   model + " " + q("short.txt") + " --ctx 64 --threads 1 -o " + q("e_short.json"),
                   0, "shorter than one window of 64: one short window", ""});
  check_cases(cases);
  REQUIRE(file_exists(dir.file("e_short.json")));
  const Json r = read_json_file(dir.file("e_short.json"));
  const int64_t n = r.at("slice").at("tokens").get<int64_t>();
  CHECK(n >= 2);
  CHECK(n < 64);
  CHECK(r.at("dense").at("windows") == 1);
  CHECK(r.at("dense").at("scored_targets") == n - 1);
}
