#include "csa/eval/sweep.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "csa/core/error.h"

namespace csa {

const SweepProbe* SweepResult::best_probe() const {
  if (!best || best_index >= probes.size()) return nullptr;
  return &probes[best_index];
}

namespace {

// Per-slice verdicts of a probe (only when there is more than one slice).
Json slices_json(const SweepProbe& p) {
  Json out = Json::array();
  if (p.slices.size() < 2) return out;
  for (const Comparison& c : p.slices) out.push_back(c.summary_json());
  return out;
}

std::string probe_name(const std::string& label, const SweepAxis& axis, double level) {
  char name[64];
  std::snprintf(name, sizeof name, axis.integer ? "%s %s %.0f" : "%s %s %.4g", label.c_str(),
                axis.name.c_str(), level);
  return name;
}

}  // namespace

Json SweepProbe::summary_json() const {
  Json j = comparison.summary_json();
  j.update(Json{{"reads_fraction", reads_fraction}, {"kv_reads_fraction", kv_reads_fraction}});
  return j;
}

Json SweepResult::to_json() const {
  auto level_json = [&](double x) { return integer ? Json(std::llround(x)) : Json(x); };
  Json probes_j = Json::array();
  for (const auto& p : probes) {
    Json pj = {{axis, level_json(p.level)}};
    pj.update(p.comparison.to_json());
    pj.update(Json{{"margin", p.margin},
                   {"slices", slices_json(p)},
                   {"reads_fraction", p.reads_fraction},
                   {"kv_reads_fraction", p.kv_reads_fraction},
                   {"mean_budget", p.mean_budget},
                   {"matches_dense", p.matches},
                   {"forward_passes", p.forward_passes},
                   {"wall_seconds", p.seconds}});
    probes_j.push_back(std::move(pj));
    if (!p.setting.is_null()) probes_j.back()["setting"] = p.setting;
  }
  Json j = {{"label", label},
            {"axis", axis},
            {"probes", probes_j},
            {"best_level", best ? level_json(*best) : Json(nullptr)},
            {"sparse_forward_passes", forward_passes},
            {"wall_seconds", seconds}};
  if (integer) j["best_cap"] = best ? level_json(*best) : Json(nullptr);  // the older key
  if (const SweepProbe* b = best_probe()) {
    j["best"] = {{axis, level_json(b->level)}};
    j["best"].update(b->summary_json());
    if (!b->setting.is_null()) j["best"]["setting"] = b->setting;
  }
  return j;
}

SweepResult sweep_levels(const Decoder& decoder, const std::vector<SweepSlice>& slices,
                         const EvalProtocol& protocol, const SweepAxis& axis, const SweepOptions& o,
                         const std::string& label) {
  const ModelConfig& c = decoder.config();
  const double z = confidence_z(o.confidence);
  auto measure = [&](double level) {
    SparsitySpec spec = axis.make_spec(level);
    SparseAttentionHook hook(spec, c.n_layer, c.n_head, c.n_head_kv, protocol.ctx);
    const std::string name = probe_name(label, axis, level);
    SweepProbe p;
    p.margin = -1;
    p.matches = true;
    ReadsTally reads;
    for (const SweepSlice& sl : slices) {
      const std::string what = slices.size() > 1 ? name + " " + sl.name : name;
      PassResult pass = evaluate_pass(decoder, sl.ids, protocol, &hook, what);
      Comparison cmp = compare(sl.dense, pass, z);
      const double margin = cmp.margin(o.tolerance, o.position_tolerance);
      if (margin > p.margin) p.margin = margin, p.comparison = cmp;
      p.matches = p.matches && cmp.meets(o.tolerance, o.position_tolerance);
      p.slices.push_back(cmp);
      reads.add(pass.reads);
      p.seconds += pass.seconds;
      p.forward_passes += pass.forward_passes;
    }
    p.reads_fraction = reads.q_fraction();
    p.kv_reads_fraction = reads.kv_fraction();
    p.mean_budget = spec.mean_budget();
    return p;
  };
  return search_levels(axis, o, label, measure);
}

SweepResult search_levels(const SweepAxis& axis, const SweepOptions& o, const std::string& label,
                          const SweepMeasure& measure) {
  const auto start = std::chrono::steady_clock::now();
  if (!(axis.min > 0 && axis.max >= axis.min))
    throw UsageError("sweep '" + axis.name + "': bad range");
  SweepResult result;
  result.label = label;
  result.axis = axis.name;
  result.integer = axis.integer;
  std::map<double, const SweepProbe*> tried;
  auto snap = [&](double x) {
    x = std::clamp(x, axis.min, axis.max);
    return axis.integer ? std::max(axis.min, std::round(x)) : x;
  };

  // again: probe a level already tried (an adapting axis's state has changed since).
  auto probe = [&](double level, bool again = false) -> const SweepProbe& {
    if (auto it = tried.find(level); it != tried.end() && !again) return *it->second;
    Json setting = axis.setting ? axis.setting() : Json();
    SweepProbe p = measure(level);
    p.level = level;
    p.setting = std::move(setting);
    result.forward_passes += p.forward_passes;
    result.probes.push_back(p);
    const Comparison& pc = p.comparison;
    spdlog::info("{}: ppl {:.4f} ({:+.3f}%), worst bucket {:+.3f}%{}, reads {:.2f}% -> {}",
                 probe_name(label, axis, level), pc.sparse_ppl, 100 * pc.delta_rel,
                 100 * pc.max_bucket_worsening_rel, pc.upper_bounds_note(), 100 * p.reads_fraction,
                 p.matches ? "matches dense" : "misses");
    // std::vector reallocates: rebuild the index (a level probed twice: its latest probe).
    tried.clear();
    for (const auto& q : result.probes) tried[q.level] = &q;
    return result.probes.back();
  };
  auto done = [&](double lo, double hi) {
    return axis.integer ? hi - lo <= std::max(1.0, std::floor(o.resolution * hi))
                        : hi <= lo * (1 + o.resolution);
  };
  auto passes_left = [&] { return static_cast<int>(result.probes.size()) < o.max_passes; };

  // The bracket so far: the smallest matching level, and the largest missing level below it.
  auto bracket = [&](double& lo, double& hi) {
    lo = 0, hi = 0;
    for (const auto& p : result.probes)
      if (p.matches && (hi == 0 || p.level < hi)) hi = p.level;
    for (const auto& p : result.probes)
      if (!p.matches && (hi == 0 || p.level < hi) && p.level > lo) lo = p.level;
  };
  double lo = 0, hi = 0;
  probe(snap(axis.start));
  if (axis.predict) {
    // The level where the margin model (log margin linear in log predicted error, through the
    // probes nearest the crossing) reaches `target`.
    auto solve = [&](double target) {
      std::vector<const SweepProbe*> near;
      if (lo > 0) near.push_back(tried.at(lo));
      if (hi > 0) near.push_back(tried.at(hi));
      for (auto it = result.probes.rbegin(); it != result.probes.rend() && near.size() < 2; ++it)
        if (std::find(near.begin(), near.end(), &*it) == near.end()) near.push_back(&*it);
      auto pt = [&](const SweepProbe* p) {
        return std::make_pair(std::log(std::max(axis.predict(p->level), 1e-300)),
                              std::log(std::max(p->margin, 1e-3)));
      };
      auto [x0, y0] = pt(near[0]);
      double beta = 1;
      if (near.size() > 1) {
        auto [x1, y1] = pt(near[1]);
        if (std::abs(x1 - x0) > 1e-9) beta = (y1 - y0) / (x1 - x0);
        if (!(beta > 0.2 && beta < 5)) beta = 1;  // flat or inverted: fall back to proportional
      }
      const double want = x0 + (std::log(target) - y0) / beta;  // log predicted error wanted
      // predict falls as the level grows: bisection in log level.
      double a = std::log(axis.min), b = std::log(axis.max);
      if (std::log(std::max(axis.predict(axis.max), 1e-300)) > want) return axis.max;
      if (std::log(std::max(axis.predict(axis.min), 1e-300)) < want) return axis.min;
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (a + b);
        if (std::log(std::max(axis.predict(std::exp(mid)), 1e-300)) > want)
          a = mid;
        else
          b = mid;
      }
      return std::exp(b);
    };
    while (passes_left()) {
      bracket(lo, hi);
      if (lo > 0 && hi > 0 && done(lo, hi)) break;
      if (hi > 0 && hi <= axis.min) break;   // the smallest level matches
      if (hi == 0 && lo >= axis.max) break;  // the largest level misses
      double x;
      if (lo > 0 && hi > 0) {
        x = solve(1.0);
        double t =
            std::clamp((std::log(x) - std::log(lo)) / (std::log(hi) - std::log(lo)), 0.25, 0.75);
        // Kept inside the middle half of the bracket, and bisected after two probes in a row on
        // the same side of the crossing: with a flat margin then a cliff the model keeps aiming
        // at one end of the bracket, and the sweep would creep.
        const size_t n = result.probes.size();
        if (n >= 2 && result.probes[n - 1].matches == result.probes[n - 2].matches) t = 0.5;
        x = std::exp(std::log(lo) + t * (std::log(hi) - std::log(lo)));
      } else if (hi == 0) {
        // Only misses so far: aim a little past the crossing, at least one resolution step up.
        x = std::clamp(solve(0.85), lo * (1 + 2 * o.resolution), lo * 8);
      } else {
        x = std::clamp(solve(1.15), hi / 8, hi / (1 + 2 * o.resolution));
      }
      x = snap(x);
      if (axis.integer && lo > 0 && hi > 0 && (x <= lo || x >= hi))
        x = snap(std::floor((lo + hi) / 2));
      if (tried.count(x) || (hi > 0 && x >= hi) || x <= lo) break;
      probe(x);
    }
    bracket(lo, hi);
  } else {
    // Halve or double until the crossing is bracketed.
    bracket(lo, hi);
    while (passes_left() && hi == 0 && lo < axis.max) {
      probe(snap(lo * 2));
      bracket(lo, hi);
    }
    while (passes_left() && hi > 0 && lo == 0 && hi > axis.min) {
      const double next = snap(hi / 2);
      if (next >= hi) break;
      probe(next);
      bracket(lo, hi);
    }
    // Narrow [lo, hi]: interpolate where the margin crosses 1 in log level, kept inside the
    // middle 80% of the bracket (a bisection safeguard against a flat or noisy margin).
    while (lo > 0 && hi > 0 && !done(lo, hi) && passes_left()) {
      const double mlo = tried.at(lo)->margin, mhi = tried.at(hi)->margin;
      const double a = std::log(lo), b = std::log(hi);
      double t = 0.5;
      if (mlo > 1 && mhi <= 1 && mlo > mhi) t = (mlo - 1) / (mlo - mhi);
      t = std::clamp(t, 0.2, 0.8);
      double mid = snap(std::exp(a + t * (b - a)));
      if (axis.integer && (mid <= lo || mid >= hi)) mid = snap(std::floor((lo + hi) / 2));
      if (mid <= lo || mid >= hi || tried.count(mid)) break;
      probe(mid);
      bracket(lo, hi);
    }
  }
  if (hi > 0) {
    // Refine, for every axis alike: quality is noisy in the level (a level below a miss can
    // match), so up to refine_passes probes go a step (1 + 2 resolution) below the smallest
    // matching level: lower after a match. After a miss the axis that adapted to it tries the
    // same level again (half the step after two misses there); a miss that taught nothing halves
    // the step at once, and two of those in a row end the refine, as does a step below half the
    // resolution or less than one integer level. An adapting axis first adapts to the bracket's
    // miss; a non-adapting axis's level tried before is not measured again (it would repeat).
    if (axis.adapt && lo > 0) axis.adapt(*tried.at(lo));
    double step = 1 + 2 * o.resolution;
    auto below = [&] {
      const double x = snap(hi / step);
      return axis.integer ? std::min(x, hi - 1) : x;
    };
    double x = below();
    int misses_at_x = 0, plain_misses = 0;  // plain: misses in a row the axis did not adapt to
    for (int left = o.refine_passes; left > 0 && passes_left() && hi > axis.min;) {
      if (x < axis.min || x >= hi) break;
      const size_t n = result.probes.size();
      const SweepProbe& p = probe(x, axis.adapt != nullptr);
      if (result.probes.size() > n) --left;
      const bool adapted = axis.adapt && axis.adapt(p);
      const bool matched = p.matches;
      bracket(lo, hi);
      if (matched) {
        step = 1 + 2 * o.resolution, misses_at_x = plain_misses = 0;
        x = below();
        continue;
      }
      if (adapted) {
        plain_misses = 0;
        if (++misses_at_x < 2) continue;  // the same level again, adapted
      } else if (++plain_misses >= 2) {
        break;
      }
      misses_at_x = 0;
      step = std::sqrt(step);
      if (step <= 1 + o.resolution / 2) break;
      if (axis.integer && hi - hi / step < 1) break;
      x = below();
    }
  }
  if (hi > 0) {
    result.best = hi;
    for (size_t i = 0; i < result.probes.size(); ++i)
      if (result.probes[i].matches && result.probes[i].level == hi) result.best_index = i;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace csa
