#include "csa/calib/calibrate.h"

#include <c10/core/GradMode.h>
#include <spdlog/spdlog.h>

#include <cmath>

#include "csa/core/error.h"
#include "csa/core/progress.h"
#include "csa/core/runtime.h"
#include "csa/eval/perplexity.h"
#include "csa/model/decoder.h"

namespace csa {

Policy calibrate(const CalibrateOptions& o, const std::string& command) {
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

  // Non-overlapping windows: every token is a query exactly once.
  std::vector<Window> windows = plan_windows(static_cast<int64_t>(ids.size()), ctx, ctx);
  AttentionStatsObserver observer(c.n_layer, c.n_head, o.tau);
  Decoder decoder(model);
  Progress progress("calibrate", static_cast<int64_t>(ids.size()));
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < windows.size();) {
    const int64_t len = windows[i].end - windows[i].begin;
    size_t j = i;
    while (j < windows.size() && static_cast<int64_t>(j - i) < proto.batch &&
           windows[j].end - windows[j].begin == len)
      ++j;
    at::Tensor tokens = at::empty({static_cast<int64_t>(j - i), len}, at::kLong);
    for (size_t b = i; b < j; ++b)
      std::copy(ids.begin() + windows[b].begin, ids.begin() + windows[b].end,
                tokens[static_cast<int64_t>(b - i)].data_ptr<int64_t>());
    decoder.hidden(tokens.to(model.device), &observer);
    progress.advance(static_cast<int64_t>(j - i) * len);
    i = j;
  }
  progress.finish();

  Policy p;
  p.model = model.identity.to_json(c);
  p.metric = metric;
  p.tau = o.tau;
  p.stats = observer.result();
  p.rule.floor = o.floor;
  p.rule.per_kv_group = o.per_kv_group;
  double dmax = 0;
  for (const auto& row : p.diffuseness())
    for (double d : row) dmax = std::max(dmax, d);
  int64_t k_max = o.k_max;
  if (k_max <= 0)
    k_max =
        std::min<int64_t>(ctx, std::max<int64_t>(8, 8 * static_cast<int64_t>(std::ceil(dmax / 8))));
  p = p.recapped(k_max);
  p.calibration = {{"corpus", corpus.identity()}, {"offset", o.offset},
                   {"tokens", ids.size()},        {"ctx", ctx},
                   {"windows", windows.size()},   {"queries_per_cell", observer.rows_per_cell()}};
  p.run = run_metadata("csa-calibrate", command, model.device, clock);
  spdlog::info(
      "calibrated {} on {} tokens of {} in {:.1f}s: {} = {:.1f}..{:.1f} keys, k_max {}, "
      "mean budget {:.1f}",
      model.identity.name, ids.size(), o.corpus, clock.seconds(), metric_name(metric),
      [&] {
        double m = 1e30;
        for (const auto& r : p.diffuseness())
          for (double d : r) m = std::min(m, d);
        return m;
      }(),
      dmax, k_max, p.mean_budget());
  return p;
}

}  // namespace csa
