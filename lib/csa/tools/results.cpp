#include "csa/tools/results.h"

#include <cstdio>
#include <vector>

#include "csa/tools/tools.h"

namespace csa {

Json comparison_json(const Comparison& c, double tol, double pos_tol) {
  Json j = c.to_json();
  j["matches_dense"] = c.meets(tol, pos_tol);
  return j;
}

Json results_header(const char* kind, const Model& model) {
  return {{"schema_version", kResultsSchemaVersion},
          {"kind", kind},
          {"model", model.identity.to_json(model.config)}};
}

size_t element_bytes(const Model& m) { return c10::elementSize(m.dtype); }

namespace {

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string percent(double fraction) { return format("%.1f%%", 100 * fraction); }
std::string signed_percent(double fraction) { return format("%+.2f%%", 100 * fraction); }
std::string number(const Json& j, const char* key, const char* fmt) {
  return j.contains(key) && j[key].is_number() ? format(fmt, j[key].get<double>()) : "—";
}
// Table cells: a '|' would end the cell; newlines would end the table.
std::string cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c == '\n' ? ' ' : c);
  return out;
}

const char* kTableHead =
    "| run | ppl | Δ ppl | reads | KV reads | worst bucket | verdict |\n"
    "|---|---:|---:|---:|---:|---:|---|\n";

// The heading and the line under it: model, corpus, slice, protocol, tolerances.
std::string summary_head(const std::string& tool, const Json& r) {
  const Json& c = r.at("criteria");
  const Json& p = r.at("protocol");
  std::string s = "### " + tool + ": " + cell(r.at("model").value("name", std::string("model"))) +
                  " on `" + cell(r.at("corpus").value("path", std::string())) + "`\n\n";
  s += std::to_string(r.at("slice").value("tokens", int64_t(0))) + " tokens from token " +
       std::to_string(r.at("slice").value("offset", int64_t(0))) + " · ctx " +
       std::to_string(p.value("ctx", int64_t(0))) + ", stride " +
       std::to_string(p.value("stride", int64_t(0))) + " · dense-matching: Δ ppl ≤ " +
       percent(c.value("tolerance", 0.0)) + ", every position bucket ≤ " +
       percent(c.value("position_tolerance", 0.0));
  if (c.value("confidence", 0.0) > 0)
    s += " (one-sided " + format("%g", 100 * c.value("confidence", 0.0)) +
         "% upper confidence bounds)";
  s += "\n\n";
  return s;
}

std::string dense_row(const Json& dense) {
  return "| dense | " + number(dense, "ppl", "%.3f") + " | — | 100% | 100% | — | reference |\n";
}

// The verdict of one comparison: which of the two criteria failed, by how much (by its upper
// confidence bound, named when it differs from the point value).
std::string verdict(bool matches, const Json& cmp, const Json& criteria) {
  if (matches) return "matches dense";
  const double tol = criteria.value("tolerance", 0.0);
  const double pos = criteria.value("position_tolerance", 0.0);
  const double delta = cmp.value("delta_rel", 0.0),
               worst = cmp.value("max_bucket_worsening_rel", 0.0);
  const double delta_up = cmp.value("delta_rel_upper", delta);
  const double worst_up = cmp.value("max_bucket_worsening_upper", worst);
  auto value = [](double point, double upper) {
    return signed_percent(point) +
           (upper != point ? " (upper bound " + signed_percent(upper) + ")" : std::string());
  };
  std::string why;
  if (delta_up > tol) why = "Δ " + value(delta, delta_up) + " > " + percent(tol);
  if (worst_up > pos)
    why += (why.empty() ? "" : ", ") + std::string("bucket ") + value(worst, worst_up) + " > " +
           percent(pos);
  return "**misses**" + (why.empty() ? std::string() : ": " + why);
}

std::string row(const std::string& name, double ppl, double delta_rel, double reads,
                double kv_reads, double worst_bucket, const std::string& verdict_text) {
  return "| " + cell(name) + " | " + format("%.3f", ppl) + " | " + signed_percent(delta_rel) +
         " | " + percent(reads) + " | " + percent(kv_reads) + " | " + signed_percent(worst_bucket) +
         " | " + verdict_text + " |\n";
}

}  // namespace

std::string eval_summary_markdown(const Json& r) {
  std::string s = summary_head("csa-eval", r) + kTableHead + dense_row(r.at("dense"));
  std::string closing = "No policy evaluated.";
  std::vector<std::string> closing_lines, labels;
  int policies = 0;
  for (const Json& run : r.at("runs")) {
    const Json& cmp = run.at("comparison");
    const Json reads = run.value("reads", Json::object());
    const bool matches = cmp.value("matches_dense", false);
    const double delta = cmp.value("delta_rel", 0.0);
    const double worst = cmp.value("max_bucket_worsening_rel", 0.0);
    const bool is_policy = run.value("role", std::string()) == "policy";
    s += row(
        (is_policy ? "**" : "") + run.value("label", std::string("?")) + (is_policy ? "**" : ""),
        cmp.value("ppl", 0.0), delta, reads.value("query_side_fraction", 1.0),
        reads.value("kv_side_fraction", 1.0), worst, verdict(matches, cmp, r.at("criteria")));
    if (is_policy) {
      // One policy: "The policy ..."; several: a line each, named by its label.
      const std::string who = ++policies == 1 ? "The policy" : run.value("label", std::string("?"));
      closing_lines.push_back(matches ? "**" + who + " matches dense quality**, reading " +
                                            percent(reads.value("query_side_fraction", 1.0)) +
                                            " of the keys."
                                      : "**" + who +
                                            " misses dense quality** (`csa-eval "
                                            "--require-quality` exits 7).");
      labels.push_back(run.value("label", std::string("?")));
    }
  }
  if (policies > 1)  // name the first one too
    closing_lines[0].replace(2, std::string("The policy").size(), labels[0]);
  if (!closing_lines.empty()) {
    closing.clear();
    for (const auto& l : closing_lines) closing += (closing.empty() ? "" : "\n") + l;
  }
  return s + "\n" + closing + "\n";
}

std::string sweep_summary_markdown(const Json& r) {
  std::string s = summary_head("csa-sweep", r) + kTableHead;
  if (r.contains("dense")) s += dense_row(r.at("dense"));
  std::string closing;
  // The level of a sweep's best probe, under the sweep's axis name (k_max, reads, k).
  auto level_text = [](const Json& sw) {
    const std::string axis = sw.value("axis", std::string("cap"));
    const Json& b = sw.at("best");
    const Json v = b.contains(axis) ? b.at(axis) : b.value("cap", Json(0));
    return axis + " " +
           (v.is_number_integer() ? std::to_string(v.get<int64_t>())
                                  : format("%.4g", v.get<double>()));
  };
  auto add = [&](const char* key, const std::string& what) {
    if (!r.contains(key)) return;
    const Json& sw = r.at(key);
    const size_t tried = sw.at("probes").size();
    if (!sw.contains("best")) {
      s += "| " + cell(what) + " | — | — | — | — | — | **no level matches** (" +
           std::to_string(tried) + " tried) |\n";
      return;
    }
    const Json& b = sw.at("best");
    const double delta = b.value("delta_rel", 0.0),
                 worst = b.value("max_bucket_worsening_rel", 0.0);
    s += row(what + ", " + level_text(sw), b.value("ppl", 0.0), delta,
             b.value("reads_fraction", 1.0), b.value("kv_reads_fraction", 1.0), worst,
             "matches dense (the smallest of " + std::to_string(tried) + " levels tried)");
  };
  add("policy_sweep", "**policy**");
  add("uniform_sweep", "uniform top-k");
  const Json& ps = r.at("policy_sweep");
  if (r.value("chosen", std::string("policy")) == "uniform" && r.contains("uniform_sweep") &&
      r["uniform_sweep"].contains("best")) {
    closing = "**Uniform top-k reads the fewest keys at dense quality** (" +
              level_text(r["uniform_sweep"]) + ", " +
              percent(r["uniform_sweep"]["best"].value("reads_fraction", 1.0)) +
              "): the policy written is uniform.";
  } else if (ps.contains("best")) {
    closing = "**" + level_text(ps) + " matches dense**, reading " +
              percent(ps["best"].value("reads_fraction", 1.0)) + " of the keys";
    if (r.contains("reads_advantage_vs_uniform"))
      closing += format(", %.2f× fewer than the best matching uniform top-k",
                        r["reads_advantage_vs_uniform"].get<double>());
    closing += ".";
  } else {
    closing = "**No level matches dense** (`csa-sweep` exits 7).";
  }
  return s + "\n" + closing + "\n";
}

}  // namespace csa
