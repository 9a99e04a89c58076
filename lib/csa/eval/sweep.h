// The sweep: the smallest level of one scalar (a policy's k_max or target reads fraction, a
// uniform k) whose perplexity matches dense on held-out text. Quality is near-monotone in the
// level (a larger level reads more keys). The sweep brackets the crossing of the quality margin
// (1 = at the tolerance) between a missing and a matching level and narrows the bracket until it
// is within `resolution`: guided by the need curves' predicted error where the axis has it
// (a fitted power law, solved for the crossing), else by halving / doubling and interpolation in
// log level. Then a refine, the same for every axis, probes below the smallest matching level (a
// noisy margin can match again lower down). The dense pass is run once and reused for every probe;
// every reported level was confirmed by a full pass.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "csa/eval/perplexity.h"

namespace csa {

struct SweepOptions {
  double tolerance = 0.005;          // (sparse ppl - dense ppl) / dense ppl
  double position_tolerance = 0.01;  // worst position bucket's relative worsening
  double resolution = 0.05;          // stop when hi / lo <= 1 + resolution (or hi - lo <= 1)
  int max_passes = 16;               // probes per sweep at most
  // After the bracket, up to this many probes below the smallest matching level (counted in
  // max_passes), for every axis: an adapting axis (SweepAxis::adapt) adapts after each.
  int refine_passes = 6;
  // One-sided confidence level of the quality bound (docs/metrics.md): a level matches only when
  // the upper confidence bound of every delta is within its tolerance. 0: point estimates (off);
  // else in [0.5, 1). 0.9 by default: with point estimates the sweep's pick is the luckiest of
  // its probes, and on gpt2-mini it missed dense quality on WikiText-2 test (docs/metrics.md).
  double confidence = 0.9;
};

struct SweepProbe;

// What a sweep moves: levels in [min, max]; larger levels read more.
struct SweepAxis {
  std::string name;  // "k_max", "reads", "k"
  bool integer = true;
  double min = 1, max = 1;
  double start = 1;  // first level tried
  std::function<SparsitySpec(double)> make_spec;
  // Optional: a quantity that falls as the level grows and to which the quality margin is
  // roughly a power law (the error the need curves predict). With it, each next level solves the
  // margin model fitted to the probes so far (log margin linear in log predicted error) for the
  // crossing, so a sweep needs a handful of passes; without it, levels halve / double.
  std::function<double(double)> predict;
  // Optional: an axis whose spec at a level also depends on state that learns from the probes
  // (a need-based rule's position-band weights). `setting` describes the state the next probe
  // uses (stored with it); `adapt` may change the state after a probe (true when the change
  // alters the spec at the probe's level: else the same probe would measure the same). The
  // bracket is found with the state fixed; then the axis adapts to the bracket's miss and, in the
  // refine every axis gets (SweepOptions::refine_passes, a step below the smallest matching level,
  // lower after a match), adapts after each probe: after a miss it adapted to, the same level
  // again, half the step after two there. A miss an axis did not adapt to (every miss of a
  // non-adapting axis) halves the step at once; two in a row end the refine.
  std::function<Json()> setting;
  std::function<bool(const SweepProbe&)> adapt;  // true: the probe's level changed spec
};

// One held-out text of a sweep, with its dense pass (run once).
struct SweepSlice {
  std::string name;
  std::vector<int64_t> ids;
  PassResult dense;
};

struct SweepProbe {
  double level = 0;
  Comparison comparison;           // the slice that binds (the largest margin)
  std::vector<Comparison> slices;  // every slice, in order
  double reads_fraction = 1, kv_reads_fraction = 1, mean_budget = 0;
  double seconds = 0;
  int64_t forward_passes = 0;
  bool matches = false;
  // max(delta / tolerance, worst bucket / position tolerance), on the upper bounds (the point
  // values without a confidence bound): <= 1 matches
  double margin = 0;
  Json setting;  // the adapting axis's state for this probe (null otherwise)
  // The binding comparison's summary (Comparison::summary_json) and the reads: a chosen level's
  // record (the sweep's best, the swept policy's sweep block).
  Json summary_json() const;
};

struct SweepResult {
  std::string label, axis;
  bool integer = true;
  std::vector<SweepProbe> probes;  // in the order tried
  std::optional<double> best;      // the smallest matching level; none if even max misses
  size_t best_index = 0;           // its probe (adapting axes can probe a level twice)
  int64_t forward_passes = 0;      // sparse probes only (the dense pass is shared)
  double seconds = 0;
  const SweepProbe* best_probe() const;
  Json to_json() const;
};

// A level matches when every slice matches dense; reads are summed over the slices.
SweepResult sweep_levels(const Decoder& decoder, const std::vector<SweepSlice>& slices,
                         const EvalProtocol& protocol, const SweepAxis& axis,
                         const SweepOptions& options, const std::string& label);

// Measures one level: its probe's quality, reads and cost (the search fills in `level` and
// `setting`). sweep_levels measures by full passes over the slices with axis.make_spec's spec.
using SweepMeasure = std::function<SweepProbe(double level)>;

// The search of sweep_levels over any measurement (tests give it a synthetic margin).
SweepResult search_levels(const SweepAxis& axis, const SweepOptions& options,
                          const std::string& label, const SweepMeasure& measure);

}  // namespace csa
