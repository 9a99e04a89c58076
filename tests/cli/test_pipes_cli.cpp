// The tools in shell pipelines: "-" is standard input for a corpus or a policy; pipes and
// process substitutions (/dev/fd/N) are read as streams; the corpus identity recorded in the
// JSON is the path as given and the sha256 of the bytes read; csa-sweep finds the calibration
// slice by that sha256 when policy and corpus both come through pipes. Model: stories260K.
#include <string>

#include "cli/cli_support.h"
#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/json.h"

using namespace csa;

namespace {

struct Env {
  test::TempDir dir;
  std::string model = test::quote(test::shared_dir() + "/models/stories260K");
  std::string story = dir.file("story.txt");
  std::string app(const std::string& name) const { return test::quote(test::app_path(name)); }
  std::string q(const std::string& name) const { return test::quote(dir.file(name)); }
  Env() { test::write_text(story, test::story_text()); }
};

const char* kCommon = " --ctx 64 --threads 1 -q";

}  // namespace

TEST_CASE("corpora through stdin, pipes and process substitution record what was read", "[cli]") {
  Env e;
  const std::string eval = e.app("csa-eval") + " " + e.model;
  const std::string args = std::string(" --max-tokens 96") + kCommon;
  const test::RunResult r = test::run_bash(
      "cat " + test::quote(e.story) + " | " + eval + " - " + args + " -o " + e.q("stdin.json") +
      " && " + eval + " <(cat " + test::quote(e.story) + ")" + args + " -o " + e.q("fd.json") +
      " && " + eval + " " + test::quote(e.story) + args + " -o " + e.q("file.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json from_stdin = read_json_file(e.dir.file("stdin.json"));
  const Json from_fd = read_json_file(e.dir.file("fd.json"));
  const Json from_file = read_json_file(e.dir.file("file.json"));
  const std::string sha = sha256_hex(test::story_text());
  CHECK(from_stdin["corpus"]["path"] == "-");
  CHECK(from_fd["corpus"]["path"].get<std::string>().rfind("/dev/fd/", 0) == 0);
  for (const Json* j : {&from_stdin, &from_fd, &from_file}) {
    CHECK((*j)["corpus"]["sha256"] == sha);
    CHECK((*j)["corpus"]["bytes"] == test::story_text().size());
    CHECK((*j)["dense"]["ppl"] == from_file["dense"]["ppl"]);
  }
}

TEST_CASE("calibrate | sweep | eval through pipes; the sweep slice follows calibration", "[cli]") {
  Env e;
  const std::string story = test::quote(e.story);
  // Policy and sweep corpus both streamed: the sweep still finds the calibration corpus by its
  // sha256 and starts after the calibration tokens.
  const test::RunResult r = test::run_bash(
      "cat " + story + " | " + e.app("csa-calibrate") + " " + e.model + " - --tokens 128" +
      kCommon + " | " + e.app("csa-sweep") + " " + e.model + " - <(cat " + story +
      ") --tokens 192 --no-uniform --tolerance 0.05 --position-tolerance 0.2" + kCommon +
      " --results " + e.q("sweep.json") + " --summary " + e.q("sweep.md") + " | " +
      e.app("csa-eval") + " " + e.model + " " + story +
      " --policy - --max-tokens 128 --tolerance 1 --position-tolerance 1 --require-quality" +
      kCommon + " -o " + e.q("eval.json") + " --summary " + e.q("eval.md"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json sweep = read_json_file(e.dir.file("sweep.json"));
  CHECK(sweep["slice"]["offset"] == 128);
  CHECK(sweep["corpus"]["sha256"] == sha256_hex(test::story_text()));
  const Json eval = read_json_file(e.dir.file("eval.json"));
  REQUIRE(eval["runs"].size() == 1);
  CHECK(eval["runs"][0]["role"] == "policy");
  CHECK(eval["runs"][0]["comparison"]["matches_dense"] == true);
  // No --confidence: csa-eval's verdicts are point estimates (the upper bounds equal to them),
  // csa-sweep's are one-sided 90% upper bounds (its default).
  CHECK(eval["criteria"]["confidence"] == 0);
  CHECK(eval["criteria"]["z"] == 0);
  CHECK(sweep["criteria"]["confidence"] == 0.9);
  CHECK(sweep["criteria"]["z"].get<double>() == Approx(1.2816).margin(1e-4));
  const Json& cmp = eval["runs"][0]["comparison"];
  CHECK(cmp["delta_rel_upper"] == cmp["delta_rel"]);
  CHECK(cmp["max_bucket_worsening_upper"] == cmp["max_bucket_worsening_rel"]);
  CHECK(cmp["bucket_delta_rel_upper"] == cmp["bucket_delta_rel"]);
  const Json& probe = sweep["policy_sweep"]["probes"][0];
  CHECK(probe["delta_rel_upper"].get<double>() >= probe["delta_rel"].get<double>());
  CHECK(probe["bucket_se"].size() == probe["bucket_delta_rel"].size());
  // The Markdown summaries for a CI job summary.
  const std::string sweep_md = read_file(e.dir.file("sweep.md"));
  CHECK(sweep_md.find("### csa-sweep: stories260K on `/dev/fd/") != std::string::npos);
  CHECK(sweep_md.find("| **policy**, reads ") != std::string::npos);
  const std::string eval_md = read_file(e.dir.file("eval.md"));
  CHECK(eval_md.find("| **policy - (greedy reads ") != std::string::npos);
  CHECK(eval_md.find("**The policy matches dense quality**") != std::string::npos);
}

TEST_CASE("csa-eval --confidence: upper confidence bounds decide the verdict", "[cli]") {
  Env e;
  const test::RunResult r =
      test::run_bash(e.app("csa-eval") + " " + e.model + " " + test::quote(e.story) +
                     " --max-tokens 384 --baseline uniform:2 --confidence 0.95" + kCommon + " -o " +
                     e.q("eval.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const Json eval = read_json_file(e.dir.file("eval.json"));
  CHECK(eval["criteria"]["confidence"] == 0.95);
  CHECK(eval["criteria"]["z"].get<double>() == Approx(1.6448536).epsilon(1e-6));
  REQUIRE(eval["runs"].size() == 1);
  const Json& c = eval["runs"][0]["comparison"];
  CHECK(c["delta_se"].get<double>() > 0);
  CHECK(c["delta_rel_upper"].get<double>() > c["delta_rel"].get<double>());
  CHECK(c["max_bucket_worsening_upper"].get<double>() >=
        c["max_bucket_worsening_rel"].get<double>());
  REQUIRE(c["bucket_se"].size() == c["bucket_delta_rel"].size());
  const bool upper_within = c["delta_rel_upper"].get<double>() <= 0.005 &&
                            c["max_bucket_worsening_upper"].get<double>() <= 0.01;
  CHECK(c["matches_dense"] == upper_within);
}

TEST_CASE("stdin misuse is refused clearly, with no output file", "[cli]") {
  Env e;
  const std::string eval = e.app("csa-eval") + " " + e.model;
  struct Case {
    std::string script;
    int code;
    std::string needle;
  };
  const Case cases[] = {
      {"echo {} | " + eval + " - --policy -" + kCommon + " -o " + e.q("o1.json") + " --summary " +
           e.q("o1.md"),
       2, "only one input may be '-' (standard input), but corpus and --policy are both '-'"},
      {e.app("csa-sweep") + " " + e.model + " p.json " + test::quote(e.story) + " --results -" +
           kCommon,
       2, "only one output may be '-' (standard output), but -o and --results are both '-'"},
      {e.app("csa-eval") + " - " + test::quote(e.story) + kCommon + " -o " + e.q("o3.json"), 2,
       "model '-': a model cannot be read from standard input"},
      {e.app("csa-eval") + " <(cat " + e.model + "/model.safetensors) " + test::quote(e.story) +
           kCommon + " -o " + e.q("o4.json"),
       2, "a model must be a regular file or a directory"},
      // The command before the pipe failed and wrote nothing.
      {"false | " + eval + " " + test::quote(e.story) + " --policy -" + kCommon + " -o " +
           e.q("o5.json"),
       4, "<stdin>: empty, expected JSON (did the command writing into the pipe fail?)"},
      {"true | " + eval + " -" + kCommon + " -o " + e.q("o6.json"), 6,
       "<stdin>: the corpus is empty"},
  };
  for (const Case& c : cases) {
    const test::RunResult r = test::run_bash(c.script);
    INFO(c.script << "\n" << r.output);
    CHECK(r.exit_code == c.code);
    CHECK(r.output.find(c.needle) != std::string::npos);
  }
  for (int i = 1; i <= 6; ++i)
    CHECK_FALSE(file_exists(e.dir.file("o" + std::to_string(i) + ".json")));
  CHECK_FALSE(file_exists(e.dir.file("o1.md")));
}

TEST_CASE("policies stored gzipped: .gz outputs are written so, gzipped inputs read as JSON",
          "[cli]") {
  Env e;
  const std::string story = test::quote(e.story);
  const std::string eval = e.app("csa-eval") + " " + e.model + " " + story +
                           " --max-tokens 96 --tolerance 1 --position-tolerance 1" + kCommon;
  const test::RunResult r = test::run_bash(
      e.app("csa-calibrate") + " " + e.model + " " + story + " --tokens 128" + kCommon + " -o " +
      e.q("p.json.gz") + " && " + eval + " --policy " + e.q("p.json.gz") + " -o " + e.q("gz.json") +
      " && gzip -dc " + e.q("p.json.gz") + " > " + e.q("p.json") + " && " + eval + " --policy " +
      e.q("p.json") + " -o " + e.q("plain.json") + " && cat " + e.q("p.json.gz") + " | " + eval +
      " --policy - -o " + e.q("stdin.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(e.dir.file("p.json.gz")).substr(0, 2) == "\x1f\x8b");
  CHECK(read_file(e.dir.file("p.json")).substr(0, 1) == "{");
  const Json plain = read_json_file(e.dir.file("plain.json"));
  for (const char* name : {"gz.json", "stdin.json"}) {
    const Json j = read_json_file(e.dir.file(name));
    CHECK(j["runs"][0]["ppl"] == plain["runs"][0]["ppl"]);
    CHECK(j["runs"][0]["reads"] == plain["runs"][0]["reads"]);
  }
  // A truncated gzip policy: exit 4 naming the file, no output.
  const std::string gz = read_file(e.dir.file("p.json.gz"));
  test::write_text(e.dir.file("cut.json.gz"), gz.substr(0, gz.size() / 2));
  const test::RunResult bad =
      test::run_bash(eval + " --policy " + e.q("cut.json.gz") + " -o " + e.q("cut.json"));
  INFO(bad.output);
  CHECK(bad.exit_code == 4);
  CHECK(bad.output.find("cut.json.gz: gzip data ends early (truncated)") != std::string::npos);
  CHECK_FALSE(file_exists(e.dir.file("cut.json")));
}
