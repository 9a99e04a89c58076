#include "csa/calib/policy.h"

#include <cmath>
#include <cstdio>

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

double Policy::scalar() const {
  return need_based(rule.kind) ? rule.reads : static_cast<double>(rule.k_max);
}

SparsityKind Policy::mode() const {
  return top_p_rule(rule.kind) ? SparsityKind::kTopP : SparsityKind::kTopK;
}

double Policy::predicted_error() const {
  CSA_CHECK(need.has_value(), "predicted error without need curves");
  if (mode() == SparsityKind::kTopP) return predicted_error_top_p(*need, top_p, rule.band_weight);
  return csa::predicted_error(*need, need_based(rule.kind) ? rule.metric : NeedMetric::kResRel,
                              budgets, rule.band_weight);
}

bool Policy::adapt_band_weights_at(double scalar,
                                   const std::vector<std::vector<double>>& bucket_delta_rel,
                                   int64_t ctx, double position_tolerance, double step) {
  CSA_CHECK(need_based(rule.kind) && need.has_value(),
            "band weights adapt for need-based policies with need curves");
  const Json before = reallocated(scalar).sparsity().to_json();
  rule.band_weight = adapt_band_weights(rule.band_weight, need->band_start, bucket_delta_rel, ctx,
                                        position_tolerance, step);
  return reallocated(scalar).sparsity().to_json() != before;
}

Policy Policy::reallocated(double scalar) const {
  Policy p = *this;
  p.top_p.clear();
  if (need_based(rule.kind)) {
    CSA_CHECK(need.has_value(), "a need-based policy without need curves");
    p.rule.reads = scalar;
    NeedAllocation a = allocate_need(*need, p.rule);
    p.budgets = std::move(a.schedules);
    p.top_p = std::move(a.p);
    p.predicted_reads = a.reads_fraction;
    p.predicted_kv_reads = a.kv_reads_fraction;
    return p;
  }
  p.rule.k_max = std::llround(scalar);
  const int64_t n_head = model.value("n_head", int64_t(1));
  const int64_t n_kv = model.value("n_head_kv", n_head);
  p.budgets.clear();
  for (const auto& row : allocate_budgets(diffuseness(), p.rule, n_kv > 0 ? n_head / n_kv : 1))
    p.budgets.push_back(BudgetSchedule::fixed(row));
  p.predicted_reads = p.predicted_kv_reads = -1;
  return p;
}

Policy Policy::with_rule(const AllocationRule& r, const std::string& origin) const {
  if (need_based(r.kind) && !need)
    throw InputError(origin + ": the '" + allocation_name(r.kind) +
                     "' rule needs need curves, which this policy does not have (version 1, or "
                     "made without them): re-run csa-calibrate");
  if (top_p_rule(r.kind) && !need->has_top_p())
    throw InputError(origin + ": the '" + allocation_name(r.kind) +
                     "' rule needs top-p need curves (need_curves.p_grid), which this policy "
                     "does not have (calibrated before them): re-run csa-calibrate");
  Policy p = *this;
  p.rule = r;
  if (!need_based(r.kind) && r.k_max <= 0) p.rule.k_max = p.starting_cap();
  return p.reallocated(p.scalar());
}

int64_t Policy::starting_cap() const {
  double dmax = 0;
  for (const auto& row : diffuseness())
    for (double d : row) dmax = std::max(dmax, d);
  const int64_t ctx = calibration.is_object() ? calibration.value("ctx", int64_t(0)) : 0;
  const int64_t cap = std::max<int64_t>(8, 8 * static_cast<int64_t>(std::ceil(dmax / 8)));
  return ctx > 0 ? std::min(ctx, cap) : cap;
}

SparsitySpec Policy::sparsity(const std::string& label) const {
  const std::string name = label.empty() ? "policy " + describe() : label;
  if (mode() == SparsityKind::kTopP) return SparsitySpec::top_p(top_p, name).with_selection(select);
  return SparsitySpec::top_k(budgets, name).with_selection(select);
}

std::string Policy::describe() const {
  char buf[96];
  if (need_based(rule.kind))
    std::snprintf(buf, sizeof buf, "%s%s%s reads %.2f%%", allocation_name(rule.kind).c_str(),
                  rule.kv_aware ? " kv" : "",
                  rule.banded || top_p_rule(rule.kind) ? "" : " unbanded", 100 * rule.reads);
  else if (rule.kind == AllocationKind::kPower)
    std::snprintf(buf, sizeof buf, "power alpha %g k_max %lld", rule.alpha,
                  static_cast<long long>(rule.k_max));
  else
    std::snprintf(buf, sizeof buf, "proportional k_max %lld", static_cast<long long>(rule.k_max));
  return buf;
}

std::string Policy::rule_name() const {
  std::string n = allocation_name(rule.kind);
  if (need_based(rule.kind)) {
    n += ":" + need_metric_name(rule.metric);
    if (!rule.banded && !top_p_rule(rule.kind)) n += "+unbanded";  // greedy_p: always
    if (rule.kv_aware) n += "+kv";
  } else if (rule.kind == AllocationKind::kPower) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "(%g)", rule.alpha);
    n += buf;
  }
  return n;
}

double Policy::mean_budget() const { return SparsitySpec::top_k(budgets, "").mean_budget(); }

std::vector<std::vector<int64_t>> Policy::fixed_budgets() const {
  std::vector<std::vector<int64_t>> out;
  for (const auto& s : budgets) {
    if (s.n_bands() != 1) return {};
    std::vector<int64_t> row;
    for (const auto& kh : s.k) row.push_back(kh[0]);
    out.push_back(std::move(row));
  }
  return out;
}

namespace {

Json allocation_json(const AllocationRule& r, double predicted_reads, double predicted_kv) {
  Json a = {{"rule", allocation_name(r.kind)}};
  if (need_based(r.kind)) {
    a["scalar"] = "reads";
    a["reads"] = r.reads;
    a["metric"] = need_metric_name(r.metric);
    a["banded"] = r.banded;
    a["kv_aware"] = r.kv_aware;
    if (!r.band_weight.empty()) a["band_weights"] = r.band_weight;
    a["predicted_reads_fraction"] = predicted_reads;
    a["predicted_kv_reads_fraction"] = predicted_kv;
  } else {
    a["scalar"] = "k_max";
    a["k_max"] = r.k_max;
    a["floor"] = r.floor;
    if (r.kind == AllocationKind::kPower) a["alpha"] = r.alpha;
    a["group"] = r.per_kv_group ? "kv_group" : "head";
  }
  return a;
}

}  // namespace

Json Policy::to_json() const {
  Json j;
  j["schema_version"] = kPolicySchemaVersion;
  j["kind"] = "csa-policy";
  j["model"] = model;
  j["mode"] = sparsity_kind_name(mode());
  j["allocation"] = allocation_json(rule, predicted_reads, predicted_kv_reads);
  if (mode() == SparsityKind::kTopP) {
    j["p"] = top_p;
  } else {
    int64_t widest = 0;
    for (const auto& s : budgets)
      for (const auto& kh : s.k)
        for (int64_t k : kh) widest = std::max(widest, k);
    j["k_max"] = need_based(rule.kind) ? widest : rule.k_max;
    j.update(schedules_to_json(budgets));
  }
  if (select.paged()) j["select"] = selection_name(select);
  Json metric_j;
  metric_j["name"] = metric_name(metric);
  metric_j["tau"] = tau;
  metric_j["description"] =
      metric == DiffusenessMetric::kEffectiveKeys
          ? "mean over queries of exp(entropy of the attention row)"
          : "mean over queries of the fewest keys reaching attention mass tau";
  j["metric"] = metric_j;
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
  if (need) j["need_curves"] = need->to_json();
  j["calibration"] = calibration;
  j["sweep"] = sweep;
  j["run"] = run;
  return j;
}

namespace {

// from_json's phases. Each names `origin` and the field on error.

int64_t read_version(const JsonReader& r, const std::string& origin) {
  if (r.get_string("kind", "") != "csa-policy")
    throw InputError(origin + ": not a csa policy (field 'kind' is not \"csa-policy\")");
  const int64_t version = r.get_int("schema_version");
  if (version < 1 || version > kPolicySchemaVersion)
    throw InputError(origin + ": policy schema_version " + std::to_string(version) +
                     " is not supported (this csa reads versions 1.." +
                     std::to_string(kPolicySchemaVersion) +
                     "): re-run csa-calibrate with this version, or use the csa that wrote it");
  return version;
}

// The mode: top_k, or top_p (version 2, with a top-p rule); other kinds are not policies.
SparsityKind read_mode(const JsonReader& r, const std::string& origin, int64_t version) {
  const std::string mode = r.get_string("mode", "top_k");
  const SparsityKind kind = parse_sparsity_kind(mode, origin + ": field 'mode'");
  if (kind != SparsityKind::kTopK && (kind != SparsityKind::kTopP || version < 2))
    throw UnsupportedError(origin + ": field 'mode' = '" + mode +
                           "' (this csa applies top_k and top_p policies)");
  return kind;
}

// mode top_p: "p", [L][H] masses in (0, 1].
std::vector<std::vector<double>> read_top_p(const JsonReader& r, int64_t L, int64_t H) {
  const std::string what = "must be n_layer rows of n_head masses in (0, 1]";
  if (!r.has("p")) r.fail("p", "is missing (mode top_p)");
  const Json& g = r.raw().at("p");
  if (!g.is_array() || static_cast<int64_t>(g.size()) != L) r.fail("p", what);
  std::vector<std::vector<double>> out;
  for (const auto& row : g) {
    if (!row.is_array() || static_cast<int64_t>(row.size()) != H) r.fail("p", what);
    std::vector<double> rr;
    for (const auto& x : row) {
      if (!x.is_number() || !(x.get<double>() > 0 && x.get<double>() <= 1))
        r.fail("p", what + ", got " + x.dump());
      rr.push_back(x.get<double>());
    }
    out.push_back(std::move(rr));
  }
  return out;
}

struct Dims {
  int64_t L, H, Hkv;
};

Dims read_model(Policy& p, const JsonReader& r, const std::string& origin) {
  p.model = r.child("model").raw();
  JsonReader m(p.model, origin, "model.");
  const int64_t L = m.get_int("n_layer"), H = m.get_int("n_head");
  if (L < 1) m.fail("n_layer", "must be >= 1, got " + std::to_string(L));
  if (H < 1) m.fail("n_head", "must be >= 1, got " + std::to_string(H));
  // Read later by reallocated() / check_model(): typed here so that a bad value names its field.
  const int64_t Hkv = m.get_int("n_head_kv", H);
  if (Hkv < 1 || H % Hkv != 0)
    m.fail("n_head_kv",
           "must divide n_head = " + std::to_string(H) + ", got " + std::to_string(Hkv));
  for (const char* key : {"name", "family", "weights_sha256"}) (void)m.get_string(key, "");
  return {L, H, Hkv};
}

void read_allocation(Policy& p, const JsonReader& r, int64_t version) {
  JsonReader alloc = r.child("allocation");
  const std::string name = alloc.get_string("rule", "proportional");
  try {
    p.rule.kind = parse_allocation(name);
  } catch (const UsageError&) {
    alloc.fail("rule", "'" + name + "' is not a rule this csa knows");
  }
  if (need_based(p.rule.kind)) {
    p.rule.reads = alloc.get_double("reads");
    if (!(p.rule.reads > 0 && p.rule.reads <= 1)) alloc.fail("reads", "must be in (0, 1]");
    const std::string metric = alloc.get_string("metric", "res_rel");
    try {
      p.rule.metric = parse_need_metric(metric);
    } catch (const UsageError&) {
      alloc.fail("metric", "'" + metric + "' is not a need metric");
    }
    p.rule.banded = alloc.get_bool("banded", true);
    p.rule.kv_aware = alloc.get_bool("kv_aware", false);
    if (alloc.has("band_weights")) {
      const Json& w = alloc.raw().at("band_weights");
      if (!w.is_array()) alloc.fail("band_weights", "must be an array of numbers");
      for (const auto& x : w) {
        if (!x.is_number() || !std::isfinite(x.get<double>()) || !(x.get<double>() > 0))
          alloc.fail("band_weights", "holds a value that is not a finite number > 0: " + x.dump());
        p.rule.band_weight.push_back(x.get<double>());
      }
    }
    if (top_p_rule(p.rule.kind)) {  // one mass per query head, from the rel_err curves
      if (p.rule.metric != NeedMetric::kRelErr) alloc.fail("metric", "must be rel_err (greedy_p)");
      if (p.rule.banded) alloc.fail("banded", "must be false (greedy_p: one mass per head)");
      if (p.rule.kv_aware) alloc.fail("kv_aware", "must be false (greedy_p)");
    }
    p.predicted_reads = alloc.get_double("predicted_reads_fraction", -1);
    p.predicted_kv_reads = alloc.get_double("predicted_kv_reads_fraction", -1);
    return;
  }
  p.rule.k_max = version == 1 ? r.get_int("k_max") : alloc.get_int("k_max", r.get_int("k_max"));
  p.rule.floor = alloc.get_int("floor");
  p.rule.alpha = alloc.get_double("alpha", 1.0);
  p.rule.per_kv_group = alloc.get_string("group", "head") == "kv_group";
  if (p.rule.k_max < 1) r.fail("k_max", "must be >= 1, got " + std::to_string(p.rule.k_max));
  if (p.rule.floor < 1) alloc.fail("floor", "must be >= 1");
  if (!(p.rule.alpha >= 0)) alloc.fail("alpha", "must be >= 0");
}

void read_statistics(Policy& p, const JsonReader& r, Dims d) {
  JsonReader metric = r.child("metric");
  p.metric = parse_metric(metric.get_string("name"));
  p.tau = metric.get_double("tau", 0.9);
  JsonReader st = r.child("statistics");
  auto grid = [&](const char* name) {
    if (!st.has(name)) st.fail(name, "is missing");
    const Json& g = st.raw().at(name);
    if (!g.is_array() || static_cast<int64_t>(g.size()) != d.L)
      st.fail(name, "must be n_layer rows of n_head numbers");
    std::vector<std::vector<double>> out;
    for (const auto& row : g) {
      if (!row.is_array() || static_cast<int64_t>(row.size()) != d.H)
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
  p.stats.assign(static_cast<size_t>(d.L), std::vector<CellStats>(static_cast<size_t>(d.H)));
  for (size_t l = 0; l < static_cast<size_t>(d.L); ++l)
    for (size_t h = 0; h < static_cast<size_t>(d.H); ++h)
      p.stats[l][h] = {eff[l][h], mass[l][h], ent[l][h], causal[l][h]};
}

}  // namespace

Policy Policy::from_json(const Json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": a policy must be a JSON object");
  JsonReader r(j, origin);
  const int64_t version = read_version(r, origin);
  const SparsityKind mode = read_mode(r, origin, version);
  Policy p;
  const Dims d = read_model(p, r, origin);
  read_allocation(p, r, version);
  if (version == 1 && r.has("band_start")) r.fail("band_start", "is not part of schema version 1");
  if (p.mode() != mode)
    r.fail("mode", "'" + sparsity_kind_name(mode) + "' does not go with allocation rule '" +
                       allocation_name(p.rule.kind) + "' (greedy_p makes top_p policies, the " +
                       "other rules top_k ones)");
  if (mode == SparsityKind::kTopP)
    p.top_p = read_top_p(r, d.L, d.H);
  else
    p.budgets = schedules_from_json(j, origin, d.L, d.H);
  if (r.has("select")) {
    const std::string sel = r.get_string("select");
    try {
      p.select = parse_selection(sel, "select");
    } catch (const UsageError&) {
      r.fail("select", "'" + sel + "' is not a selection (token, page:P or page:P:topk)");
    }
  }
  read_statistics(p, r, d);
  if (r.has("need_curves"))
    p.need = NeedCurves::from_json(j.at("need_curves"), origin, d.L, d.H, d.Hkv);
  if (need_based(p.rule.kind) && !p.need)
    r.fail("need_curves", "is missing (the '" + allocation_name(p.rule.kind) + "' rule needs it)");
  if (top_p_rule(p.rule.kind) && !p.need->has_top_p())
    r.fail("need_curves", "has no top-p curves (p_grid; the '" + allocation_name(p.rule.kind) +
                              "' rule needs them)");
  if (p.select.paged() && mode == SparsityKind::kTopP)
    r.fail("select", "page selection applies to top_k policies, not top_p");
  if (!p.rule.band_weight.empty() &&
      static_cast<int64_t>(p.rule.band_weight.size()) != p.need->n_bands())
    r.child("allocation")
        .fail("band_weights", "must hold one weight per band of need_curves (" +
                                  std::to_string(p.need->n_bands()) + "), got " +
                                  std::to_string(p.rule.band_weight.size()));
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
