// Determinism (docs/robustness.md): the same command on the same inputs, with the same thread
// count, writes byte-identical JSON once the timing fields are removed. Timing fields are the keys
// `started_utc` and any key ending in `_seconds` or `_per_second` (run.wall_seconds,
// dense.tokens_per_second, runs[].wall_seconds, ...), at any depth.
//
// Across thread counts the numbers are not bit-identical: OpenBLAS's float32 GEMM (every linear
// layer: q/k/v, output, MLP, LM head) splits its work by thread count, so logits and attention
// probabilities differ in the last bits (measured: max |diff| 1e-5 on a [128, 64] x [64, 512]
// product; libtorch's softmax, batched matmul and reductions were bit-identical). csa's own
// reductions do not depend on the thread count (calib/stats.cpp sums per (batch, head), then
// serially), so the outputs differ at float32 rounding level only, except where a rounding
// difference flips a discrete choice (below: a budget, a near-tie in a need curve's selection);
// checked below. Both runs of a pair use the same --threads: run.threads records it, and
// reproducing a file exactly needs it.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "cli/cli_support.h"
#include "csa/core/file.h"
#include "csa/core/json.h"

using namespace csa;

namespace {

bool is_timing_key(const std::string& k) {
  auto ends_with = [&](const std::string& suffix) {
    return k.size() >= suffix.size() &&
           k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return k == "started_utc" || ends_with("_seconds") || ends_with("_per_second");
}

Json without_timing(const Json& j) {
  if (j.is_object()) {
    Json out = Json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!is_timing_key(it.key())) out[it.key()] = without_timing(it.value());
    return out;
  }
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& x : j) out.push_back(without_timing(x));
    return out;
  }
  return j;
}

// The first differing line of two texts, for the failure message.
std::string first_difference(const std::string& a, const std::string& b) {
  size_t line = 1, i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) {
    if (a[i] == '\n') ++line;
    ++i;
  }
  auto line_at = [&](const std::string& s) {
    size_t begin = s.rfind('\n', i == 0 ? 0 : i - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return s.substr(begin, s.find('\n', i) - begin);
  };
  return "line " + std::to_string(line) + ":\n  first:  " + line_at(a) +
         "\n  second: " + line_at(b);
}

// Runs `app args -o out.json` and returns the JSON it wrote, timing fields removed.
std::string run_json(const std::string& app, const std::string& args, const std::string& out) {
  std::remove(out.c_str());
  test::RunResult r = test::run_app(app, args + " -q -o " + test::quote(out));
  INFO(app << " " << args << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
  return dump_json(without_timing(read_json_file(out)));
}

// Every number of two JSON values agrees within `rel` (relative); everything else is identical.
void check_close(const Json& a, const Json& b, double rel, const std::string& where) {
  INFO(where);
  if (a.is_number_float() || b.is_number_float()) {
    REQUIRE((a.is_number() && b.is_number()));
    const double x = a.get<double>(), y = b.get<double>();
    CHECK(std::abs(x - y) <= rel * std::max({std::abs(x), std::abs(y), 1e-30}));
  } else if (a.is_object()) {
    REQUIRE(b.is_object());
    REQUIRE(a.size() == b.size());
    for (auto it = a.begin(); it != a.end(); ++it) {
      REQUIRE(b.contains(it.key()));
      check_close(it.value(), b.at(it.key()), rel, where + "." + it.key());
    }
  } else if (a.is_array()) {
    REQUIRE(b.is_array());
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i)
      check_close(a[i], b[i], rel, where + "[" + std::to_string(i) + "]");
  } else {
    CHECK(a == b);
  }
}

// The numbers of a nested array, in order; false when a leaf is not a number.
bool numeric_leaves(const Json& j, std::vector<double>* out) {
  if (j.is_number()) {
    out->push_back(j.get<double>());
    return true;
  }
  if (!j.is_array()) return false;
  for (const auto& x : j)
    if (!numeric_leaves(x, out)) return false;
  return true;
}

// The need curves (calib/need.cpp) are means over a band's rows of quantities that depend on
// which keys each budget keeps, so a rounding difference that flips a near-tie between two keys of
// one row moves that row's term: an entry may differ by one row's share of the field's range
// (measured on an AMD EPYC with 2 threads against 1: rel_err 0.0015 on 0.93, at 154 of 3,200
// entries a difference at all). Checked per numeric field: every entry within 1e-4 relative plus
// 1% of the field's largest magnitude (a few rows' flips), and the field as a whole — its summed
// |differences| — within 1e-4 of its summed magnitudes (rounding level, flips rare).
void check_curves_close(const Json& a, const Json& b) {
  REQUIRE(a.is_object());
  REQUIRE(b.is_object());
  REQUIRE(a.size() == b.size());
  for (auto it = a.begin(); it != a.end(); ++it) {
    const std::string where = "policy.need_curves." + it.key();
    REQUIRE(b.contains(it.key()));
    std::vector<double> xs, ys;
    if (!it.value().is_array() || !numeric_leaves(it.value(), &xs)) {
      check_close(it.value(), b.at(it.key()), 1e-4, where);
      continue;
    }
    INFO(where);
    REQUIRE(numeric_leaves(b.at(it.key()), &ys));
    REQUIRE(xs.size() == ys.size());
    double big = 0, sum_d = 0, sum_m = 0;
    for (size_t i = 0; i < xs.size(); ++i) big = std::max({big, std::abs(xs[i]), std::abs(ys[i])});
    for (size_t i = 0; i < xs.size(); ++i) {
      const double d = std::abs(xs[i] - ys[i]), m = std::max(std::abs(xs[i]), std::abs(ys[i]));
      if (d > 1e-4 * m + 1e-2 * big) FAIL_CHECK("entry " << i << ": " << xs[i] << " vs " << ys[i]);
      sum_d += d;
      sum_m += m;
    }
    CHECK(sum_d <= 1e-4 * sum_m);
  }
}

}  // namespace

// A check of this test's own helper, so it lives (and runs) with the test it serves.
TEST_CASE("timing fields are the only fields removed before comparing", "[cli]") {
  Json j = {{"run", {{"wall_seconds", 1.5}, {"started_utc", "x"}, {"threads", 2}}},
            {"runs", {{{"tokens_per_second", 3.0}, {"ppl", 4.0}, {"encode_seconds", 1}}}}};
  CHECK(without_timing(j).dump() == R"({"run":{"threads":2},"runs":[{"ppl":4.0}]})");
}

TEST_CASE("csa-calibrate and csa-eval write identical JSON on identical runs", "[cli]") {
  const std::string model = test::shared_dir() + "/models/stories260K";
  const std::string corpus_src = test::shared_dir() + "/corpora/wikitext2-valid.tokens";
  REQUIRE(file_exists(model + "/config.json"));
  REQUIRE(file_exists(corpus_src));
  test::TempDir dir;
  // A short slice of the corpus keeps tokenization out of the run time.
  const std::string corpus = dir.file("corpus.txt");
  test::write_text(corpus, read_file(corpus_src).substr(0, 20000));
  const std::string out = dir.file("out.json");
  const std::string common = test::quote(model) + " " + test::quote(corpus);

  // One thread: fast even when the CI machine is loaded (OpenMP barriers spin otherwise).
  const std::string calibrate = common + " --tokens 1024 --ctx 256 --threads 1";
  const std::string policy_a = run_json("csa-calibrate", calibrate, out);
  write_file_atomic(dir.file("policy.json"), read_file(out));
  const std::string policy_b = run_json("csa-calibrate", calibrate, out);
  INFO(first_difference(policy_a, policy_b));
  CHECK(policy_a == policy_b);

  const std::string eval = common + " --policy " + test::quote(dir.file("policy.json")) +
                           " --baseline uniform:16 --max-tokens 512 --ctx 128 --threads 1";
  const std::string results_a = run_json("csa-eval", eval, out);
  const std::string results_b = run_json("csa-eval", eval, out);
  INFO(first_difference(results_a, results_b));
  CHECK(results_a == results_b);

  // Another thread count changes numbers only at float32 rounding level.
  const std::string two =
      run_json("csa-calibrate", common + " --tokens 1024 --ctx 256 --threads 2", out);
  Json a = parse_json(policy_a, "threads=1"), b = parse_json(two, "threads=2");
  for (Json* j : {&a, &b})
    for (const char* key : {"command", "threads", "device"}) (*j)["run"].erase(key);
  // Budgets are discrete choices from the measured curves: a (head, band) whose options are
  // within rounding of each other may pick the neighbouring grid budget. At most 2% of them move,
  // and the predicted reads stay within 1%.
  const std::string flat_a = a["budgets"].dump(), flat_b = b["budgets"].dump();
  std::vector<int64_t> ka, kb;
  for (auto* p : {&flat_a, &flat_b}) {
    std::vector<int64_t>& out = p == &flat_a ? ka : kb;
    for (const auto& x : parse_json(*p, "budgets").flatten()) out.push_back(x.get<int64_t>());
  }
  REQUIRE(ka.size() == kb.size());
  size_t moved = 0;
  for (size_t i = 0; i < ka.size(); ++i) moved += ka[i] != kb[i];
  CHECK(moved <= ka.size() / 50);
  const double ra = a["allocation"]["predicted_reads_fraction"].get<double>();
  const double rb = b["allocation"]["predicted_reads_fraction"].get<double>();
  CHECK(std::abs(ra - rb) <= 0.01 * ra);
  for (Json* j : {&a, &b}) {
    j->erase("budgets");
    j->erase("k_max");
    (*j)["allocation"].erase("predicted_reads_fraction");
    (*j)["allocation"].erase("predicted_kv_reads_fraction");
  }
  check_curves_close(a["need_curves"], b["need_curves"]);
  for (Json* j : {&a, &b}) j->erase("need_curves");
  check_close(a, b, 1e-4, "policy");
}
