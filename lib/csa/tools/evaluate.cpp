#include <spdlog/spdlog.h>

#include <optional>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/model/decoder.h"
#include "csa/tools/baseline.h"
#include "csa/tools/results.h"
#include "csa/tools/tools.h"

namespace csa {

EvalOutputs run_eval(const EvalToolOptions& o, const std::string& command) {
  RunClock clock;
  const double z = confidence_z(o.confidence);  // a bad level fails before any work
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  EvalProtocol proto = resolve_protocol(o.protocol, c, "--ctx", model.device.is_cuda());
  std::optional<PageSelection> select;
  if (!o.select.empty()) select = parse_selection(o.select, "--select");
  std::vector<SparsitySpec> specs;
  for (const std::string& path : o.policies) {
    Policy policy = Policy::read(path);
    policy.check_model(model, path, o.allow_other_weights);
    if (select) policy.select = *select;
    specs.push_back(policy.sparsity("policy " + path + " (" + policy.describe() + ")"));
  }
  const size_t n_policies = specs.size();
  for (const auto& b : o.baselines) {
    SparsitySpec spec = parse_baseline(b, c.n_layer, c.n_head);
    if (select && spec.kind == SparsityKind::kTopK) spec = spec.with_selection(*select);
    specs.push_back(std::move(spec));
  }
  Corpus corpus = load_corpus(o.corpus, model, o.corpus_options);
  std::vector<int64_t> ids = corpus.slice(o.offset, o.max_tokens, 2, "evaluation");
  if (static_cast<int64_t>(ids.size()) < proto.ctx)
    spdlog::warn("{}: {} tokens, shorter than one window of {}: one short window", o.corpus,
                 ids.size(), proto.ctx);

  Decoder decoder(model);
  warm_up(decoder, ids, proto);  // CUDA: set-up outside the timed passes
  PassResult dense = evaluate_pass(decoder, ids, proto, nullptr, "dense");
  spdlog::info("dense ppl {:.4f} over {} targets ({:.0f} tok/s)", dense.ppl(), dense.scored,
               dense.tokens_per_second());
  Json results = results_header("csa-eval-results", model);
  results["corpus"] = corpus.identity();
  results["slice"] = {{"offset", o.offset}, {"tokens", ids.size()}};
  results["protocol"] = proto.to_json();
  results["criteria"] = {{"tolerance", o.tolerance},
                         {"position_tolerance", o.position_tolerance},
                         {"confidence", o.confidence},
                         {"z", z}};
  results["dense"] = pass_to_json(dense, proto);
  Json runs = Json::array();
  EvalOutputs out;
  for (size_t i = 0; i < specs.size(); ++i) {
    SparseAttentionHook hook(specs[i], c.n_layer, c.n_head, c.n_head_kv, proto.ctx);
    PassResult pass = evaluate_pass(decoder, ids, proto, &hook, specs[i].label);
    Comparison cmp = compare(dense, pass, z);
    Json run = pass_to_json(pass, proto);
    run["role"] = i < n_policies ? "policy" : "baseline";
    if (i < n_policies) run["policy_path"] = o.policies[i];
    run["sparsity"] = specs[i].to_json();
    run["comparison"] = comparison_json(cmp, o.tolerance, o.position_tolerance);
    run["attention_cost"] = attention_cost(pass.reads, c, element_bytes(model));
    spdlog::info("{}: ppl {:.4f} ({:+.3f}%), worst bucket {:+.3f}%{}, reads {:.2f}% (KV {:.2f}%)",
                 specs[i].label, cmp.sparse_ppl, 100 * cmp.delta_rel,
                 100 * cmp.max_bucket_worsening_rel, cmp.upper_bounds_note(),
                 100 * pass.reads.q_fraction(), 100 * pass.reads.kv_fraction());
    if (i < n_policies)
      out.policy_matches = out.policy_matches && cmp.meets(o.tolerance, o.position_tolerance);
    runs.push_back(run);
  }
  results["runs"] = runs;
  results["run"] = run_metadata("csa-eval", command, model.device, clock);
  out.results = std::move(results);
  return out;
}

}  // namespace csa
