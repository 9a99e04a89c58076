// csa-calibrate MODEL CORPUS -> policy JSON.
#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/app/model_options.h"
#include "csa/core/json.h"
#include "csa/tools/tools.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Measure per-(layer, head) attention diffuseness on calibration text and allocate\n"
      "per-head key budgets proportional to it. Writes a policy JSON.\n\n"
      "Examples:\n"
      "  csa-calibrate llama-mini.pt ../shared/corpora/wikitext2-valid.tokens -o policy.json\n"
      "  csa-calibrate ../shared/models/qwen2-mini valid.txt --tokens 20000 --metric mass_keys\n"
      "  csa-calibrate model.pt ids.txt --pretokenized --k-max 128 > policy.json"};
  csa::CalibrateToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-";
  csa::app::add_model_options(app, opts.model);
  app.add_option("corpus", opts.corpus,
                 "Calibration text (UTF-8) or token ids with --pretokenized; - for stdin")
      ->required();
  csa::app::add_corpus_options(app, opts.corpus_options);
  app.add_option("-o,--output", output, "Policy JSON path (default: stdout)");
  app.add_option("--tokens", opts.tokens, "Calibration tokens (default 10000)")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--offset", opts.offset, "First corpus token to use (default 0)")
      ->check(csa::app::integer_at_least(0));
  app.add_option("--ctx", opts.ctx, "Window length (default: the model's context)")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--batch", opts.batch, "Windows per forward pass (default: automatic)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--metric", opts.metric,
                 "Diffuseness metric: mass_keys (default, keys covering --tau of the mass) or "
                 "effective_keys (exp(entropy))")
      ->check(CLI::IsMember({"effective_keys", "mass_keys"}));
  app.add_option("--tau", opts.tau, "Mass for the mass_keys metric (default 0.9)")
      ->check(csa::app::number_in(0, 1, true));
  app.add_option("--k-max", opts.k_max,
                 "Initial cap (default: the most diffuse cell's measured keys, rounded up to 8)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--floor", opts.floor, "Smallest budget of any cell (default 4)")
      ->check(csa::app::integer_at_least(1));
  app.add_flag("--per-kv-group", opts.per_kv_group,
               "GQA: one budget per KV group (its most diffuse query head)");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::check_std_streams({{"corpus", opts.corpus}, {"--config", opts.model.config}});
    csa::Policy policy = csa::run_calibrate(opts, csa::app::recorded_command());
    csa::write_json_file(output, policy.to_json());
    return 0;
  });
}
