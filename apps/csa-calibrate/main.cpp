// csa-calibrate MODEL CORPUS -> policy JSON.
#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/app/model_options.h"
#include "csa/app/rule_options.h"
#include "csa/core/json.h"
#include "csa/tools/tools.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Measure every (layer, head) on calibration text in one dense pass: diffuseness statistics\n"
      "and need curves (what top-k at each budget does to the head's output, per position band).\n"
      "Allocate key budgets from them and write a policy JSON (csa-sweep then picks the "
      "scalar).\n\n"
      "Rules (--rule): greedy (default: fewest total error for the reads, per position band),\n"
      "equal_error, greedy_p (one top-p mass per head, from the top-p curves), power\n"
      "(k ∝ diffuseness^alpha), proportional (the original CSA rule).\n\n"
      "Examples:\n"
      "  csa-calibrate llama-mini.pt ../shared/corpora/wikitext2-valid.tokens -o policy.json\n"
      "  csa-calibrate model.pt prose.txt code.txt --share 0.5,0.5 --tokens 20000 > policy.json\n"
      "  csa-calibrate model.pt valid.txt --rule proportional --metric mass_keys --k-max 128\n"
      "  csa-calibrate model.pt ids.txt --pretokenized --kv-aware"};
  csa::CalibrateToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-";
  csa::app::add_model_options(app, opts.model);
  app.add_option("corpus", opts.corpora,
                 "Calibration text(s) (UTF-8), or token ids with --pretokenized; - for stdin")
      ->required();
  csa::app::add_corpus_options(app, opts.corpus_options);
  app.add_option("-o,--output", output, "Policy JSON path (default: stdout)");
  app.add_option("--tokens", opts.tokens, "Calibration tokens in all (default 10000)")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--share", opts.shares,
                 "Token share of each corpus, e.g. 0.7,0.3 (default: equal)")
      ->delimiter(',')
      ->check(csa::app::number_at_least(1e-9));
  app.add_option("--offset", opts.offset, "First token used of every corpus (default 0)")
      ->check(csa::app::integer_at_least(0));
  app.add_option("--ctx", opts.ctx, "Window length (default: the model's context)")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--batch", opts.batch, "Windows per forward pass (default: automatic)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--metric", opts.metric,
                 "Diffuseness statistic of proportional / power: mass_keys (default, keys "
                 "covering --tau of the mass) or effective_keys (exp(entropy))")
      ->check(CLI::IsMember({"effective_keys", "mass_keys"}));
  app.add_option("--tau", opts.tau, "Mass for the mass_keys metric (default 0.9)")
      ->check(csa::app::number_in(0, 1, true));
  csa::app::add_rule_options(app, opts.rule, "Allocation rule (default greedy)");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::NamedPaths inputs = {{"--config", opts.model.config}};
    for (const auto& c : opts.corpora) inputs.push_back({"corpus", c});
    csa::app::check_std_streams(inputs);
    csa::Policy policy = csa::run_calibrate(opts, csa::app::recorded_command());
    csa::write_json_file(output, policy.to_json());
    return 0;
  });
}
