#include "csa/eval/sweep.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>

namespace csa {

const SweepProbe* SweepResult::best() const {
  if (!best_cap) return nullptr;
  for (const auto& p : probes)
    if (p.cap == *best_cap) return &p;
  return nullptr;
}

Json SweepResult::to_json() const {
  Json probes_j = Json::array();
  for (const auto& p : probes) {
    probes_j.push_back({{"cap", p.cap},
                        {"ppl", p.comparison.sparse_ppl},
                        {"delta_ppl", p.comparison.delta},
                        {"delta_rel", p.comparison.delta_rel},
                        {"max_abs_bucket_delta_rel", p.comparison.max_abs_bucket_delta_rel},
                        {"max_bucket_worsening_rel", p.comparison.max_bucket_worsening_rel},
                        {"reads_fraction", p.reads_fraction},
                        {"kv_reads_fraction", p.kv_reads_fraction},
                        {"mean_budget", p.mean_budget},
                        {"matches_dense", p.matches},
                        {"forward_passes", p.forward_passes},
                        {"wall_seconds", p.seconds}});
  }
  Json j = {{"label", label},
            {"probes", probes_j},
            {"best_cap", best_cap ? Json(*best_cap) : Json(nullptr)},
            {"sparse_forward_passes", forward_passes},
            {"wall_seconds", seconds}};
  if (const SweepProbe* b = best()) {
    j["best"] = {{"cap", b->cap},
                 {"ppl", b->comparison.sparse_ppl},
                 {"delta_rel", b->comparison.delta_rel},
                 {"max_abs_bucket_delta_rel", b->comparison.max_abs_bucket_delta_rel},
                 {"max_bucket_worsening_rel", b->comparison.max_bucket_worsening_rel},
                 {"reads_fraction", b->reads_fraction},
                 {"kv_reads_fraction", b->kv_reads_fraction}};
  }
  return j;
}

SweepResult sweep_caps(const Decoder& decoder, const std::vector<int64_t>& ids,
                       const EvalProtocol& protocol, const PassResult& dense,
                       const std::function<SparsitySpec(int64_t)>& make_spec, const SweepOptions& o,
                       const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = decoder.config();
  const int64_t max_cap = o.max_cap > 0 ? o.max_cap : protocol.ctx;
  SweepResult result;
  result.label = label;
  std::map<int64_t, bool> tried;

  auto probe = [&](int64_t cap) {
    SparsitySpec spec = make_spec(cap);
    SparseAttentionHook hook(spec, c.n_layer, c.n_head, c.n_head_kv, protocol.ctx);
    PassResult pass =
        evaluate_pass(decoder, ids, protocol, &hook, label + " cap " + std::to_string(cap));
    SweepProbe p;
    p.cap = cap;
    p.comparison = compare(dense, pass);
    p.reads_fraction = pass.reads.q_fraction();
    p.kv_reads_fraction = pass.reads.kv_fraction();
    p.mean_budget = spec.mean_budget();
    p.seconds = pass.seconds;
    p.forward_passes = pass.forward_passes;
    p.matches = p.comparison.meets(o.tolerance, o.position_tolerance);
    result.forward_passes += pass.forward_passes;
    result.probes.push_back(p);
    tried[cap] = p.matches;
    spdlog::info("{} cap {:>5}: ppl {:.4f} ({:+.3f}%), worst bucket {:+.3f}%, reads {:.2f}% -> {}",
                 label, cap, p.comparison.sparse_ppl, 100 * p.comparison.delta_rel,
                 100 * p.comparison.max_bucket_worsening_rel, 100 * p.reads_fraction,
                 p.matches ? "matches dense" : "misses");
    return p.matches;
  };

  // Doubling grid from below until a cap matches.
  int64_t lo = 0, hi = 0;  // lo: largest miss, hi: smallest match
  for (int64_t cap = std::max<int64_t>(1, o.min_cap);; cap *= 2) {
    cap = std::min(cap, max_cap);
    if (probe(cap)) {
      hi = cap;
      break;
    }
    lo = cap;
    if (cap >= max_cap) break;
  }
  if (hi > 0) {
    // Bisection between the last miss and the first match.
    while (hi - lo >
           std::max<int64_t>(1, static_cast<int64_t>(o.resolution * static_cast<double>(hi)))) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (tried.count(mid)) break;
      if (probe(mid))
        hi = mid;
      else
        lo = mid;
    }
    result.best_cap = hi;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace csa
