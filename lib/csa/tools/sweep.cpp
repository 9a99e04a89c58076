#include <spdlog/spdlog.h>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/model/decoder.h"
#include "csa/tools/results.h"
#include "csa/tools/tools.h"

namespace csa {

namespace {

// The first token of the sweep slice: right after the calibration slice when the sweep corpus
// is one of the calibration sources (same bytes), else 0.
int64_t default_offset(const Json& cal, const Corpus& corpus, const std::string& path) {
  if (!cal.is_object()) return 0;
  std::vector<Json> sources;
  if (cal.contains("sources") && cal["sources"].is_array())
    for (const auto& s : cal["sources"]) sources.push_back(s);
  else if (cal.contains("corpus"))
    sources.push_back(cal);  // version 1: one corpus
  for (const auto& s : sources) {
    if (!s.is_object() || !s.contains("corpus") || !s["corpus"].is_object()) continue;
    if (s["corpus"].value("sha256", std::string()) != corpus.sha256) continue;
    const int64_t offset = s.value("offset", int64_t(0)) + s.value("tokens", int64_t(0));
    spdlog::info("sweeping on tokens from {} of {} (after the calibration slice)", offset, path);
    return offset;
  }
  return 0;
}

}  // namespace

SweepOutputs run_sweep(const SweepToolOptions& o, const std::string& command) {
  RunClock clock;
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  Policy policy = Policy::read(o.policy);
  policy.check_model(model, o.policy, o.allow_other_weights);
  if (!o.rule.rule.empty()) policy = policy.with_rule(resolve_rule(o.rule, policy.rule), o.policy);
  EvalProtocol proto = resolve_protocol(o.protocol, c, "--ctx", model.device.is_cuda());
  Corpus corpus = load_corpus(o.corpus, model, o.corpus_options);
  const int64_t offset =
      o.offset >= 0 ? o.offset : default_offset(policy.calibration, corpus, o.corpus);
  std::vector<int64_t> ids = corpus.slice(offset, o.tokens, proto.ctx, "the sweep");
  Decoder decoder(model);
  spdlog::info("dense pass on {} tokens (ctx {}, stride {})", ids.size(), proto.ctx, proto.stride);
  PassResult dense = evaluate_pass(decoder, ids, proto, nullptr, "dense");

  // The policy's axis: its rule's scalar.
  SweepAxis axis;
  const bool need = need_based(policy.rule.kind);
  axis.name = need ? "reads" : "k_max";
  axis.integer = !need;
  axis.min = need ? 1e-4 : 1;
  axis.max = o.max_level > 0 ? o.max_level : (need ? 1.0 : static_cast<double>(proto.ctx));
  axis.start = o.start > 0 ? o.start : policy.scalar();
  axis.make_spec = [&](double x) { return policy.reallocated(x).sparsity(); };
  // With need curves, the error they predict guides both sweeps to the crossing.
  const NeedMetric predict_metric = need ? policy.rule.metric : NeedMetric::kResRel;
  if (policy.need)
    axis.predict = [&](double x) {
      return predicted_error(*policy.need, predict_metric, policy.reallocated(x).budgets);
    };
  SweepResult policy_sweep = sweep_levels(decoder, ids, proto, dense, axis, o.sweep, "policy");

  Json results = results_header("csa-sweep-results", model);
  results["corpus"] = corpus.identity();
  results["slice"] = {{"offset", offset}, {"tokens", ids.size()}};
  results["protocol"] = proto.to_json();
  results["criteria"] = {{"tolerance", o.sweep.tolerance},
                         {"position_tolerance", o.sweep.position_tolerance}};
  results["rule"] = policy.to_json()["allocation"];
  results["dense"] = pass_to_json(dense, proto);
  results["policy_sweep"] = policy_sweep.to_json();
  int64_t passes = dense.forward_passes + policy_sweep.forward_passes;
  if (o.uniform) {
    // Uniform top-k starts where its reads would equal the policy's (k ≈ reads · ctx / 2).
    SweepAxis u;
    u.name = "k";
    u.min = 1;
    u.max = static_cast<double>(proto.ctx);
    const SweepProbe* pb = policy_sweep.best_probe();
    u.start = pb != nullptr ? std::max(1.0, std::round(pb->reads_fraction * proto.ctx / 2)) : 64;
    u.make_spec = [&](double k) {
      return SparsitySpec::uniform_top_k(c.n_layer, c.n_head, std::llround(k));
    };
    if (policy.need)
      u.predict = [&](double k) {
        return predicted_error(*policy.need, predict_metric, u.make_spec(k).k);
      };
    SweepResult uniform = sweep_levels(decoder, ids, proto, dense, u, o.sweep, "uniform");
    results["uniform_sweep"] = uniform.to_json();
    passes += uniform.forward_passes;
    const SweepProbe* ub = uniform.best_probe();
    if (pb != nullptr && ub != nullptr) {
      results["reads_advantage_vs_uniform"] = ub->reads_fraction / pb->reads_fraction;
      results["kv_reads_advantage_vs_uniform"] = ub->kv_reads_fraction / pb->kv_reads_fraction;
    }
  }
  results["forward_passes"] = passes;
  results["run"] = run_metadata("csa-sweep", command, model.device, clock);

  SweepOutputs out;
  out.matched = policy_sweep.best.has_value();
  if (out.matched) {
    Policy chosen = policy.reallocated(*policy_sweep.best);
    const SweepProbe* b = policy_sweep.best_probe();
    chosen.sweep = {{"corpus", corpus.identity()},
                    {"slice", results["slice"]},
                    {"protocol", proto.to_json()},
                    {"criteria", results["criteria"]},
                    {"axis", axis.name},
                    {"level", policy_sweep.to_json()["best_level"]},
                    {"dense_ppl", dense.ppl()},
                    {"ppl", b->comparison.sparse_ppl},
                    {"delta_rel", b->comparison.delta_rel},
                    {"max_abs_bucket_delta_rel", b->comparison.max_abs_bucket_delta_rel},
                    {"max_bucket_worsening_rel", b->comparison.max_bucket_worsening_rel},
                    {"reads_fraction", b->reads_fraction},
                    {"kv_reads_fraction", b->kv_reads_fraction},
                    {"levels_tried", policy_sweep.probes.size()}};
    chosen.run = results["run"];
    out.policy = chosen.to_json();
  }
  out.results = std::move(results);
  return out;
}

}  // namespace csa
