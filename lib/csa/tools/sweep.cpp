#include <spdlog/spdlog.h>

#include <memory>

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

// Band-weight adaptation: one step of this size per probe whose margin lies in [min, max] (far
// misses break every bucket; easy matches say little about which one binds).
constexpr double kAdaptStep = 0.5, kAdaptMin = 0.5, kAdaptMax = 4;

}  // namespace

SweepOutputs run_sweep(const SweepToolOptions& o, const std::string& command) {
  RunClock clock;
  const double z = confidence_z(o.sweep.confidence);  // a bad level fails before any work
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  Policy policy = Policy::read(o.policy);
  policy.check_model(model, o.policy, o.allow_other_weights);
  if (!o.rule.rule.empty()) policy = policy.with_rule(resolve_rule(o.rule, policy.rule), o.policy);
  EvalProtocol proto = resolve_protocol(o.protocol, c, "--ctx", model.device.is_cuda());
  // One slice per text (token shares of --tokens), each after its calibration slice when the
  // text was calibrated on; every slice must match dense.
  if (o.corpora.empty()) throw UsageError("csa-sweep needs at least one corpus");
  std::vector<double> shares = o.shares;
  if (shares.empty()) shares.assign(o.corpora.size(), 1.0);
  if (shares.size() != o.corpora.size())
    throw UsageError("--share needs one value per corpus (" + std::to_string(o.corpora.size()) +
                     "), got " + std::to_string(shares.size()));
  double share_sum = 0;
  for (double x : shares) {
    if (!(x > 0)) throw UsageError("--share values must be > 0");
    share_sum += x;
  }
  if (o.offset >= 0 && o.corpora.size() > 1)
    throw UsageError(
        "--offset applies to one corpus; with several, each slice starts after its "
        "calibration slice (or at 0)");
  Decoder decoder(model);
  std::vector<SweepSlice> slices;
  Json slices_j = Json::array();
  for (size_t i = 0; i < o.corpora.size(); ++i) {
    const std::string& path = o.corpora[i];
    Corpus corpus = load_corpus(path, model, o.corpus_options);
    const int64_t offset =
        o.offset >= 0 ? o.offset : default_offset(policy.calibration, corpus, path);
    const auto want = std::max<int64_t>(
        proto.ctx, std::llround(static_cast<double>(o.tokens) * shares[i] / share_sum));
    SweepSlice sl;
    sl.name = path;
    sl.ids = corpus.slice(offset, want, proto.ctx, "the sweep");
    spdlog::info("dense pass on {} tokens of {} (ctx {}, stride {})", sl.ids.size(), path,
                 proto.ctx, proto.stride);
    sl.dense = evaluate_pass(decoder, sl.ids, proto, nullptr, "dense");
    slices_j.push_back({{"corpus", corpus.identity()},
                        {"offset", offset},
                        {"tokens", sl.ids.size()},
                        {"dense", pass_to_json(sl.dense, proto)}});
    slices.push_back(std::move(sl));
  }

  // Each candidate rule (the policy's own first) sweeps its scalar; the one reading the fewest
  // keys at dense-matching quality wins. With need curves, the error they predict guides every
  // sweep to its crossing.
  if (!o.select.empty()) policy.select = parse_selection(o.select, "--select");
  std::vector<Policy> candidates = {policy};
  for (const RuleOptions& r : o.candidates)
    candidates.push_back(policy.with_rule(resolve_rule(r, policy.rule), o.policy));
  // Need-based rules adapt their position-band weights to the probes' buckets (allocate.h,
  // adapt_band_weights): one dual-ascent step per probe near the crossing.
  auto axis_for = [&](const Policy& p) {
    SweepAxis axis;
    const bool need = need_based(p.rule.kind);
    axis.name = need ? "reads" : "k_max";
    axis.integer = !need;
    axis.min = need ? 1e-4 : 1;
    axis.max = o.max_level > 0 ? o.max_level : (need ? 1.0 : static_cast<double>(proto.ctx));
    axis.start = o.start > 0 ? o.start : p.scalar();
    // The candidate as the axis sees it: its band weights change as the refine adapts them.
    auto current = std::make_shared<Policy>(p);
    std::vector<double>& weights = current->rule.band_weight;
    axis.make_spec = [current](double x) { return current->reallocated(x).sparsity(); };
    if (p.need)
      axis.predict = [current](double x) { return current->reallocated(x).predicted_error(); };
    if (need && o.sweep.refine_passes > 0) {
      if (weights.empty()) weights.assign(static_cast<size_t>(p.need->n_bands()), 1.0);
      axis.setting = [current] { return Json{{"band_weights", current->rule.band_weight}}; };
      axis.adapt = [current, &proto, &o](const SweepProbe& probe) {
        if (probe.margin < kAdaptMin || probe.margin > kAdaptMax) return false;
        std::vector<std::vector<double>> buckets;
        for (const Comparison& c : probe.slices) buckets.push_back(c.bucket_delta_rel_upper);
        // Not adapted when the probe's level keeps its allocation: the same probe again would
        // give the same result, so the refine moves on (the new weights stay for later levels).
        return current->adapt_band_weights_at(probe.level, buckets, proto.ctx,
                                              o.sweep.position_tolerance, kAdaptStep);
      };
    }
    return axis;
  };
  std::vector<SweepResult> sweeps;
  for (const Policy& p : candidates)
    sweeps.push_back(sweep_levels(decoder, slices, proto, axis_for(p), o.sweep,
                                  candidates.size() > 1 ? "policy " + p.rule_name() : "policy"));
  size_t best = 0;
  for (size_t i = 1; i < sweeps.size(); ++i) {
    const SweepProbe *a = sweeps[i].best_probe(), *b = sweeps[best].best_probe();
    if (a != nullptr && (b == nullptr || a->reads_fraction < b->reads_fraction)) best = i;
  }

  Json results = results_header("csa-sweep-results", model);
  results["slices"] = slices_j;
  if (slices.size() == 1) {  // the single-text layout every earlier reader knows
    results["corpus"] = slices_j[0]["corpus"];
    results["slice"] = {{"offset", slices_j[0]["offset"]}, {"tokens", slices_j[0]["tokens"]}};
  }
  results["protocol"] = proto.to_json();
  results["criteria"] = {{"tolerance", o.sweep.tolerance},
                         {"position_tolerance", o.sweep.position_tolerance},
                         {"confidence", o.sweep.confidence},
                         {"z", z}};
  if (slices.size() == 1) results["dense"] = slices_j[0]["dense"];
  int64_t passes = 0;
  for (const auto& sl : slices) passes += sl.dense.forward_passes;
  Json cand_j = Json::array();
  for (size_t i = 0; i < sweeps.size(); ++i) {
    passes += sweeps[i].forward_passes;
    cand_j.push_back(
        {{"rule", candidates[i].to_json()["allocation"]}, {"sweep", sweeps[i].to_json()}});
  }
  if (sweeps.size() > 1) results["candidates"] = cand_j;

  // Uniform top-k on the same slices: the baseline a calibrated policy must beat, and the policy
  // written when it reads fewer keys (a power rule with alpha 0 is uniform top-k).
  const SweepProbe* pb = sweeps[best].best_probe();
  std::optional<SweepResult> uniform;
  if (o.uniform) {
    SweepAxis u;
    u.name = "k";
    u.min = 1;
    u.max = static_cast<double>(proto.ctx);
    u.start = pb != nullptr ? std::max(1.0, std::round(pb->reads_fraction * proto.ctx / 2)) : 64;
    u.make_spec = [&](double k) {
      return SparsitySpec::uniform_top_k(c.n_layer, c.n_head, std::llround(k))
          .with_selection(policy.select);
    };
    if (policy.need) {
      const NeedMetric metric =
          need_based(policy.rule.kind) ? policy.rule.metric : NeedMetric::kResRel;
      u.predict = [&, metric](double k) {
        return predicted_error(*policy.need, metric, u.make_spec(k).k);
      };
    }
    uniform = sweep_levels(decoder, slices, proto, u, o.sweep, "uniform");
    results["uniform_sweep"] = uniform->to_json();
    passes += uniform->forward_passes;
    const SweepProbe* ub = uniform->best_probe();
    if (pb != nullptr && ub != nullptr) {
      results["reads_advantage_vs_uniform"] = ub->reads_fraction / pb->reads_fraction;
      results["kv_reads_advantage_vs_uniform"] = ub->kv_reads_fraction / pb->kv_reads_fraction;
    }
  }

  Policy chosen_rule = candidates[best];
  if (pb != nullptr && pb->setting.is_object() && pb->setting.contains("band_weights"))
    chosen_rule.rule.band_weight = pb->setting["band_weights"].get<std::vector<double>>();
  std::optional<double> level = sweeps[best].best;
  const SweepProbe* b = pb;
  std::string chosen = "policy";
  if (uniform && o.uniform_fallback) {
    const SweepProbe* ub = uniform->best_probe();
    if (ub != nullptr && (b == nullptr || ub->reads_fraction < b->reads_fraction)) {
      AllocationRule r;
      r.kind = AllocationKind::kPower;
      r.alpha = 0;
      r.floor = 1;
      r.k_max = std::llround(*uniform->best);
      chosen_rule = policy.with_rule(r, o.policy);
      level = *uniform->best;
      b = ub;
      chosen = "uniform";
      spdlog::warn(
          "uniform top-k reads fewer keys at dense-matching quality ({:.2f}% vs {}): the "
          "policy written is uniform k={} (--no-uniform-fallback keeps the rule's)",
          100 * ub->reads_fraction,
          pb != nullptr ? fmt::format("{:.2f}%", 100 * pb->reads_fraction)
                        : std::string("no match"),
          r.k_max);
    }
  }
  results["rule"] = chosen_rule.to_json()["allocation"];
  results["chosen"] = chosen;
  results["policy_sweep"] = sweeps[best].to_json();
  results["forward_passes"] = passes;
  results["run"] = run_metadata("csa-sweep", command, model.device, clock);

  SweepOutputs out;
  out.matched = level.has_value();
  if (out.matched) {
    Policy p = chosen_rule.reallocated(*level);
    Json sources = Json::array();
    for (const auto& sl : slices_j)
      sources.push_back(
          {{"corpus", sl["corpus"]}, {"offset", sl["offset"]}, {"tokens", sl["tokens"]}});
    p.sweep = {{"slices", sources},
               {"protocol", proto.to_json()},
               {"criteria", results["criteria"]},
               {"chosen", chosen},
               {"level", *level},
               {"dense_ppl", b->comparison.dense_ppl}};
    p.sweep.update(b->summary_json());
    p.run = results["run"];
    out.policy = p.to_json();
  }
  out.results = std::move(results);
  return out;
}

}  // namespace csa
