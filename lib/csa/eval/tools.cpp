#include "csa/eval/tools.h"

#include <spdlog/spdlog.h>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/model/decoder.h"
#include "csa/tokenizer/tokenizer.h"

namespace csa {
namespace {

Json comparison_json(const Comparison& c, double tol, double pos_tol) {
  return {{"ppl", c.sparse_ppl},
          {"delta_ppl", c.delta},
          {"delta_rel", c.delta_rel},
          {"bucket_delta_rel", c.bucket_delta_rel},
          {"max_abs_bucket_delta_rel", c.max_abs_bucket_delta_rel},
          {"max_bucket_worsening_rel", c.max_bucket_worsening_rel},
          {"matches_dense", c.meets(tol, pos_tol)}};
}

Json header(const char* kind, const Model& model) {
  return {{"schema_version", kResultsSchemaVersion},
          {"kind", kind},
          {"model", model.identity.to_json(model.config)}};
}

size_t element_bytes(const Model& m) { return c10::elementSize(m.dtype); }

}  // namespace

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
  Json results = header("csa-sweep-results", model);
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

EvalOutputs run_eval(const EvalToolOptions& o, const std::string& command) {
  RunClock clock;
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  EvalProtocol proto = resolve_protocol(o.protocol, c, "--ctx", model.device.is_cuda());
  std::vector<SparsitySpec> specs;
  if (!o.policy.empty()) {
    Policy policy = Policy::read(o.policy);
    policy.check_model(model, o.policy, o.allow_other_weights);
    specs.push_back(policy.sparsity("policy " + o.policy + " (k_max " +
                                    std::to_string(policy.rule.k_max) + ")"));
  }
  for (const auto& b : o.baselines)
    specs.push_back(SparsitySpec::parse_baseline(b, c.n_layer, c.n_head));
  Corpus corpus = load_corpus(o.corpus, model, o.corpus_options);
  std::vector<int64_t> ids = corpus.slice(o.offset, o.max_tokens, 2, "evaluation");
  if (static_cast<int64_t>(ids.size()) < proto.ctx)
    spdlog::warn("{}: {} tokens, shorter than one window of {}: one short window", o.corpus,
                 ids.size(), proto.ctx);

  Decoder decoder(model);
  PassResult dense = evaluate_pass(decoder, ids, proto, nullptr, "dense");
  spdlog::info("dense ppl {:.4f} over {} targets ({:.0f} tok/s)", dense.ppl(), dense.scored,
               dense.tokens_per_second());
  Json results = header("csa-eval-results", model);
  results["corpus"] = corpus.identity();
  results["slice"] = {{"offset", o.offset}, {"tokens", ids.size()}};
  results["protocol"] = proto.to_json();
  results["criteria"] = {{"tolerance", o.tolerance}, {"position_tolerance", o.position_tolerance}};
  results["dense"] = pass_to_json(dense, proto);
  Json runs = Json::array();
  EvalOutputs out;
  for (size_t i = 0; i < specs.size(); ++i) {
    SparseAttentionHook hook(specs[i], c.n_layer, c.n_head, c.n_head_kv, proto.ctx);
    PassResult pass = evaluate_pass(decoder, ids, proto, &hook, specs[i].label);
    Comparison cmp = compare(dense, pass);
    Json run = pass_to_json(pass, proto);
    run["role"] = (!o.policy.empty() && i == 0) ? "policy" : "baseline";
    run["sparsity"] = specs[i].to_json();
    run["comparison"] = comparison_json(cmp, o.tolerance, o.position_tolerance);
    run["attention_cost"] = attention_cost(pass.reads, c, element_bytes(model));
    spdlog::info("{}: ppl {:.4f} ({:+.3f}%), worst bucket {:+.3f}%, reads {:.2f}% (KV {:.2f}%)",
                 specs[i].label, cmp.sparse_ppl, 100 * cmp.delta_rel,
                 100 * cmp.max_bucket_worsening_rel, 100 * pass.reads.q_fraction(),
                 100 * pass.reads.kv_fraction());
    if (run["role"] == "policy") out.policy_matches = cmp.meets(o.tolerance, o.position_tolerance);
    runs.push_back(run);
  }
  results["runs"] = runs;
  results["run"] = run_metadata("csa-eval", command, model.device, clock);
  out.results = std::move(results);
  return out;
}

Json run_generate(const GenerateToolOptions& o, const std::string& command) {
  RunClock clock;
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  auto tokenizer = Tokenizer::from_files(model.files, model.identity.path);
  std::vector<int64_t> prompt;
  if (!o.prompt.empty()) {
    EncodeOptions eo;
    eo.add_special_tokens = true;
    std::vector<int32_t> ids = tokenizer->encode(o.prompt, eo);
    prompt.assign(ids.begin(), ids.end());
  }
  Decoder decoder(model);
  auto decode = [&](const std::vector<int64_t>& ids) {
    return tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
  };
  Json out = {{"schema_version", kResultsSchemaVersion},
              {"kind", "csa-generate"},
              {"model", model.identity.to_json(c)},
              {"prompt", o.prompt},
              {"prompt_ids", prompt},
              {"sampling",
               {{"max_new_tokens", o.generate.max_new_tokens},
                {"temperature", o.generate.temperature},
                {"top_k", o.generate.top_k},
                {"top_p", o.generate.top_p},
                {"seed", o.generate.seed}}}};
  std::vector<int64_t> dense = generate(decoder, prompt, o.generate, nullptr);
  out["dense"] = {{"ids", dense}, {"text", decode(dense)}};
  if (!o.policy.empty()) {
    Policy policy = Policy::read(o.policy);
    policy.check_model(model, o.policy, o.allow_other_weights);
    SparseAttentionHook hook(policy.sparsity(), c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
    std::vector<int64_t> sparse = generate(decoder, prompt, o.generate, &hook);
    size_t same = 0;
    while (same < dense.size() && same < sparse.size() && dense[same] == sparse[same]) ++same;
    out["policy"] = {{"path", o.policy},
                     {"k_max", policy.rule.k_max},
                     {"ids", sparse},
                     {"text", decode(sparse)},
                     {"tokens_identical_to_dense", same}};
  }
  out["run"] = run_metadata("csa-generate", command, model.device, clock);
  return out;
}

}  // namespace csa
