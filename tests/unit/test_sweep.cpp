// The sweep's search (search_levels) over synthetic margins: the bracket, then the refine every
// axis gets below the smallest matching level (a noisy margin can match again lower down), its
// stop after two misses in a row, and an adapting axis trying a level again after a miss.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <vector>

#include "csa/eval/sweep.h"

using namespace csa;

namespace {

// A measurement whose margin is margin(level); <= 1 matches. Records the levels measured.
SweepMeasure synthetic(std::function<double(double)> margin, std::vector<double>& measured) {
  return [margin = std::move(margin), &measured](double level) {
    measured.push_back(level);
    SweepProbe p;
    p.margin = margin(level);
    p.matches = p.margin <= 1;
    p.reads_fraction = level / 1024;
    p.forward_passes = 1;
    return p;
  };
}

SweepAxis k_axis() {
  SweepAxis a;
  a.name = "k";
  a.integer = true;
  a.min = 1;
  a.max = 1024;
  a.start = 64;
  return a;
}

// Uniform top-k on pythia-mini in miniature: every k from 40 to 42 misses by a hair, 39 matches
// again, 36..38 miss, below 36 the margin grows.
double noisy_margin(double k) {
  if (k >= 43) return 0.9;
  if (k >= 40) return 1.05;
  if (k >= 39) return 0.95;
  if (k >= 36) return 1.1;
  return 1.1 + 0.1 * (36 - k);
}

}  // namespace

TEST_CASE("sweep refine: a non-adapting axis finds a matching level below the bracket's",
          "[unit]") {
  SweepOptions o;
  std::vector<double> measured;
  SECTION("without the refine the bracket stops at 43") {
    o.refine_passes = 0;
    const SweepResult r = search_levels(k_axis(), o, "t", synthetic(noisy_margin, measured));
    REQUIRE(r.best.has_value());
    CHECK(*r.best == 43);
    CHECK(measured == std::vector<double>{64, 32, 56, 50, 46, 43, 41});
  }
  SECTION("the refine goes a step below (39 matches), then stops after two misses") {
    const SweepResult r = search_levels(k_axis(), o, "t", synthetic(noisy_margin, measured));
    REQUIRE(r.best.has_value());
    CHECK(*r.best == 39);
    REQUIRE(r.best_probe() != nullptr);
    CHECK(r.best_probe()->level == 39);
    // After the bracket: 39 (43 / 1.1) matches, 35 (39 / 1.1) misses, the halved step 37
    // misses: two misses in a row, 2 of the 6 refine passes left unused.
    CHECK(measured == std::vector<double>{64, 32, 56, 50, 46, 43, 41, 39, 35, 37});
    CHECK(r.probes.size() == measured.size());
    CHECK(r.forward_passes == static_cast<int64_t>(measured.size()));
  }
  SECTION("the refine is counted in max_passes") {
    o.max_passes = 8;
    const SweepResult r = search_levels(k_axis(), o, "t", synthetic(noisy_margin, measured));
    CHECK(measured.size() == 8);
    CHECK(*r.best == 39);
  }
  SECTION("and in refine_passes") {
    o.refine_passes = 1;
    const SweepResult r = search_levels(k_axis(), o, "t", synthetic(noisy_margin, measured));
    CHECK(measured.size() == 8);
    CHECK(*r.best == 39);
  }
}

TEST_CASE("sweep refine: a monotone margin stops after two misses, a known miss not re-measured",
          "[unit]") {
  SweepOptions o;
  std::vector<double> measured;
  // Matches from k = 50 up. The bracket ends at [48, 50]; the refine's step below 50 is 45 (a
  // miss), the halved step 48 was measured in the bracket: the second miss in a row, no pass.
  const SweepResult r =
      search_levels(k_axis(), o, "t", synthetic([](double k) { return 50.0 / k; }, measured));
  REQUIRE(r.best.has_value());
  CHECK(*r.best == 50);
  REQUIRE(measured.size() >= 2);
  CHECK(measured[measured.size() - 1] == 45);
  CHECK(std::count(measured.begin(), measured.end(), 48.0) == 1);
  CHECK(std::count(measured.begin(), measured.end(), 45.0) == 1);
}

TEST_CASE("sweep refine: an adapting axis tries a missed level again after adapting", "[unit]") {
  SweepOptions o;
  SweepAxis a;
  a.name = "reads";
  a.integer = false;
  a.min = 1e-4;
  a.max = 1;
  a.start = 0.1;
  double weight = 1;  // the axis's state: lowers the margin each time it adapts to a miss
  a.setting = [&weight] { return Json{{"weight", weight}}; };
  a.adapt = [&weight](const SweepProbe& p) {
    if (p.matches || p.margin > 4) return false;
    weight *= 0.97;
    return true;
  };
  std::vector<double> measured;
  const SweepResult r = search_levels(
      a, o, "t", synthetic([&weight](double x) { return weight * 0.05 / x; }, measured));
  REQUIRE(r.best.has_value());
  // Fixed state: the bracket's smallest match is within 5% of 0.05. The refine learns below it.
  CHECK(*r.best < 0.05 * 0.97);
  // Some level was measured twice in a row: once missing, again after the axis adapted.
  bool again = false;
  for (size_t i = 1; i < r.probes.size(); ++i)
    again = again || (r.probes[i].level == r.probes[i - 1].level && !r.probes[i - 1].matches);
  CHECK(again);
  REQUIRE(r.best_probe() != nullptr);
  CHECK(r.best_probe()->setting["weight"].get<double>() < 1);
  CHECK(static_cast<int>(r.probes.size()) <= o.max_passes);
}
