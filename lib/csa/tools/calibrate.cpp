#include "csa/calib/calibrate.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/tools/tools.h"

namespace csa {

Policy run_calibrate(const CalibrateToolOptions& o, const std::string& command) {
  RunClock clock;
  const DiffusenessMetric metric = parse_metric(o.metric);
  if (o.tokens < 2) throw UsageError("--tokens must be >= 2");
  if (o.floor < 1) throw UsageError("--floor must be >= 1");
  Model model = o.model.load();
  const ModelConfig& c = model.config;
  EvalProtocol proto;
  proto.ctx = o.ctx;
  proto.stride = o.ctx;  // placeholder; calibration windows do not overlap
  proto.batch = o.batch;
  proto = resolve_protocol(proto, c, "--ctx", model.device.is_cuda());
  const int64_t ctx = proto.ctx;

  Corpus corpus = load_corpus(o.corpus, model, o.corpus_options);
  const int64_t available = static_cast<int64_t>(corpus.ids.size()) - o.offset;
  const int64_t minimum = std::min(ctx, o.tokens);
  std::vector<int64_t> ids = corpus.slice(o.offset, o.tokens, minimum, "calibration");
  if (static_cast<int64_t>(ids.size()) < o.tokens)
    spdlog::warn("{}: only {} tokens from token {} (asked for {}); calibrating on those", o.corpus,
                 available, o.offset, o.tokens);

  AttentionStatsObserver observer(c.n_layer, c.n_head, o.tau);
  Decoder decoder(model);
  const CalibrationPass pass = observe_dense(decoder, ids, ctx, proto.batch, &observer);

  Policy p;
  p.model = model.identity.to_json(c);
  p.metric = metric;
  p.tau = o.tau;
  p.stats = observer.result();
  p.rule.floor = o.floor;
  p.rule.per_kv_group = o.per_kv_group;
  double dmax = 0, dmin = 1e30;
  for (const auto& row : p.diffuseness())
    for (double d : row) dmax = std::max(dmax, d), dmin = std::min(dmin, d);
  int64_t k_max = o.k_max;
  if (k_max <= 0)
    k_max =
        std::min<int64_t>(ctx, std::max<int64_t>(8, 8 * static_cast<int64_t>(std::ceil(dmax / 8))));
  p = p.recapped(k_max);
  p.calibration = {{"corpus", corpus.identity()}, {"offset", o.offset},
                   {"tokens", ids.size()},        {"ctx", ctx},
                   {"windows", pass.windows},     {"queries_per_cell", observer.rows_per_cell()}};
  p.run = run_metadata("csa-calibrate", command, model.device, clock);
  spdlog::info(
      "calibrated {} on {} tokens of {} in {:.1f}s: {} = {:.1f}..{:.1f} keys, k_max {}, "
      "mean budget {:.1f}",
      model.identity.name, ids.size(), o.corpus, clock.seconds(), metric_name(metric), dmin, dmax,
      k_max, p.mean_budget());
  return p;
}

}  // namespace csa
