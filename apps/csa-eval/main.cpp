// csa-eval MODEL CORPUS [--policy P] [--baseline B ...] -> results JSON.
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
      "Sliding-window perplexity, dense vs a policy and baselines, with reads accounting,\n"
      "per-position buckets and attention cost. Writes a results JSON.\n\n"
      "Baselines (--baseline, repeatable): uniform:K (top-K for every head), topp:P,\n"
      "window:W[,sinks:S] (StreamingLLM), strided:S[,window:W][,sinks:S].\n\n"
      "Examples:\n"
      "  csa-eval model.pt ../shared/corpora/wikitext2-test.raw --policy policy.json -o eval.json\n"
      "  csa-eval model.pt test.raw --policy p.json --baseline uniform:64 --baseline window:256\n"
      "  csa-eval model.pt test.raw --max-tokens 65536 --ctx 1024 --stride 512\n"
      "  csa-calibrate M cal.txt | csa-sweep M - val.txt | csa-eval M test.txt --policy - \\\n"
      "      --require-quality --summary summary.md       (a CI quality gate: docs/ci.md)\n\n"
      "Exit code 7 with --require-quality when the policy misses dense-matching quality."};
  csa::EvalToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-", summary;
  bool require_quality = false;
  csa::app::add_model_options(app, opts.model);
  app.add_option("corpus", opts.corpus,
                 "Evaluation text (UTF-8) or ids with --pretokenized; - for stdin")
      ->required();
  csa::app::add_corpus_options(app, opts.corpus_options);
  app.add_option("-o,--output", output, "Results JSON (default: stdout)");
  app.add_option("--summary", summary,
                 "Also write a Markdown table (dense vs policies vs baselines) for a CI job "
                 "summary, e.g. $GITHUB_STEP_SUMMARY");
  app.add_option("--policy", opts.policies, "Policy JSON to evaluate (repeatable); - for stdin");
  app.add_option("--baseline", opts.baselines, "Baseline pattern (repeatable), e.g. uniform:64");
  app.add_option("--max-tokens", opts.max_tokens, "Evaluate only the first N tokens")
      ->check(csa::app::integer_at_least(2));
  app.add_option("--offset", opts.offset, "First token evaluated (default 0)")
      ->check(csa::app::integer_at_least(0));
  csa::app::add_protocol_options(app, opts.protocol);
  app.add_option("--tolerance", opts.tolerance, "Relative ppl tolerance (default 0.005)")
      ->check(csa::app::number_at_least(0));
  app.add_option("--position-tolerance", opts.position_tolerance,
                 "Per-position-bucket relative tolerance (default 0.01)")
      ->check(csa::app::number_at_least(0));
  app.add_option(
         "--confidence", opts.confidence,
         "One-sided confidence level of the dense-matching bound, e.g. 0.95: a policy matches "
         "(matches_dense, --require-quality) only when the upper confidence bound of Δ ppl and "
         "of every position bucket (standard errors over clusters of overlapping windows; "
         "docs/metrics.md) is within its tolerance. 0 or in [0.5, 1) (default 0: point "
         "estimates)")
      ->check(csa::app::number_in(0, 1, false, true));
  app.add_flag("--require-quality", require_quality,
               "Exit 7 if a policy does not match dense quality");
  app.add_option("--select", opts.select,
                 "Selection granularity of every top-k run: token, or page:P (whole pages of P "
                 "positions, as a paged decoder reads them; docs/decoding.md) with optional "
                 ":spread=S (page score between Quest's bound, 1, and the page centre, 0), "
                 ":oracle (analysis) and :topk (top-k inside the kept pages). Default: each "
                 "policy's own, token for baselines");
  app.add_flag("--allow-other-weights", opts.allow_other_weights,
               "Apply a policy calibrated on other weights of the same shape");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::NamedPaths inputs = {{"corpus", opts.corpus}, {"--config", opts.model.config}};
    for (const auto& p : opts.policies) inputs.push_back({"--policy", p});
    csa::app::check_std_streams(inputs, {{"-o", output}, {"--summary", summary}});
    csa::EvalOutputs out = csa::run_eval(opts, csa::app::recorded_command());
    csa::write_json_file(output, out.results);
    if (!summary.empty()) csa::write_file_atomic(summary, csa::eval_summary_markdown(out.results));
    if (require_quality && !out.policy_matches) {
      const std::string see = !summary.empty() && summary != "-" ? summary
                              : output != "-"                    ? output
                                                                 : "the results on stdout";
      throw csa::QualityError("the policy misses dense-matching quality (see " + see + ")");
    }
    return 0;
  });
}
