// csa-sweep MODEL POLICY CORPUS -> the re-capped policy + sweep results JSON.
#include <spdlog/spdlog.h>

#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/app/model_options.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/tools/results.h"
#include "csa/tools/tools.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Pick the smallest cap k_max whose perplexity matches dense on held-out text.\n"
      "Caps are searched on a doubling grid then bisected; the dense pass runs once. Also\n"
      "sweeps uniform top-k on the same slice (the baseline per-head calibration must beat).\n\n"
      "Examples:\n"
      "  csa-sweep model.pt policy.json ../shared/corpora/wikitext2-valid.tokens \\\n"
      "            -o policy.swept.json --results sweep.json\n"
      "  csa-sweep model.pt policy.json valid.txt --tolerance 0.01 --tokens 65536 --no-uniform\n\n"
      "Exit code 7 when no cap up to --max-cap matches dense (the results are still written)."};
  csa::SweepToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-", results_path, summary;
  bool no_uniform = false;
  csa::app::add_model_options(app, opts.model);
  app.add_option("policy", opts.policy, "Policy from csa-calibrate; - for stdin")->required();
  app.add_option("corpus", opts.corpus, "Held-out text for the sweep; - for stdin")->required();
  csa::app::add_corpus_options(app, opts.corpus_options);
  app.add_option("-o,--output", output, "Re-capped policy JSON (default: stdout)");
  app.add_option("--results", results_path, "Sweep results JSON (every cap tried)");
  app.add_option("--summary", summary, "Also write a Markdown table of the chosen caps (CI)");
  app.add_option("--tokens", opts.tokens, "Sweep slice length in tokens (default 32768)")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--offset", opts.offset,
                 "First token of the slice (default: after the calibration slice if the corpus is "
                 "the calibration corpus, else 0)")
      ->check(csa::app::integer_at_least(0));
  csa::app::add_protocol_options(app, opts.protocol);
  app.add_option("--tolerance", opts.sweep.tolerance, "Relative ppl tolerance (default 0.005)")
      ->check(csa::app::number_at_least(0));
  app.add_option("--position-tolerance", opts.sweep.position_tolerance,
                 "Per-position-bucket relative tolerance (default 0.01)")
      ->check(csa::app::number_at_least(0));
  app.add_option("--min-cap", opts.sweep.min_cap, "First cap of the grid (default 8)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--max-cap", opts.sweep.max_cap, "Largest cap (default: the context)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--resolution", opts.sweep.resolution,
                 "Bisection stops at this relative gap (default 0.05)")
      ->check(csa::app::number_in(0, 1));
  app.add_flag("--no-uniform", no_uniform, "Skip the uniform top-k sweep");
  app.add_flag("--allow-other-weights", opts.allow_other_weights,
               "Apply a policy calibrated on other weights of the same shape");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::check_std_streams(
        {{"policy", opts.policy}, {"corpus", opts.corpus}, {"--config", opts.model.config}},
        {{"-o", output}, {"--results", results_path}, {"--summary", summary}});
    opts.uniform = !no_uniform;
    csa::SweepOutputs out = csa::run_sweep(opts, csa::app::recorded_command());
    if (!results_path.empty()) csa::write_json_file(results_path, out.results);
    if (!summary.empty()) csa::write_file_atomic(summary, csa::sweep_summary_markdown(out.results));
    if (!out.matched)
      throw csa::QualityError("no cap up to " +
                              (opts.sweep.max_cap > 0 ? std::to_string(opts.sweep.max_cap)
                                                      : std::string("the context")) +
                              " matches dense within the tolerances" +
                              (results_path.empty() ? std::string(" (write them with --results)")
                                                    : "; see " + results_path));
    csa::write_json_file(output, out.policy);
    return 0;
  });
}
