// csa-sweep MODEL POLICY CORPUS -> the re-capped policy + sweep results JSON.
#include <spdlog/spdlog.h>

#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/app/model_options.h"
#include "csa/app/rule_options.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/tools/results.h"
#include "csa/tools/tools.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Pick the smallest level of the policy's scalar (k_max, or the reads fraction of a\n"
      "need-based rule) whose perplexity matches dense on held-out text. Levels are bracketed\n"
      "by halving / doubling from the policy's own, then narrowed by interpolation; the dense\n"
      "pass runs once. Also sweeps uniform top-k on the same slice (the baseline a calibrated\n"
      "policy must beat). --rule re-allocates the policy with another rule first.\n\n"
      "Examples:\n"
      "  csa-sweep model.pt policy.json ../shared/corpora/wikitext2-valid.tokens \\\n"
      "            -o policy.swept.json --results sweep.json\n"
      "  csa-sweep model.pt policy.json valid.txt --tolerance 0.01 --tokens 65536 --no-uniform\n"
      "  csa-sweep model.pt policy.json valid.txt --rule equal_error --need-metric rel_err\n\n"
      "Exit code 7 when no level up to --max-level matches dense (the results are still written)."};
  csa::SweepToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-", results_path, summary;
  bool no_uniform = false;
  csa::app::add_model_options(app, opts.model);
  app.add_option("policy", opts.policy, "Policy from csa-calibrate; - for stdin")->required();
  app.add_option("corpus", opts.corpora,
                 "Held-out text(s) for the sweep (- for stdin): a level must match dense on every "
                 "one")
      ->required();
  app.add_option("--share", opts.shares, "Token share of each text, e.g. 0.5,0.5 (default: equal)")
      ->delimiter(',')
      ->check(csa::app::number_at_least(1e-9));
  csa::app::add_corpus_options(app, opts.corpus_options);
  app.add_option("-o,--output", output, "Swept policy JSON (default: stdout)");
  app.add_option("--results", results_path, "Sweep results JSON (every level tried)");
  app.add_option("--summary", summary, "Also write a Markdown table of the chosen levels (CI)");
  app.add_option("--tokens", opts.tokens, "Sweep tokens in all (default 32768)")
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
  app.add_option(
         "--confidence", opts.sweep.confidence,
         "One-sided confidence level of the dense-matching bound, e.g. 0.95: a level matches "
         "only when the upper confidence bound of Δ ppl and of every position bucket (standard "
         "errors over clusters of overlapping windows; docs/metrics.md) is within its "
         "tolerance. 0 (point estimates) or in [0.5, 1) (default 0.9)")
      ->check(csa::app::number_in(0, 1, false, true));
  app.add_option("--start", opts.start, "First level tried (default: the policy's own)")
      ->check(csa::app::number_at_least(1e-9));
  app.add_option("--max-level", opts.max_level,
                 "Largest level (default: the context for caps, 1 for reads fractions)")
      ->check(csa::app::number_at_least(1e-9));
  app.add_option("--resolution", opts.sweep.resolution,
                 "The sweep stops at this relative gap between a miss and a match (default 0.05)")
      ->check(csa::app::number_in(0, 1, true));
  app.add_option("--max-passes", opts.sweep.max_passes, "Sparse passes per sweep at most (16)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--refine-passes", opts.sweep.refine_passes,
                 "Probes below the smallest matching level, every axis alike (within "
                 "--max-passes); need-based rules' position-band weights adapt to each probe's "
                 "buckets (default 6; 0: no refine, fixed weights)")
      ->check(csa::app::integer_at_least(0));
  csa::app::add_rule_options(app, opts.rule, "Re-allocate with this rule before sweeping");
  std::vector<std::string> candidates;
  app.add_option("--candidate", candidates,
                 "Also sweep this rule from the same measurements and keep the one reading the "
                 "fewest keys (repeatable): RULE[:METRIC][+unbanded][+kv], e.g. greedy:rel_err, "
                 "greedy_p:rel_err (per-head top-p)");
  bool no_fallback = false;
  app.add_flag("--no-uniform-fallback", no_fallback,
               "Write the rule's policy even where uniform top-k reads fewer keys");
  app.add_flag("--no-uniform", no_uniform, "Skip the uniform top-k sweep");
  app.add_option(
      "--select", opts.select,
      "Sweep the policy under this selection (token or page:P[:spread=S][:group][:oracle][:topk]; "
      "docs/decoding.md) and write it into the swept policy. Default: the policy's own");
  app.add_flag("--allow-other-weights", opts.allow_other_weights,
               "Apply a policy calibrated on other weights of the same shape");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::NamedPaths inputs = {{"policy", opts.policy}, {"--config", opts.model.config}};
    for (const auto& c : opts.corpora) inputs.push_back({"corpus", c});
    csa::app::check_std_streams(
        inputs, {{"-o", output}, {"--results", results_path}, {"--summary", summary}});
    opts.uniform = !no_uniform;
    opts.uniform_fallback = !no_fallback;
    for (const auto& c : candidates) opts.candidates.push_back(csa::parse_candidate(c, opts.rule));
    csa::SweepOutputs out = csa::run_sweep(opts, csa::app::recorded_command());
    if (!results_path.empty()) csa::write_json_file(results_path, out.results);
    if (!summary.empty()) csa::write_file_atomic(summary, csa::sweep_summary_markdown(out.results));
    if (!out.matched)
      throw csa::QualityError(
          "no level up to " +
          (opts.max_level > 0 ? std::to_string(opts.max_level) : std::string("the maximum")) +
          " matches dense within the tolerances" +
          (results_path.empty() ? std::string(" (write them with --results)")
                                : "; see " + results_path));
    csa::write_json_file(output, out.policy);
    return 0;
  });
}
