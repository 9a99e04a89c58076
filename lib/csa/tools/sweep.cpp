#include <spdlog/spdlog.h>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/model/decoder.h"
#include "csa/tools/results.h"
#include "csa/tools/tools.h"

namespace csa {

SweepOutputs run_sweep(const SweepToolOptions& o, const std::string& command) {
  RunClock clock;
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  Policy policy = Policy::read(o.policy);
  policy.check_model(model, o.policy, o.allow_other_weights);
  EvalProtocol proto = resolve_protocol(o.protocol, c, "--ctx", model.device.is_cuda());
  Corpus corpus = load_corpus(o.corpus, model, o.corpus_options);

  int64_t offset = o.offset;
  if (offset < 0) {
    offset = 0;
    const Json& cal = policy.calibration;
    if (cal.is_object() && cal.contains("corpus") &&
        cal["corpus"].value("sha256", std::string()) == corpus.sha256) {
      offset = cal.value("offset", int64_t(0)) + cal.value("tokens", int64_t(0));
      spdlog::info("sweeping on tokens from {} of {} (after the calibration slice)", offset,
                   o.corpus);
    }
  }
  std::vector<int64_t> ids = corpus.slice(offset, o.tokens, proto.ctx, "the sweep");
  Decoder decoder(model);
  spdlog::info("dense pass on {} tokens (ctx {}, stride {})", ids.size(), proto.ctx, proto.stride);
  PassResult dense = evaluate_pass(decoder, ids, proto, nullptr, "dense");

  SweepResult policy_sweep = sweep_caps(
      decoder, ids, proto, dense, [&](int64_t cap) { return policy.recapped(cap).sparsity(); },
      o.sweep, "policy");
  Json results = results_header("csa-sweep-results", model);
  results["corpus"] = corpus.identity();
  results["slice"] = {{"offset", offset}, {"tokens", ids.size()}};
  results["protocol"] = proto.to_json();
  results["criteria"] = {{"tolerance", o.sweep.tolerance},
                         {"position_tolerance", o.sweep.position_tolerance}};
  results["dense"] = pass_to_json(dense, proto);
  results["policy_sweep"] = policy_sweep.to_json();
  int64_t passes = dense.forward_passes + policy_sweep.forward_passes;
  if (o.uniform) {
    SweepResult uniform = sweep_caps(
        decoder, ids, proto, dense,
        [&](int64_t k) { return SparsitySpec::uniform_top_k(c.n_layer, c.n_head, k); }, o.sweep,
        "uniform");
    results["uniform_sweep"] = uniform.to_json();
    passes += uniform.forward_passes;
    const SweepProbe *pb = policy_sweep.best(), *ub = uniform.best();
    if (pb != nullptr && ub != nullptr)
      results["reads_advantage_vs_uniform"] = ub->reads_fraction / pb->reads_fraction;
  }
  results["forward_passes"] = passes;
  results["run"] = run_metadata("csa-sweep", command, model.device, clock);

  SweepOutputs out;
  out.matched = policy_sweep.best_cap.has_value();
  if (out.matched) {
    Policy chosen = policy.recapped(*policy_sweep.best_cap);
    const SweepProbe* b = policy_sweep.best();
    chosen.sweep = {{"corpus", corpus.identity()},
                    {"slice", results["slice"]},
                    {"protocol", proto.to_json()},
                    {"criteria", results["criteria"]},
                    {"dense_ppl", dense.ppl()},
                    {"ppl", b->comparison.sparse_ppl},
                    {"delta_rel", b->comparison.delta_rel},
                    {"max_abs_bucket_delta_rel", b->comparison.max_abs_bucket_delta_rel},
                    {"reads_fraction", b->reads_fraction},
                    {"kv_reads_fraction", b->kv_reads_fraction},
                    {"caps_tried", policy_sweep.probes.size()}};
    chosen.run = results["run"];
    out.policy = chosen.to_json();
  }
  out.results = std::move(results);
  return out;
}

}  // namespace csa
