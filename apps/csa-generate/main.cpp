// csa-generate MODEL [--prompt TEXT] [--policy P]: dense and policy decoding side by side.
#include <iostream>

#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/app/model_options.h"
#include "csa/tools/tools.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Generate text greedily or by sampling; with --policy, also with the sparse policy applied,\n"
      "side by side with dense.\n\n"
      "Examples:\n"
      "  csa-generate ../shared/models/stories260K --max-new-tokens 60\n"
      "  csa-generate llama-mini.pt --prompt 'The history of' --policy policy.json\n"
      "  csa-generate model.pt --prompt 'int main(' --temperature 0.8 --top-p 0.95 --seed 1 "
      "--json"};
  csa::GenerateToolOptions opts;
  csa::app::CommonOptions common;
  bool json = false;
  csa::app::add_model_options(app, opts.model);
  app.add_option("--prompt", opts.prompt, "Prompt text (default: start from BOS)");
  app.add_option("--policy", opts.policy, "Also generate with this policy; - for stdin");
  app.add_option("-n,--max-new-tokens", opts.generate.max_new_tokens, "Tokens to generate (64)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--temperature", opts.generate.temperature, "0 = greedy (default)")
      ->check(csa::app::number_at_least(0));
  app.add_option("--top-k", opts.generate.top_k, "Sampling: keep the k most likely tokens (0: all)")
      ->check(csa::app::integer_at_least(0));
  app.add_option("--top-p", opts.generate.top_p, "Sampling: nucleus mass (default 1: all)")
      ->check(csa::app::number_in(0, 1, true));
  app.add_option("--seed", opts.generate.seed, "Sampling seed")
      ->check(csa::app::integer_at_least(0));
  app.add_flag("--json", json, "Print JSON instead of text");
  app.add_option("--select", opts.select,
                 "Apply the policy with this selection (token or page:P[:spread=S][:group][:topk]; "
                 "docs/decoding.md). Default: the policy's own");
  app.add_flag("--allow-other-weights", opts.allow_other_weights,
               "Apply a policy calibrated on other weights of the same shape");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::check_std_streams({{"--policy", opts.policy}, {"--config", opts.model.config}});
    csa::Json out = csa::run_generate(opts, csa::app::recorded_command());
    if (json) {
      std::cout << csa::dump_json(out);
    } else {
      std::cout << "--- dense\n" << opts.prompt << out["dense"]["text"].get<std::string>() << "\n";
      if (out.contains("policy"))
        std::cout << "--- policy (k_max " << out["policy"]["k_max"] << ", identical for "
                  << out["policy"]["tokens_identical_to_dense"] << " tokens)\n"
                  << opts.prompt << out["policy"]["text"].get<std::string>() << "\n";
    }
    return 0;
  });
}
