#include "csa/attention/spec.h"

#include <cstdio>

#include "csa/core/error.h"

namespace csa {

SparsitySpec SparsitySpec::dense() {
  SparsitySpec s;
  s.label = "dense";
  return s;
}

SparsitySpec SparsitySpec::top_k(std::vector<BudgetSchedule> schedules, std::string label) {
  SparsitySpec s;
  s.kind = SparsityKind::kTopK;
  s.k = std::move(schedules);
  s.label = std::move(label);
  return s;
}

SparsitySpec SparsitySpec::top_k(const std::vector<std::vector<int64_t>>& budgets,
                                 std::string label) {
  std::vector<BudgetSchedule> schedules;
  for (const auto& row : budgets) schedules.push_back(BudgetSchedule::fixed(row));
  return top_k(std::move(schedules), std::move(label));
}

SparsitySpec SparsitySpec::uniform_top_k(int64_t n_layer, int64_t n_head, int64_t k) {
  if (k < 1) throw UsageError("uniform top-k needs k >= 1, got " + std::to_string(k));
  return top_k(
      std::vector<std::vector<int64_t>>(static_cast<size_t>(n_layer),
                                        std::vector<int64_t>(static_cast<size_t>(n_head), k)),
      "uniform k=" + std::to_string(k));
}

SparsitySpec SparsitySpec::top_p(int64_t n_layer, int64_t n_head, double p) {
  if (!(p > 0 && p <= 1)) throw UsageError("top-p needs 0 < p <= 1, got " + std::to_string(p));
  SparsitySpec s;
  s.kind = SparsityKind::kTopP;
  s.p.assign(static_cast<size_t>(n_layer), std::vector<double>(static_cast<size_t>(n_head), p));
  char buf[64];
  std::snprintf(buf, sizeof buf, "top-p p=%g", p);
  s.label = buf;
  return s;
}

SparsitySpec SparsitySpec::top_p(std::vector<std::vector<double>> p, std::string label) {
  for (const auto& row : p)
    for (double x : row)
      if (!(x > 0 && x <= 1))
        throw UsageError("top-p needs 0 < p <= 1 for every head, got " + std::to_string(x));
  SparsitySpec s;
  s.kind = SparsityKind::kTopP;
  s.p = std::move(p);
  s.label = std::move(label);
  return s;
}

SparsitySpec SparsitySpec::local_window(int64_t window, int64_t sinks) {
  if (window < 1 || sinks < 0) throw UsageError("window:W needs W >= 1 and sinks >= 0");
  SparsitySpec s;
  s.kind = SparsityKind::kWindow;
  s.window = window;
  s.sinks = sinks;
  s.label = "window " + std::to_string(window) + " + sinks " + std::to_string(sinks);
  return s;
}

SparsitySpec SparsitySpec::strided(int64_t stride, int64_t window, int64_t sinks) {
  if (stride < 1 || window < 1 || sinks < 0)
    throw UsageError("strided:S needs S >= 1, window >= 1, sinks >= 0");
  SparsitySpec s;
  s.kind = SparsityKind::kStrided;
  s.stride = stride;
  s.window = window;
  s.sinks = sinks;
  s.label = "strided " + std::to_string(stride) + ", window " + std::to_string(window) +
            ", sinks " + std::to_string(sinks);
  return s;
}

LayerRule SparsitySpec::layer_rule(int64_t layer) const {
  LayerRule r;
  r.kind = kind;
  if (kind == SparsityKind::kTopK) r.top_k = k.at(static_cast<size_t>(layer));
  if (kind == SparsityKind::kTopK) r.select = select;
  if (kind == SparsityKind::kTopP) r.p = p.at(static_cast<size_t>(layer));
  r.window = window;
  r.sinks = sinks;
  r.stride = stride;
  return r;
}

SparsitySpec SparsitySpec::with_selection(const PageSelection& s) const {
  SparsitySpec out = *this;
  if (s == select) return out;
  if (kind != SparsityKind::kTopK && s.paged())
    throw UsageError("'" + label + "': page selection applies to top_k budgets, not " +
                     kind_name());
  out.select = s;
  const std::string tag = " [" + selection_name(select) + "]";
  if (select.paged() && out.label.size() >= tag.size() &&
      out.label.compare(out.label.size() - tag.size(), tag.size(), tag) == 0)
    out.label.resize(out.label.size() - tag.size());
  if (s.paged()) out.label += " [" + selection_name(s) + "]";
  return out;
}

double SparsitySpec::mean_budget() const {
  double s = 0;
  int64_t n = 0;
  for (const auto& sched : k)
    for (const auto& row : sched.k)
      for (int64_t b : row) s += static_cast<double>(b), ++n;
  return n ? s / static_cast<double>(n) : 0;
}

Json SparsitySpec::to_json() const {
  Json j;
  j["kind"] = kind_name();
  j["label"] = label;
  if (kind == SparsityKind::kTopK) j.update(schedules_to_json(k));
  if (kind == SparsityKind::kTopK && select.paged()) j["select"] = selection_name(select);
  if (kind == SparsityKind::kTopP) j["p"] = p;
  if (kind == SparsityKind::kWindow || kind == SparsityKind::kStrided) {
    j["window"] = window;
    j["sinks"] = sinks;
  }
  if (kind == SparsityKind::kStrided) j["stride"] = stride;
  return j;
}

Json schedules_to_json(const std::vector<BudgetSchedule>& schedules) {
  bool one_band = true;
  for (const auto& s : schedules) one_band = one_band && s.n_bands() == 1;
  Json j;
  if (one_band) {
    Json grid = Json::array();
    for (const auto& s : schedules) {
      Json row = Json::array();
      for (const auto& kh : s.k) row.push_back(kh[0]);
      grid.push_back(row);
    }
    j["budgets"] = grid;
    return j;
  }
  // Every layer shares the first layer's bands (the allocators produce one band plan).
  j["band_start"] = schedules.empty() ? Json::array() : Json(schedules[0].band_start);
  Json grid = Json::array();
  for (const auto& s : schedules) {
    CSA_CHECK(s.band_start == schedules[0].band_start, "schedules with different bands");
    grid.push_back(s.k);
  }
  j["budgets"] = grid;
  return j;
}

std::vector<BudgetSchedule> schedules_from_json(const Json& j, const std::string& origin, int64_t L,
                                                int64_t H) {
  JsonReader r(j, origin);
  if (!r.has("budgets")) r.fail("budgets", "is missing");
  std::vector<int64_t> band_start = {0};
  if (r.has("band_start")) {
    const Json& bs = j.at("band_start");
    if (!bs.is_array() || bs.empty())
      r.fail("band_start", "must be a non-empty array of increasing positions starting at 0");
    band_start.clear();
    for (const auto& x : bs) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 ||
          (!band_start.empty() && x.get<int64_t>() <= band_start.back()) ||
          (band_start.empty() && x.get<int64_t>() != 0))
        r.fail("band_start",
               "must be increasing integer positions starting at 0, got " + bs.dump());
      band_start.push_back(x.get<int64_t>());
    }
  }
  const size_t NB = band_start.size();
  const bool banded = r.has("band_start");
  const Json& b = j.at("budgets");
  if (!b.is_array() || static_cast<int64_t>(b.size()) != L)
    r.fail("budgets", "must be an array of n_layer = " + std::to_string(L) + " rows");
  std::vector<BudgetSchedule> out;
  auto entry = [&](const Json& x, size_t l, size_t h, const std::string& at) {
    if (!x.is_number_integer() || x.get<int64_t>() < 1)
      r.fail("budgets", "[" + std::to_string(l) + "][" + std::to_string(h) + "]" + at + " = " +
                            x.dump() + " (budgets are integers >= 1)");
    return x.get<int64_t>();
  };
  for (size_t l = 0; l < b.size(); ++l) {
    if (!b[l].is_array() || static_cast<int64_t>(b[l].size()) != H)
      r.fail("budgets",
             "row " + std::to_string(l) + " must have n_head = " + std::to_string(H) + " entries");
    BudgetSchedule s;
    s.band_start = band_start;
    for (size_t h = 0; h < b[l].size(); ++h) {
      std::vector<int64_t> bands;
      if (!banded) {
        bands.push_back(entry(b[l][h], l, h, ""));
      } else {
        if (!b[l][h].is_array() || b[l][h].size() != NB)
          r.fail("budgets", "[" + std::to_string(l) + "][" + std::to_string(h) + "] must hold " +
                                std::to_string(NB) + " budgets, one per band");
        for (size_t k = 0; k < NB; ++k)
          bands.push_back(entry(b[l][h][k], l, h, "[" + std::to_string(k) + "]"));
      }
      s.k.push_back(std::move(bands));
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace csa
