#include "csa/calib/calibrate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/tools/tools.h"

namespace csa {

AllocationRule resolve_rule(const RuleOptions& o, AllocationRule r) {
  if (!o.rule.empty()) r.kind = parse_allocation(o.rule);
  if (need_based(r.kind)) {
    r.metric = parse_need_metric(o.need_metric);
    r.banded = !o.unbanded;
    r.kv_aware = o.kv_aware;
    if (o.reads != 0) r.reads = o.reads;
    if (r.reads == 0) r.reads = 0.1;
    if (!(r.reads > 0 && r.reads <= 1))
      throw UsageError("--reads must be in (0, 1], got " + std::to_string(r.reads));
    if (top_p_rule(r.kind)) {  // one mass per query head, from the rel_err curves
      if (r.metric != NeedMetric::kRelErr || r.kv_aware)
        throw UsageError("greedy_p balances rel_err over one mass per query head: no " +
                         std::string(r.kv_aware ? "--kv-aware" : "--need-metric " + o.need_metric));
      r.banded = false;
    }
  } else {
    if (o.k_max != 0) r.k_max = o.k_max;
    if (o.k_max < 0) throw UsageError("--k-max must be >= 1, got " + std::to_string(o.k_max));
    if (o.floor < 1) throw UsageError("--floor must be >= 1, got " + std::to_string(o.floor));
    if (!(o.alpha >= 0)) throw UsageError("--alpha must be >= 0");
    r.floor = o.floor;
    r.alpha = r.kind == AllocationKind::kProportional ? 1.0 : o.alpha;
    r.per_kv_group = o.per_kv_group;
  }
  return r;
}

RuleOptions parse_candidate(const std::string& text, const RuleOptions& base) {
  RuleOptions r = base;
  std::string head = text;
  r.unbanded = false;
  r.kv_aware = false;
  for (size_t plus; (plus = head.rfind('+')) != std::string::npos; head.resize(plus)) {
    const std::string flag = head.substr(plus + 1);
    if (flag == "unbanded")
      r.unbanded = true;
    else if (flag == "kv")
      r.kv_aware = true;
    else
      throw UsageError("--candidate '" + text + "': unknown flag '+" + flag +
                       "' (use +unbanded or +kv)");
  }
  const size_t colon = head.find(':');
  r.rule = head.substr(0, colon);
  if (colon != std::string::npos) r.need_metric = head.substr(colon + 1);
  (void)parse_allocation(r.rule);  // UsageError naming the rules
  (void)parse_need_metric(r.need_metric);
  return r;
}

namespace {

// Each corpus's token count: shares of the total (equal by default), at least one window's
// worth where the total allows.
std::vector<int64_t> token_split(const CalibrateToolOptions& o) {
  const size_t n = o.corpora.size();
  std::vector<double> shares = o.shares;
  if (shares.empty()) shares.assign(n, 1.0);
  if (shares.size() != n)
    throw UsageError("--share needs one value per corpus (" + std::to_string(n) + "), got " +
                     std::to_string(shares.size()));
  for (double s : shares)
    if (!(s > 0)) throw UsageError("--share values must be > 0");
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  std::vector<int64_t> out;
  for (double s : shares)
    out.push_back(std::max<int64_t>(2, std::llround(static_cast<double>(o.tokens) * s / total)));
  return out;
}

}  // namespace

Policy run_calibrate(const CalibrateToolOptions& o, const std::string& command) {
  RunClock clock;
  const DiffusenessMetric metric = parse_metric(o.metric);
  if (o.corpora.empty()) throw UsageError("csa-calibrate needs at least one corpus");
  if (o.tokens < 2) throw UsageError("--tokens must be >= 2");
  AllocationRule base;
  base.kind = parse_allocation(kDefaultRule);
  const AllocationRule rule = resolve_rule(o.rule, base);
  const std::vector<int64_t> split = token_split(o);
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  EvalProtocol proto;
  proto.ctx = o.ctx;
  proto.stride = o.ctx;  // placeholder; calibration windows do not overlap
  proto.batch = o.batch;
  proto = resolve_protocol(proto, c, "--ctx", model.device.is_cuda());
  const int64_t ctx = proto.ctx;

  // One dense pass per source with both observers: statistics and need curves.
  AttentionStatsObserver stats(c.n_layer, c.n_head, o.tau);
  std::vector<at::Tensor> out_proj;
  for (const auto& l : model.weights.layers) out_proj.push_back(l.out_w);
  NeedObserver need(c.n_layer, c.n_head, c.n_head_kv, c.head_dim, ctx, out_proj);
  HookChain observers({&stats, &need});
  Decoder decoder(model);
  Json sources = Json::array();
  int64_t tokens = 0, windows = 0;
  for (size_t i = 0; i < o.corpora.size(); ++i) {
    const std::string& path = o.corpora[i];
    Corpus corpus = load_corpus(path, model, o.corpus_options);
    const int64_t want = split[i];
    std::vector<int64_t> ids = corpus.slice(o.offset, want, std::min(ctx, want), "calibration");
    if (static_cast<int64_t>(ids.size()) < want)
      spdlog::warn("{}: only {} tokens from token {} (asked for {}); calibrating on those", path,
                   ids.size(), o.offset, want);
    const CalibrationPass pass = observe_dense(decoder, ids, ctx, proto.batch, &observers);
    tokens += pass.tokens;
    windows += pass.windows;
    sources.push_back({{"corpus", corpus.identity()},
                       {"offset", o.offset},
                       {"tokens", ids.size()},
                       {"share", static_cast<double>(want) / static_cast<double>(o.tokens)}});
  }

  Policy p;
  p.model = model.identity.to_json(c);
  p.metric = metric;
  p.tau = o.tau;
  p.stats = stats.result();
  p.need = need.result();
  p.rule = rule;
  p.calibration = {{"sources", sources},
                   {"tokens", tokens},
                   {"ctx", ctx},
                   {"windows", windows},
                   {"queries_per_cell", stats.rows_per_cell()}};
  // Version 1 readers (and csa-sweep's default slice) look for one corpus here.
  if (o.corpora.size() == 1) {
    p.calibration["corpus"] = sources[0]["corpus"];
    p.calibration["offset"] = o.offset;
  }
  if (!need_based(rule.kind) && rule.k_max <= 0) p.rule.k_max = p.starting_cap();
  p = p.reallocated(p.scalar());
  p.run = run_metadata("csa-calibrate", command, model.device, clock);
  spdlog::info("calibrated {} on {} tokens from {} source(s) in {:.1f}s: {}, mean budget {:.1f}",
               model.identity.name, tokens, o.corpora.size(), clock.seconds(), p.describe(),
               p.mean_budget());
  return p;
}

}  // namespace csa
