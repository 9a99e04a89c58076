#include "csa/calib/policy.h"

#include <cmath>

#include "csa/core/error.h"

namespace csa {

DiffusenessMetric parse_metric(const std::string& name) {
  if (name == "effective_keys" || name == "entropy") return DiffusenessMetric::kEffectiveKeys;
  if (name == "mass_keys" || name == "mass") return DiffusenessMetric::kMassKeys;
  throw UsageError("--metric '" + name + "': use effective_keys or mass_keys");
}

std::string metric_name(DiffusenessMetric m) {
  return m == DiffusenessMetric::kEffectiveKeys ? "effective_keys" : "mass_keys";
}

std::vector<std::vector<int64_t>> allocate_budgets(const std::vector<std::vector<double>>& d,
                                                   const AllocationRule& rule, int64_t group_size) {
  if (rule.k_max < 1) throw UsageError("k_max must be >= 1, got " + std::to_string(rule.k_max));
  if (rule.floor < 1)
    throw UsageError("the budget floor must be >= 1, got " + std::to_string(rule.floor));
  std::vector<std::vector<double>> v = d;
  if (rule.per_kv_group && group_size > 1) {
    for (auto& row : v)
      for (size_t g = 0; g < row.size(); g += static_cast<size_t>(group_size)) {
        double m = 0;
        for (size_t h = g; h < g + static_cast<size_t>(group_size) && h < row.size(); ++h)
          m = std::max(m, row[h]);
        for (size_t h = g; h < g + static_cast<size_t>(group_size) && h < row.size(); ++h)
          row[h] = m;
      }
  }
  double dmax = 0;
  for (const auto& row : v)
    for (double x : row) dmax = std::max(dmax, x);
  const int64_t lo = std::min(rule.floor, rule.k_max);
  std::vector<std::vector<int64_t>> out;
  for (const auto& row : v) {
    std::vector<int64_t> r;
    for (double x : row) {
      int64_t b = dmax > 0 ? std::llround(static_cast<double>(rule.k_max) * x / dmax) : lo;
      r.push_back(std::clamp(b, lo, rule.k_max));
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::vector<double>> Policy::diffuseness() const {
  std::vector<std::vector<double>> out;
  for (const auto& row : stats) {
    std::vector<double> r;
    for (const auto& s : row)
      r.push_back(metric == DiffusenessMetric::kEffectiveKeys ? s.effective_keys : s.mass_keys);
    out.push_back(std::move(r));
  }
  return out;
}

Policy Policy::recapped(int64_t k_max) const {
  Policy p = *this;
  p.rule.k_max = k_max;
  const int64_t n_head = model.value("n_head", int64_t(1));
  const int64_t n_kv = model.value("n_head_kv", n_head);
  p.budgets = allocate_budgets(diffuseness(), p.rule, n_kv > 0 ? n_head / n_kv : 1);
  return p;
}

SparsitySpec Policy::sparsity(const std::string& label) const {
  return SparsitySpec::top_k(budgets,
                             label.empty() ? "policy k_max=" + std::to_string(rule.k_max) : label);
}

double Policy::mean_budget() const {
  double s = 0;
  int64_t n = 0;
  for (const auto& r : budgets)
    for (int64_t b : r) s += static_cast<double>(b), ++n;
  return n ? s / static_cast<double>(n) : 0;
}

Json Policy::to_json() const {
  Json j;
  j["schema_version"] = kPolicySchemaVersion;
  j["kind"] = "csa-policy";
  j["model"] = model;
  j["mode"] = "top_k";
  j["k_max"] = rule.k_max;
  j["budgets"] = budgets;
  Json metric_j;
  metric_j["name"] = metric_name(metric);
  metric_j["tau"] = tau;
  metric_j["description"] =
      metric == DiffusenessMetric::kEffectiveKeys
          ? "mean over queries of exp(entropy of the attention row)"
          : "mean over queries of the fewest keys reaching attention mass tau";
  j["metric"] = metric_j;
  j["allocation"] = {{"rule", "proportional"},
                     {"k_max", rule.k_max},
                     {"floor", rule.floor},
                     {"group", rule.per_kv_group ? "kv_group" : "head"}};
  Json st;
  auto grid = [&](auto field) {
    Json g = Json::array();
    for (const auto& row : stats) {
      Json r = Json::array();
      for (const auto& c : row) r.push_back(field(c));
      g.push_back(r);
    }
    return g;
  };
  st["effective_keys"] = grid([](const CellStats& c) { return c.effective_keys; });
  st["mass_keys"] = grid([](const CellStats& c) { return c.mass_keys; });
  st["entropy"] = grid([](const CellStats& c) { return c.entropy; });
  st["causal_keys"] = grid([](const CellStats& c) { return c.causal_keys; });
  j["statistics"] = st;
  j["calibration"] = calibration;
  j["sweep"] = sweep;
  j["run"] = run;
  return j;
}

Policy Policy::from_json(const Json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": a policy must be a JSON object");
  JsonReader r(j, origin);
  if (r.get_string("kind", "") != "csa-policy")
    throw InputError(origin + ": not a csa policy (field 'kind' is not \"csa-policy\")");
  int64_t version = r.get_int("schema_version");
  if (version != kPolicySchemaVersion)
    throw InputError(origin + ": policy schema_version " + std::to_string(version) +
                     " is not supported (this csa reads version " +
                     std::to_string(kPolicySchemaVersion) +
                     "): re-run csa-calibrate with this version, or use the csa that wrote it");
  if (r.get_string("mode", "top_k") != "top_k")
    throw UnsupportedError(origin + ": field 'mode' = '" + r.get_string("mode") +
                           "' (this csa applies top_k policies)");
  Policy p;
  p.model = r.child("model").raw();
  JsonReader m(p.model, origin, "model.");
  const int64_t L = m.get_int("n_layer"), H = m.get_int("n_head");
  if (L < 1) m.fail("n_layer", "must be >= 1, got " + std::to_string(L));
  if (H < 1) m.fail("n_head", "must be >= 1, got " + std::to_string(H));
  // Read later by recapped() / check_model(): typed here so that a bad value names its field.
  const int64_t H_kv = m.get_int("n_head_kv", H);
  if (H_kv < 1 || H % H_kv != 0)
    m.fail("n_head_kv",
           "must divide n_head = " + std::to_string(H) + ", got " + std::to_string(H_kv));
  for (const char* key : {"name", "family", "weights_sha256"}) (void)m.get_string(key, "");
  JsonReader metric = r.child("metric");
  p.metric = parse_metric(metric.get_string("name"));
  p.tau = metric.get_double("tau", 0.9);
  JsonReader alloc = r.child("allocation");
  p.rule.k_max = r.get_int("k_max");
  p.rule.floor = alloc.get_int("floor");
  p.rule.per_kv_group = alloc.get_string("group", "head") == "kv_group";
  if (p.rule.k_max < 1) r.fail("k_max", "must be >= 1, got " + std::to_string(p.rule.k_max));
  if (p.rule.floor < 1) alloc.fail("floor", "must be >= 1");

  if (!r.has("budgets")) r.fail("budgets", "is missing");
  const Json& b = j.at("budgets");
  if (!b.is_array() || static_cast<int64_t>(b.size()) != L)
    r.fail("budgets", "must be an array of n_layer = " + std::to_string(L) + " rows");
  for (size_t l = 0; l < b.size(); ++l) {
    if (!b[l].is_array() || static_cast<int64_t>(b[l].size()) != H)
      r.fail("budgets",
             "row " + std::to_string(l) + " must have n_head = " + std::to_string(H) + " entries");
    std::vector<int64_t> row;
    for (size_t h = 0; h < b[l].size(); ++h) {
      if (!b[l][h].is_number_integer() || b[l][h].get<int64_t>() < 1)
        r.fail("budgets", "[" + std::to_string(l) + "][" + std::to_string(h) +
                              "] = " + b[l][h].dump() + " (budgets are integers >= 1)");
      row.push_back(b[l][h].get<int64_t>());
    }
    p.budgets.push_back(std::move(row));
  }
  JsonReader st = r.child("statistics");
  auto grid = [&](const char* name) {
    if (!st.has(name)) st.fail(name, "is missing");
    const Json& g = st.raw().at(name);
    if (!g.is_array() || static_cast<int64_t>(g.size()) != L)
      st.fail(name, "must be n_layer rows of n_head numbers");
    std::vector<std::vector<double>> out;
    for (const auto& row : g) {
      if (!row.is_array() || static_cast<int64_t>(row.size()) != H)
        st.fail(name, "must be n_layer rows of n_head numbers");
      std::vector<double> rr;
      for (const auto& x : row) {
        if (!x.is_number() || !std::isfinite(x.get<double>()) || x.get<double>() < 0)
          st.fail(name, "holds a value that is not a finite non-negative number: " + x.dump());
        rr.push_back(x.get<double>());
      }
      out.push_back(std::move(rr));
    }
    return out;
  };
  auto eff = grid("effective_keys"), mass = grid("mass_keys"), ent = grid("entropy"),
       causal = grid("causal_keys");
  p.stats.assign(static_cast<size_t>(L), std::vector<CellStats>(static_cast<size_t>(H)));
  for (size_t l = 0; l < static_cast<size_t>(L); ++l)
    for (size_t h = 0; h < static_cast<size_t>(H); ++h)
      p.stats[l][h] = {eff[l][h], mass[l][h], ent[l][h], causal[l][h]};
  p.calibration = j.value("calibration", Json());
  p.sweep = j.value("sweep", Json());
  p.run = j.value("run", Json());
  return p;
}

Policy Policy::read(const std::string& path) { return from_json(read_json_file(path), path); }

void Policy::check_model(const Model& mdl, const std::string& origin,
                         bool allow_other_weights) const {
  const ModelConfig& c = mdl.config;
  auto describe = [](const std::string& name, const std::string& family, int64_t L, int64_t H,
                     int64_t Hkv) {
    return name + " (" + family + ", " + std::to_string(L) + " layers x " + std::to_string(H) +
           " heads, " + std::to_string(Hkv) + " KV heads)";
  };
  const std::string mine =
      describe(model.value("name", std::string("?")), model.value("family", std::string("?")),
               model.value("n_layer", int64_t(-1)), model.value("n_head", int64_t(-1)),
               model.value("n_head_kv", int64_t(-1)));
  const std::string theirs =
      describe(mdl.identity.name, c.family, c.n_layer, c.n_head, c.n_head_kv);
  if (model.value("family", std::string()) != c.family ||
      model.value("n_layer", int64_t(-1)) != c.n_layer ||
      model.value("n_head", int64_t(-1)) != c.n_head ||
      model.value("n_head_kv", int64_t(-1)) != c.n_head_kv)
    throw InputError(origin + ": this policy was calibrated for " + mine + ", not for " + theirs);
  const std::string hash = model.value("weights_sha256", std::string());
  if (hash != mdl.identity.weights_sha256 && !allow_other_weights)
    throw InputError(origin + ": this policy was calibrated for " + mine + " with weights " +
                     hash.substr(0, 12) + "…, but the model's weights hash to " +
                     mdl.identity.weights_sha256.substr(0, 12) +
                     "… (another checkpoint of the same shape); pass --allow-other-weights to "
                     "apply it anyway");
}

}  // namespace csa
